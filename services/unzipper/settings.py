"""The unzipper's settings: the shared base plus its guard against zip bombs."""

from __future__ import annotations

from shared.settings import Settings

GIB = 1 << 30


class UnzipperSettings(Settings):
    """Settings of the unzipper (environment prefix ``MOVIEPIPE_``)."""

    max_unzipped_bytes: int = 4 * GIB
    """A bundle whose files add up to more than this, unzipped, is quarantined unopened."""


def unzipper_settings(settings: Settings | None = None) -> UnzipperSettings:
    """The unzipper's settings from the environment, or upgraded from shared settings."""
    if settings is None:
        return UnzipperSettings()
    if isinstance(settings, UnzipperSettings):
        return settings
    return UnzipperSettings(**settings.model_dump())

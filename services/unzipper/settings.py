"""The unzipper's settings: the shared base plus its zip-bomb limits and how it keeps a bundle to one run."""

from __future__ import annotations

from shared.settings import Settings

GIB = 1 << 30


class UnzipperSettings(Settings):
    """Settings of the unzipper (environment prefix ``MOVIEPIPE_``)."""

    max_unzipped_bytes: int = 64 * GIB
    """A bundle whose files add up to more than this, unzipped, is quarantined: refused unopened when its
    zip declares more, stopped while inflating when it turns out larger than declared."""
    max_unzip_ratio: int = 100
    """A member inflating to more than this many bytes per compressed byte is a zip bomb (text compresses
    3-10 times; deflate's ceiling is about 1,000)."""
    lease_seconds: int = 60
    """How long an unzip in progress holds its bundle before another worker may take it over; renewed
    while the unzip runs, so only a worker that died lets it lapse."""
    idempotency_seconds: int = 24 * 3600
    """How long a finished bundle's idempotency record answers replays (later ones are still recognised
    from the published manifest or the quarantine's reason.json)."""


def unzipper_settings(settings: Settings | None = None) -> UnzipperSettings:
    """The unzipper's settings from the environment, or upgraded from shared settings."""
    if settings is None:
        return UnzipperSettings()
    if isinstance(settings, UnzipperSettings):
        return settings
    return UnzipperSettings(**settings.model_dump())

"""The loader's settings: the shared base plus how the warehouse reaches the archive bucket."""

from __future__ import annotations

from shared.settings import Settings


class LoaderSettings(Settings):
    """Settings of the loader (environment prefix ``MOVIEPIPE_``)."""

    archive_storage_integration: str | None = None
    """Snowflake storage integration the archive stage reads S3 through (AWS); none locally."""

"""The loader's settings: the shared base plus how the warehouse reaches the archive bucket."""

from __future__ import annotations

from shared.settings import Settings


class LoaderSettings(Settings):
    """Settings of the loader (environment prefix ``MOVIEPIPE_``)."""

    secrets = ("warehouse_password",)

    archive_storage_integration: str | None = None
    """Snowflake storage integration the archive stage reads S3 through (AWS); none locally."""

    merge_star: bool = True
    """Merge each load into the star schema at once (true); false where Snowflake's stream and tasks
    (``deploy/snowflake/06_tasks.sql``) merge instead, so that only one of them does."""

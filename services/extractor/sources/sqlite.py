"""SQLite: the movie record's table (as the bundled IMDb source seeds it), and a SQLite source by path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from services.extractor.sources.config import SqlSourceConfig
from services.extractor.sources.sql import SqlSource
from shared.schema import MOVIE_FIELDS

SQLITE_TYPES = {"string": "TEXT", "integer": "INTEGER", "number": "REAL", "boolean": "INTEGER"}


def movies_table_ddl(table: str = "movies") -> str:
    """``CREATE TABLE`` for the movie record in SQLite (booleans as 0/1), keyed by the source's row id."""
    columns = ", ".join(f'"{f.name}" {SQLITE_TYPES[f.kind]}' for f in MOVIE_FIELDS)
    return f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, {columns})'


def insert_movies(table: str = "movies") -> str:
    """``INSERT`` of one ``(id, <the movie record's columns>)`` row."""
    columns = ", ".join(f'"{f.name}"' for f in MOVIE_FIELDS)
    return f'INSERT INTO "{table}" (id, {columns}) VALUES ({", ".join("?" * (len(MOVIE_FIELDS) + 1))})'


def sqlite_url(database: Path) -> str:
    return f"sqlite:///{database}"


class SqliteSource(SqlSource):
    """A table of a SQLite database file, optionally created by ``seed(path)`` on first use."""

    def __init__(
        self,
        name: str,
        database: Path,
        *,
        table: str = "movies",
        seed: Callable[[Path], Any] | None = None,
        **declared: Any,
    ):
        super().__init__(
            SqlSourceConfig(name=name, kind="sqlite", url=sqlite_url(database), table=table, **declared)
        )
        self.database = database
        self.seed = seed

    def __repr__(self) -> str:
        return f"SqliteSource({self.name!r}, {str(self.database)!r})"

    def _prepare_sqlite(self, url: sa.URL) -> None:
        if self.seed is not None and not self.database.exists():
            self.seed(self.database)
        super()._prepare_sqlite(url)

"""A SQL source on a SQLite database: ``SELECT <the movie record's columns> FROM <table>``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from services.extractor.exceptions import SourceUnreadable
from shared.schema import MOVIE_FIELDS, arrow_schema

SQLITE_TYPES = {"string": "TEXT", "integer": "INTEGER", "number": "REAL", "boolean": "INTEGER"}


def movies_table_ddl(table: str = "movies") -> str:
    """``CREATE TABLE`` for the movie record in SQLite (booleans as 0/1), keyed by the source's row id."""
    columns = ", ".join(f'"{f.name}" {SQLITE_TYPES[f.kind]}' for f in MOVIE_FIELDS)
    return f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, {columns})'


def insert_movies(table: str = "movies") -> str:
    """``INSERT`` of one ``(id, <the movie record's columns>)`` row."""
    columns = ", ".join(f'"{f.name}"' for f in MOVIE_FIELDS)
    return f'INSERT INTO "{table}" (id, {columns}) VALUES ({", ".join("?" * (len(MOVIE_FIELDS) + 1))})'


def select_movies(table: str = "movies") -> str:
    columns = ", ".join(f'"{f.name}"' for f in MOVIE_FIELDS)
    return f'SELECT {columns} FROM "{table}" ORDER BY rowid'


def rows_to_batch(rows: Sequence[Sequence[Any]], schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Rows in the movie record's column order as one record batch; SQL 0/1 flags become booleans."""
    schema = schema or arrow_schema()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = []
    for field, values in zip(schema, columns, strict=True):
        if pa.types.is_boolean(field.type):
            values = [None if value is None else bool(value) for value in values]
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"column {field.name!r}: {exc}") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class SqliteSource:
    """Movies from a SQLite database, read in batches through one cursor; optionally seeded on first use."""

    def __init__(
        self,
        name: str,
        database: Path,
        *,
        table: str = "movies",
        seed: Callable[[Path], Any] | None = None,
    ):
        self.name = name
        self.database = database
        self.table = table
        self.seed = seed

    def __repr__(self) -> str:
        return f"SqliteSource({self.name!r}, {str(self.database)!r})"

    def read_batches(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        if not self.database.exists():
            if self.seed is None:
                raise SourceUnreadable(self.name, f"database {self.database} does not exist")
            self.seed(self.database)
        schema = arrow_schema()
        try:
            connection = sqlite3.connect(f"{self.database.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise SourceUnreadable(self.name, f"{self.database}: {exc}") from exc
        try:
            cursor = connection.execute(select_movies(self.table))
            while rows := cursor.fetchmany(batch_rows):
                yield rows_to_batch(rows, schema)
        except (sqlite3.Error, ValueError) as exc:
            raise SourceUnreadable(self.name, f"{self.database}: {exc}") from exc
        finally:
            connection.close()

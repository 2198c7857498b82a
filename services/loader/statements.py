"""The loader's SQL, as text: DDL derived from ``shared.schema``, and the statements kept in ``sql/*.sql``.

Everything is qualified with the database, so one connection serves any database (tests use one each).
Statements take the connector's ``%(name)s`` parameters; only identifiers are formatted in, and those are
checked to be plain Snowflake identifiers first.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from services.loader import star
from shared.schema import CLEAN_MOVIE_FIELDS, REJECT_FIELDS, Field, field_names, snowflake_columns

SCHEMAS = ("RAW", "AUDIT", "ANALYTICS")
FILE_FORMAT = "RAW.ARCHIVE_CSV"
STAGE = "RAW.ARCHIVE"

# Where a loaded row came from and when: what Snowpipe's METADATA$FILENAME and load time give, and the
# extract's source, kind and time, which a stream on RAW carries to the star schema's merge.
LOAD_METADATA_COLUMNS = (
    "FILE_NAME VARCHAR",
    "LOADED_AT TIMESTAMP_NTZ DEFAULT CURRENT_TIMESTAMP()",
    *star.RAW_EXTRACT_COLUMNS,
)

AUDIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "AUDIT.LOAD_HISTORY": (
        "FILE_NAME VARCHAR NOT NULL",
        "FILE_HASH VARCHAR",
        "TABLE_NAME VARCHAR",
        "EXTRACT_ID VARCHAR",
        "STATUS VARCHAR",
        "ROWS_LOADED NUMBER(38,0)",
        "LOADED_AT TIMESTAMP_NTZ DEFAULT CURRENT_TIMESTAMP()",
        # Snowflake records but does not enforce it; the local DuckDB refuses a second commit of a file.
        "PRIMARY KEY (FILE_NAME)",
    ),
    # One row per extract: its rows at every stage, what merging it did, and whether they reconcile.
    "AUDIT.BATCHES": (
        "EXTRACT_ID VARCHAR NOT NULL",
        "SOURCE VARCHAR",
        "EXTRACT_KIND VARCHAR",
        "EXTRACTED_AT TIMESTAMP_NTZ",
        "ROWS_EXTRACTED NUMBER(38,0)",
        "ROWS_UNZIPPED NUMBER(38,0)",
        "ROWS_CLEAN NUMBER(38,0)",
        "ROWS_REJECTED NUMBER(38,0)",
        "ROWS_DUPLICATE NUMBER(38,0)",
        "ROWS_LOADED NUMBER(38,0)",
        "ROWS_MERGED NUMBER(38,0)",
        "VERSIONS_OPENED NUMBER(38,0)",
        "CHANGED_IN_PLACE NUMBER(38,0)",
        "MOVIES_CLOSED NUMBER(38,0)",
        "STATUS VARCHAR",
        "RECONCILED_AT TIMESTAMP_NTZ",
        "PRIMARY KEY (EXTRACT_ID)",
    ),
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class LoadTarget:
    """The table one role of archive file is copied into, and the file's columns in order."""

    role: str
    table: str
    fields: tuple[Field, ...]

    @property
    def columns(self) -> list[str]:
        return [name.upper() for name in field_names(self.fields)]

    @property
    def ddl_columns(self) -> list[str]:
        return [*snowflake_columns(self.fields), *LOAD_METADATA_COLUMNS]


TARGETS = {
    "movies": LoadTarget("movies", "RAW.MOVIES", CLEAN_MOVIE_FIELDS),
    "rejects": LoadTarget("rejects", "AUDIT.REJECTS", REJECT_FIELDS),
}


def identifier(name: str) -> str:
    """``name`` if it is a plain (unquoted) Snowflake identifier; refuse anything else."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain Snowflake identifier: {name!r}")
    return name


def literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def table_columns() -> dict[str, list[str]]:
    """Every table the loader creates, with its column definitions."""
    tables = {target.table: target.ddl_columns for target in TARGETS.values()}
    tables.update({table: list(columns) for table, columns in AUDIT_COLUMNS.items()})
    tables.update({table: list(columns) for table, columns in star.TABLES.items()})
    return tables


def create_table(database: str, table: str, columns: list[str]) -> str:
    body = ",\n    ".join(columns)
    return f"CREATE TABLE IF NOT EXISTS {identifier(database)}.{table} (\n    {body}\n)"


def create_file_format(database: str) -> str:
    """The archive's CSV: header row, comma, double-quote quoting (``""`` inside), empty field = NULL.

    Replaced at every bootstrap (it holds no data), so the definition in code is the one in use.
    """
    return (
        f"CREATE OR REPLACE FILE FORMAT {identifier(database)}.{FILE_FORMAT} TYPE = CSV "
        "FIELD_DELIMITER = ',' SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"' "
        "EMPTY_FIELD_AS_NULL = TRUE COMPRESSION = AUTO"
    )


def create_stage(database: str, archive_bucket: str, storage_integration: str | None = None) -> str:
    """An external stage over the archive bucket (through a storage integration in AWS).

    Replaced at every bootstrap, so that it follows the archive bucket's name (COPY load history is kept
    per table, not per stage).
    """
    statement = (
        f"CREATE OR REPLACE STAGE {identifier(database)}.{STAGE} URL = {literal(f's3://{archive_bucket}/')}"
    )
    if storage_integration:
        statement += f" STORAGE_INTEGRATION = {identifier(storage_integration)}"
    return statement


def bootstrap_statements(
    database: str,
    archive_bucket: str,
    *,
    storage_integration: str | None = None,
    existing_tables: frozenset[str] = frozenset(),
) -> list[str]:
    """Everything the loader needs in the warehouse, each statement safe to run again.

    Tables in ``existing_tables`` (``SCHEMA.TABLE``) are left out: the local stand-in clears a table's
    COPY load history on any CREATE TABLE, even one that finds the table there.
    """
    statements = [f"CREATE DATABASE IF NOT EXISTS {identifier(database)}"]
    statements += [f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}" for schema in SCHEMAS]
    statements.append(create_file_format(database))
    statements.append(create_stage(database, archive_bucket, storage_integration))
    statements += [
        create_table(database, table, columns)
        for table, columns in table_columns().items()
        if table not in existing_tables
    ]
    statements.append(star.seed_genres(database))
    statements.append(star.fill_current_facts(database))
    statements += [view.format(database=database).strip() for view in star.views().values()]
    return statements


def add_missing_columns(database: str, table: str, present: set[str]) -> list[str]:
    """``ALTER TABLE`` statements adding the columns a table made by an earlier version lacks."""
    wanted = table_columns()[table]
    return [
        f"ALTER TABLE {identifier(database)}.{table} ADD COLUMN IF NOT EXISTS {column}"
        for column in wanted
        if not column.startswith("PRIMARY KEY") and column.split()[0] not in present
    ]


def table_column_names(database: str) -> str:
    """``SCHEMA.TABLE`` and column name of every column of the loader's tables, one per row."""
    return (
        f"SELECT TABLE_SCHEMA || '.' || TABLE_NAME, COLUMN_NAME FROM {identifier(database)}"
        ".INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA IN ("
        + ", ".join(literal(schema) for schema in SCHEMAS)
        + ")"
    )


def existing_tables(database: str) -> str:
    """``SCHEMA.TABLE`` of the tables already in the database, one per row."""
    return (
        f"SELECT TABLE_SCHEMA || '.' || TABLE_NAME FROM {identifier(database)}.INFORMATION_SCHEMA.TABLES "
        "WHERE TABLE_SCHEMA IN (" + ", ".join(literal(schema) for schema in SCHEMAS) + ")"
    )


def copy_into(
    database: str, target: LoadTarget, stage_path: str, columns: tuple[str, ...] | list[str] = ()
) -> str:
    """COPY one archive file (``stage_path`` relative to the archive stage) into its table.

    Named explicitly (``FILES``), never by ``PATTERN``; ``ON_ERROR = ABORT_STATEMENT`` so a file is copied
    whole or not at all. ``columns``: the file's own, in order (default: all of the target's).
    """
    directory, file = posixpath.split(stage_path)
    columns = ", ".join(identifier(name) for name in columns or target.columns)
    return (
        f"COPY INTO {identifier(database)}.{target.table} ({columns})\n"
        f"FROM {literal(f'@{database}.{STAGE}/{directory}/')}\n"
        f"FILES = ({literal(file)})\n"
        f"FILE_FORMAT = (FORMAT_NAME = {literal(f'{database}.{FILE_FORMAT}')})\n"
        "ON_ERROR = ABORT_STATEMENT"
    )


@cache
def _sql_file(name: str) -> str:
    return resources.files("services.loader.sql").joinpath(f"{name}.sql").read_text()


def from_file(name: str, database: str, **identifiers: str) -> str:
    """A statement from ``sql/{name}.sql`` with its ``{database}`` (and other identifiers) filled in."""
    checked = {
        key: ".".join(identifier(part) for part in value.split(".")) for key, value in identifiers.items()
    }
    return _sql_file(name).format(database=identifier(database), **checked)


def loaded_files(database: str) -> str:
    return from_file("loaded_files", database)


def record_load(database: str) -> str:
    return from_file("record_load", database)


def stamp_copied_rows(database: str, target: LoadTarget) -> str:
    return from_file("stamp_copied_rows", database, table=target.table)


def count_extract_rows(database: str) -> str:
    return from_file("count_extract_rows", database)


def insert_batch(database: str) -> str:
    return from_file("insert_batch", database)


def update_batch(database: str) -> str:
    return from_file("update_batch", database)


@cache
def _star_merge_files() -> tuple[str, ...]:
    folder = resources.files("services.loader.sql").joinpath("star")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return tuple(folder.joinpath(name).read_text() for name in names)


def star_merge(database: str) -> list[str]:
    """The star schema's merge, every statement of ``sql/star/`` in order, for ``database``."""
    return [text.format(database=identifier(database)) for text in _star_merge_files()]

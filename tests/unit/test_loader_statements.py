"""The loader's SQL, as text: derived from the one schema, qualified with the database, no database needed."""

from __future__ import annotations

import re

import pytest

from services.loader import statements
from shared.schema import CLEAN_MOVIE_FIELDS, REJECT_FIELDS, snowflake_columns


def columns_of(ddl: str) -> list[str]:
    """Column definitions of a CREATE TABLE statement, one per line as the statement lays them out."""
    body = ddl[ddl.index("(") + 1 : ddl.rindex(")")]
    return [line.strip().rstrip(",") for line in body.strip().splitlines()]


def test_raw_movies_has_every_clean_movie_field_in_order_then_load_metadata():
    # GIVEN the canonical cleansed movie record
    expected = snowflake_columns(CLEAN_MOVIE_FIELDS)

    # WHEN the DDL of RAW.MOVIES is generated
    ddl = statements.create_table("MOVIES", "RAW.MOVIES", statements.table_columns()["RAW.MOVIES"])

    # THEN it creates that table with every field, in the schema's order, then where and when it loaded
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS MOVIES.RAW.MOVIES (")
    columns = columns_of(ddl)
    assert columns[: len(expected)] == expected
    assert columns[0] == "MOVIE_KEY VARCHAR" and "YEAR NUMBER(38,0)" in columns and "RATING FLOAT" in columns
    assert columns[len(expected) :] == [
        "FILE_NAME VARCHAR",
        "LOADED_AT TIMESTAMP_NTZ DEFAULT CURRENT_TIMESTAMP()",
        "SOURCE VARCHAR",
        "EXTRACT_KIND VARCHAR",
        "EXTRACTED_AT TIMESTAMP_NTZ",
    ]


def test_rejects_table_has_every_reject_field_then_load_metadata():
    # GIVEN the reject record
    expected = snowflake_columns(REJECT_FIELDS)

    # WHEN the DDL of AUDIT.REJECTS is generated
    ddl = statements.create_table("MOVIES", "AUDIT.REJECTS", statements.table_columns()["AUDIT.REJECTS"])

    # THEN it holds each reject with its reason, field, detail and the row as it arrived
    columns = columns_of(ddl)
    assert columns[: len(expected)] == expected
    assert [c.split()[0] for c in columns] == [
        "EXTRACT_ID",
        "REASON",
        "FIELD",
        "DETAIL",
        "RECORD",
        "FILE_NAME",
        "LOADED_AT",
        "SOURCE",
        "EXTRACT_KIND",
        "EXTRACTED_AT",
    ]


def test_audit_tables_have_the_columns_dashboards_and_the_cli_read():
    # GIVEN the loader's tables
    tables = statements.table_columns()

    # WHEN their column names are read off
    names = {
        table: [c.split()[0] for c in columns if not c.startswith("PRIMARY KEY")]
        for table, columns in tables.items()
    }

    # THEN the load history has one row per file and the batch audit one row per extract
    assert {"RAW.MOVIES", "AUDIT.REJECTS", "AUDIT.LOAD_HISTORY", "AUDIT.BATCHES"} <= set(tables)
    assert names["AUDIT.LOAD_HISTORY"] == [
        "FILE_NAME",
        "FILE_HASH",
        "TABLE_NAME",
        "EXTRACT_ID",
        "STATUS",
        "ROWS_LOADED",
        "LOADED_AT",
    ]
    assert "PRIMARY KEY (FILE_NAME)" in tables["AUDIT.LOAD_HISTORY"]
    assert names["AUDIT.BATCHES"] == [
        "EXTRACT_ID",
        "SOURCE",
        "EXTRACT_KIND",
        "EXTRACTED_AT",
        "ROWS_EXTRACTED",
        "ROWS_UNZIPPED",
        "ROWS_CLEAN",
        "ROWS_REJECTED",
        "ROWS_DUPLICATE",
        "ROWS_LOADED",
        "ROWS_MERGED",
        "VERSIONS_OPENED",
        "CHANGED_IN_PLACE",
        "MOVIES_CLOSED",
        "STATUS",
        "RECONCILED_AT",
    ]


def test_bootstrap_creates_database_schemas_format_stage_and_tables_idempotently():
    # GIVEN a database that has nothing yet
    # WHEN the bootstrap statements are generated
    run = statements.bootstrap_statements("MOVIES", "moviepipe-archive")

    # THEN every statement is safe to run again: data-holding objects are created if missing, and the
    # stage, file format and views (which hold none) are replaced, so the definitions in code are the
    # ones in use; the genres are inserted where missing
    assert all(
        " IF NOT EXISTS " in s or s.startswith("CREATE OR REPLACE ") or " NOT IN (SELECT " in s for s in run
    )
    assert [s for s in run if " OR REPLACE " in s and " VIEW " not in s] == [
        statements.create_file_format("MOVIES"),
        statements.create_stage("MOVIES", "moviepipe-archive"),
    ]
    assert run[0] == "CREATE DATABASE IF NOT EXISTS MOVIES"
    for schema in ("RAW", "AUDIT", "ANALYTICS"):
        assert f"CREATE SCHEMA IF NOT EXISTS MOVIES.{schema}" in run
    assert "CREATE OR REPLACE STAGE MOVIES.RAW.ARCHIVE URL = 's3://moviepipe-archive/'" in run
    file_format = statements.create_file_format("MOVIES")
    assert file_format.startswith("CREATE OR REPLACE FILE FORMAT MOVIES.RAW.ARCHIVE_CSV TYPE = CSV ")
    assert "SKIP_HEADER = 1" in file_format and "FIELD_OPTIONALLY_ENCLOSED_BY = '\"'" in file_format
    assert "EMPTY_FIELD_AS_NULL = TRUE" in file_format
    created = [s.split()[5] for s in run if s.startswith("CREATE TABLE")]
    assert created[:4] == [
        "MOVIES.RAW.MOVIES",
        "MOVIES.AUDIT.REJECTS",
        "MOVIES.AUDIT.LOAD_HISTORY",
        "MOVIES.AUDIT.BATCHES",
    ]
    for table in ("DIM_MOVIE", "DIM_GENRE", "BRIDGE_MOVIE_GENRE", "DIM_YEAR", "FACT_MOVIE_RATING"):
        assert f"MOVIES.ANALYTICS.{table}" in created
    views = [s.split()[4] for s in run if s.startswith("CREATE OR REPLACE VIEW")]
    assert views == [
        "MOVIES.ANALYTICS.V_MOVIE_HISTORY",
        "MOVIES.ANALYTICS.V_RATINGS_BY_GENRE_DECADE",
        "MOVIES.ANALYTICS.V_TOP_MOVIES",
        "MOVIES.ANALYTICS.V_BUDGET_VS_RATING",
    ]


def test_bootstrap_leaves_existing_tables_alone():
    # GIVEN a database where RAW.MOVIES exists (the local warehouse clears a table's COPY load history on
    # any CREATE TABLE of it, even IF NOT EXISTS)
    # WHEN the bootstrap statements are generated
    run = statements.bootstrap_statements("MOVIES", "b", existing_tables=frozenset({"RAW.MOVIES"}))

    # THEN RAW.MOVIES is not created again, the rest still is
    assert not any("MOVIES.RAW.MOVIES" in s for s in run if s.startswith("CREATE TABLE"))
    assert any("MOVIES.AUDIT.REJECTS" in s for s in run)


def test_bootstrap_uses_a_storage_integration_in_aws():
    # GIVEN a storage integration (how Snowflake reads the archive bucket in AWS)
    # WHEN the stage is generated
    stage = statements.create_stage("MOVIES", "prod-archive", "ARCHIVE_S3")

    # THEN the stage reads through it
    assert stage.startswith("CREATE OR REPLACE STAGE MOVIES.RAW.ARCHIVE URL = 's3://prod-archive/' ")
    assert stage.endswith(" STORAGE_INTEGRATION = ARCHIVE_S3")


def test_copy_names_the_one_file_and_lists_the_columns_of_the_schema():
    # GIVEN the movies target and a file in an extract's folder of the archive
    target = statements.TARGETS["movies"]

    # WHEN the COPY statement is generated
    copy = statements.copy_into("MOVIES", target, "imdb/20261126T041700Z-3f9c2a1b/movies/part-00000.csv")

    # THEN it copies exactly that file through the stage and file format, whole or not at all
    assert copy.splitlines() == [
        "COPY INTO MOVIES.RAW.MOVIES (" + ", ".join(f.name.upper() for f in CLEAN_MOVIE_FIELDS) + ")",
        "FROM '@MOVIES.RAW.ARCHIVE/imdb/20261126T041700Z-3f9c2a1b/movies/'",
        "FILES = ('part-00000.csv')",
        "FILE_FORMAT = (FORMAT_NAME = 'MOVIES.RAW.ARCHIVE_CSV')",
        "ON_ERROR = ABORT_STATEMENT",
    ]
    assert "PATTERN" not in copy and "CONTINUE" not in copy


def test_copy_of_rejects_goes_to_the_audit_schema():
    # WHEN a rejects file's COPY is generated
    copy = statements.copy_into("MOVIES", statements.TARGETS["rejects"], "imdb/e/rejects/part-00001.csv")

    # THEN it lands in AUDIT.REJECTS with the reject columns
    assert copy.startswith("COPY INTO MOVIES.AUDIT.REJECTS (EXTRACT_ID, REASON, FIELD, DETAIL, RECORD)\n")
    assert "FILES = ('part-00001.csv')" in copy


def test_statements_from_sql_files_are_qualified_with_the_database():
    # WHEN the statements kept in sql/*.sql are read for a database
    texts = {
        "loaded_files": statements.loaded_files("T_1"),
        "record_load": statements.record_load("T_1"),
        "stamp": statements.stamp_copied_rows("T_1", statements.TARGETS["movies"]),
        "count": statements.count_extract_rows("T_1"),
        "insert batch": statements.insert_batch("T_1"),
        "update batch": statements.update_batch("T_1"),
        **{f"star {n}": text for n, text in enumerate(statements.star_merge("T_1"))},
    }

    # THEN every table is in that database, and no placeholder is left unfilled
    for text in texts.values():
        assert "{" not in text
        assert all(ref.startswith("T_1.") for ref in re.findall(r"\b\w+\.(?:RAW|AUDIT|ANALYTICS)\.\w+", text))
        code = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
        assert not re.search(r"(?<![\w.])(?:RAW|AUDIT|ANALYTICS)\.\w", code)
    assert "UPDATE T_1.RAW.MOVIES\nSET\n    FILE_NAME = %(file_name)s," in texts["stamp"]
    assert texts["stamp"].endswith("WHERE FILE_NAME IS NULL AND EXTRACT_ID = %(extract_id)s\n")
    assert texts["insert batch"].count("INSERT INTO T_1.AUDIT.BATCHES") == 1
    assert texts["update batch"].count("UPDATE T_1.AUDIT.BATCHES") == 1
    assert texts["update batch"].rstrip().endswith("WHERE EXTRACT_ID = %(extract_id)s")


@pytest.mark.parametrize("name", ["MOVIES; DROP TABLE X", "a.b", "1ABC", "", "x'"])
def test_identifiers_that_are_not_plain_are_refused(name):
    # WHEN a database name that is not a plain identifier reaches the SQL
    # THEN nothing is generated
    with pytest.raises(ValueError, match="not a plain Snowflake identifier"):
        statements.bootstrap_statements(name, "bucket")


def test_literals_escape_quotes():
    assert statements.literal("it's") == "'it''s'"

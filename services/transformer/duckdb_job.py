"""The DuckDB engine: the transform of ``shared.transform`` run in this process, for batches that fit.

It runs the SQL the Spark job runs (transpiled from Spark's dialect by sqlglot) over ``movies.csv`` as
``services.transformer.movies_csv`` reads it, except that it ranks duplicates the way a table kept in
place allows (``shared.transform.first_ranked_query``: the same key, order and ranks). It leaves the
same archive files behind: ``movies/`` and ``rejects/`` under the output directory, one CSV part each,
in the format Spark writes and the loader reads. A batch costs tens of milliseconds of start-up here,
against seconds for a Spark session.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from pathlib import Path

import duckdb
import pyarrow as pa

from services.transformer.counts import TransformCounts, verified
from services.transformer.movies_csv import read_lines
from shared.transform import (
    COUNTS,
    DEFAULT_MIN_VOTES,
    DEFAULT_YEAR_HORIZON,
    RANK,
    ROW,
    BatchRules,
    checked_query,
    clean_query,
    first_ranked_query,
    rejects_query,
    repeated_ranks_query,
    to_duckdb,
)

BATCH_ROWS = 8192
"""Rows per Arrow batch handed to DuckDB: it scans batches in parallel, one big chunk on one thread."""
CSV_OPTIONS = "FORMAT CSV, HEADER TRUE, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULLSTR '', COMMENT ''"
"""The archive's CSV as ``COPY`` writes it, byte for byte as Spark writes it: empty = null, ``""`` = the
empty string, and no comment character (else a value holding ``#`` would be quoted)."""


EXTRACT_ID_PLACEHOLDER = "moviepipe-extract-id"
"""Stands for the batch's extract id in the SQL that is transpiled, so that the transpiled text (cached)
serves every batch; the id is put in afterwards (sqlglot takes some 10 ms over these queries)."""
_cursor_lock = threading.Lock()


@functools.cache
def _database(threads: int) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process (and thread count): opening one costs some 15-25 ms, a cursor on
    it (a connection of its own, with its own temporary tables) 1-2 ms."""
    return duckdb.connect(config={"threads": threads, "preserve_insertion_order": True})


def _connection(threads: int) -> duckdb.DuckDBPyConnection:
    with _cursor_lock:
        return _database(threads).cursor()


def _for_batch(spark_sql: str, extract_id: str) -> str:
    """``spark_sql`` (written with ``EXTRACT_ID_PLACEHOLDER``) in DuckDB's dialect, for this extract."""
    return to_duckdb(spark_sql).replace(_literal(EXTRACT_ID_PLACEHOLDER), _literal(extract_id))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _aggregates(aggregates: dict[str, str]) -> str:
    return ", ".join(f"{sql} AS {name}" for name, sql in aggregates.items())


def _path(path: Path) -> str:
    return _literal(str(path))


def transform(
    *,
    input_path: Path,
    extract_id: str,
    expected_rows: int,
    output: Path,
    extracted_at: str | None = None,
    year_horizon: int = DEFAULT_YEAR_HORIZON,
    min_votes: int = DEFAULT_MIN_VOTES,
    mean_rating: float | None = None,
    threads: int = 2,
) -> TransformCounts:
    """Cleanse ``input_path`` and write ``movies/`` and ``rejects/`` under ``output``; the counts.

    Refuses and fails as the Spark job does (``RowCountMismatch``, ``CountsNotConserved``).
    """
    rules = BatchRules.of(
        extract_id, extracted_at, year_horizon, min_votes=min_votes, mean_rating=mean_rating
    )
    raw = read_lines(Path(input_path))
    raw = pa.Table.from_batches(raw.to_batches(max_chunksize=BATCH_ROWS), raw.schema)
    shaped = dataclasses.replace(rules, extract_id=EXTRACT_ID_PLACEHOLDER)
    with _connection(threads) as connection:
        connection.register("raw_rows", raw)
        # One table of every row, checked and ranked (a reject has no rank), stored in input order (the
        # lines are in file order, and DuckDB inserts a scan's rows in the order it read them): clean
        # rows, rejects and counts are read from it in that order, and the checks run once. Every valid
        # row is ranked 1 at first, then the few whose key repeats get their ranks in place: a window
        # over every row would sort them all by the dedupe order's 26 keys, and then back by ``_row``.
        checked = f"({checked_query('raw_rows', rules)}) checked"
        connection.execute(f"CREATE TEMP TABLE ranked AS {to_duckdb(first_ranked_query(checked))}")
        connection.execute(
            f"UPDATE ranked SET {RANK} = repeated.{RANK}"
            f" FROM ({to_duckdb(repeated_ranks_query('ranked'))}) AS repeated"
            f" WHERE ranked.{ROW} = repeated.{ROW} AND repeated.{RANK} > 1"
        )
        totals = connection.execute(to_duckdb(f"SELECT {_aggregates(COUNTS)} FROM ranked")).fetchone()
        # Read in that order without sorting again: a filter keeps it, and so does the clean rows' one
        # window (the batch's mean rating, over no partition and no order: DuckDB keeps insertion order).
        clean = clean_query("ranked", shaped)
        rejects = rejects_query("ranked", EXTRACT_ID_PLACEHOLDER)
        for role, query in (("movies", clean), ("rejects", rejects)):
            folder = Path(output) / role
            folder.mkdir(parents=True, exist_ok=True)
            rows = f"SELECT * EXCLUDE ({ROW}) FROM ({_for_batch(query, extract_id)})"
            connection.execute(f"COPY ({rows}) TO {_path(folder / 'part-00000.csv')} ({CSV_OPTIONS})")
    counts = TransformCounts.from_dict(dict(zip(COUNTS, totals, strict=True)))
    return verified(counts, extract_id=extract_id, expected_rows=expected_rows)

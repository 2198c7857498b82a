"""``moviepipe seed scaled``: the IMDb movies repeated to N rows, distinct keys, registered as a source."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pyarrow as pa
import pytest

from services.extractor.settings import ExtractorSettings
from services.extractor.sources import default_sources
from services.extractor.sources.config import load_sources_file
from services.extractor.sources.scaled import scaled_chunks
from shared.keys import movie_key
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.integration

IMDB_MOVIES = 58_788
IMDB_DUPLICATES = 3  # rows of the IMDb data that repeat a movie (same normalised title and year)


def test_scaled_rows_repeat_the_movies_with_distinct_keys_and_the_same_rows_every_time(imdb_arrow):
    # GIVEN a scaled set of a little over two copies of the IMDb movies
    rows = 2 * IMDB_MOVIES + 1_000
    # WHEN it is generated twice
    first = pa.concat_tables(scaled_chunks(rows, imdb_arrow))
    second = pa.concat_tables(scaled_chunks(rows, imdb_arrow))
    # THEN it has exactly N rows, ids 1..N, the same both times
    assert first.num_rows == rows and first.equals(second)
    assert first.column("id").to_pylist() == list(range(1, rows + 1))
    # AND every copy's titles are new movies: only the IMDb data's own repeats share a key
    copies = [
        first.slice(0, IMDB_MOVIES),
        first.slice(IMDB_MOVIES, IMDB_MOVIES),
        first.slice(2 * IMDB_MOVIES),
    ]
    keys_per_copy = [keys_of(copy) for copy in copies]
    assert len(keys_per_copy[0]) == len(keys_per_copy[1]) == IMDB_MOVIES - IMDB_DUPLICATES
    assert len(set().union(*keys_per_copy)) == sum(len(keys) for keys in keys_per_copy)
    assert first["title"][IMDB_MOVIES].as_py() == "$ (copy 1)"


def keys_of(table: pa.Table) -> set[str]:
    return {
        movie_key(title, year)
        for title, year in zip(table["title"].to_pylist(), table["year"].to_pylist(), strict=True)
    }


def run_seed(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "moviepipe.cli", "seed", "scaled", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"MOVIEPIPE_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)},
    )


def test_seeding_into_sqlite_registers_a_source_the_extractor_reads(tmp_path):
    # WHEN a user seeds 70,000 rows into SQLite
    result = run_seed(tmp_path, "--rows", "70000", "--into", "sqlite")
    # THEN the command says which source it made, and the sources file has it beside imdb
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imdb_70000" in result.stdout
    declared = load_sources_file(tmp_path / "sources.toml")
    assert sorted(declared) == ["imdb", "imdb_70000"]
    assert declared["imdb_70000"].kind == "sqlite"
    # AND the table holds the rows
    database = tmp_path / "sources" / "imdb_70000.sqlite"
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM imdb_70000_movies").fetchone() == (70_000,)
    # AND the extractor reads it as a source
    settings = ExtractorSettings(home=tmp_path)
    source = default_sources(settings).get("imdb_70000", settings)
    assert sum(batch.num_rows for batch in source.read_batches(50_000)) == 70_000


def test_seeding_into_postgres_replaces_the_table_and_registers_the_source(tmp_path, postgres_engine):
    # WHEN a user seeds into PostgreSQL, twice (the second replaces the first)
    for _ in range(2):
        result = run_seed(tmp_path, "--rows", "60000", "--into", "postgres", "--url", POSTGRES_URL)
        assert result.returncode == 0, result.stdout + result.stderr
    # THEN the table holds the rows once, and the source points at it
    try:
        with postgres_engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM imdb_60000_movies").scalar() == 60_000
        declared = load_sources_file(tmp_path / "sources.toml")["imdb_60000"]
        assert (declared.kind, declared.url, declared.table) == (
            "postgres",
            POSTGRES_URL,
            "imdb_60000_movies",
        )
    finally:
        with postgres_engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS imdb_60000_movies")


def test_a_bad_target_is_refused_clearly(tmp_path):
    result = run_seed(tmp_path, "--rows", "10", "--into", "oracle")
    assert result.returncode == 2 and "expected sqlite or postgres" in result.stderr

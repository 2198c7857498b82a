"""The transform's benchmark: the same ``movies.csv`` cleansed by each engine, warm, in one run.

For each size (the IMDb sample, and the scaled data set at 1,000,000 and 5,000,000 rows) the bench
writes ``movies.csv`` as the extractor writes it, then times each engine on it after one warm-up run:
Spark (the warm local session the transformer keeps, ``local[2]``) and DuckDB (in this process). Both
run the one definition in ``shared/transform.py``; their archives are compared file by file, so the
figures are for identical output. The ratio Spark / DuckDB says what the engine choice is worth.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pa_csv

EXTRACT_ID = "20260101T000000Z-bench000"
EXTRACTED_AT = "2026-01-01T00:00:00+00:00"
SIZES = (58_788, 1_000_000, 5_000_000)
TARGETS = {"duckdb_imdb_seconds": 0.6, "spark_over_duckdb_at_1m": 4.0}


def write_movies_csv(rows: int, path: Path) -> int:
    """``rows`` movies as the extractor writes them: the IMDb sample, scaled with new titles past its size."""
    from services.extractor.sources.scaled import imdb_table, scaled_chunks

    base = imdb_table()
    options = pa_csv.WriteOptions(include_header=True, delimiter=",", quoting_style="needed")
    written = 0
    with path.open("wb") as out:
        for chunk in scaled_chunks(rows, base) if rows != base.num_rows else [base]:
            table = chunk.drop_columns([c for c in chunk.column_names if c == "id"])
            pa_csv.write_csv(table, out, write_options=options)
            options = pa_csv.WriteOptions(include_header=False, delimiter=",", quoting_style="needed")
            written += table.num_rows
    return written


def _digest(folder: Path) -> dict[str, str]:
    """Each role's CSV files under ``folder`` (``movies/``, ``rejects/``), in order, as one sha256.

    Spark names its part files with a run id; what is compared is their content, in part order.
    """
    found = {}
    for role in sorted(path.name for path in folder.iterdir() if path.is_dir()):
        digest = hashlib.sha256()
        for path in sorted((folder / role).glob("part-*.csv")):
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        found[role] = digest.hexdigest()
    return found


def _timed(run: Callable[[Path], Any], work: Path, runs: int) -> tuple[list[float], Any, dict[str, str]]:
    seconds, counts, digest = [], None, {}
    for n in range(runs + 1):
        output = work / f"out-{n}"
        started = time.perf_counter()
        counts = run(output)
        elapsed = time.perf_counter() - started
        if n:  # the first run warms up
            seconds.append(elapsed)
        digest = _digest(output)
        shutil.rmtree(output)
    return seconds, counts, digest


def _engines(spark: Any, movies: Path, rows: int) -> dict[str, Callable[[Path], Any]]:
    """Each engine as a function of its output folder, on ``movies`` (``rows`` rows)."""
    from services.transformer import duckdb_job, glue_job

    common = {"extract_id": EXTRACT_ID, "expected_rows": rows, "extracted_at": EXTRACTED_AT}
    return {
        "duckdb": lambda out: duckdb_job.transform(input_path=movies, output=out, **common),
        "spark": lambda out: glue_job.transform(spark, input_path=str(movies), output=out.as_uri(), **common),
    }


def run_transform_bench(*, sizes: tuple[int, ...] = SIZES, runs: int = 3, step) -> dict[str, Any]:
    """Per size: each engine's median seconds (warm), rows/s, the ratio, and whether outputs agree."""
    from services.transformer.runner import local_spark_session

    started = time.perf_counter()
    spark = local_spark_session("local[2]", shuffle_partitions=2)
    spark_start = time.perf_counter() - started
    results = []
    with tempfile.TemporaryDirectory(prefix="moviepipe-bench-transform-") as tmp:
        for size in sizes:
            work = Path(tmp) / str(size)
            work.mkdir()
            movies = work / "movies.csv"
            rows = write_movies_csv(size, movies)
            engines = _engines(spark, movies, rows)
            measured: dict[str, Any] = {"rows": rows, "bytes": movies.stat().st_size}
            digests = {}
            for engine, run in engines.items():
                seconds, counts, digests[engine] = _timed(
                    run, work / engine, max(1, runs if size < 5e6 else 1)
                )
                median = statistics.median(seconds)
                measured[engine] = {
                    "seconds": [round(s, 3) for s in seconds],
                    "median_seconds": round(median, 3),
                    "rows_per_second": round(rows / median),
                    "counts": counts.as_dict(),
                }
                step(f"transform {rows:,} rows on {engine}: {median:.2f}s")
            measured["identical_output"] = digests["duckdb"] == digests["spark"]
            measured["spark_over_duckdb"] = round(
                measured["spark"]["median_seconds"] / measured["duckdb"]["median_seconds"], 2
            )
            results.append(measured)
    imdb = next((r for r in results if r["rows"] == 58_788), None)
    at_1m = next((r for r in results if r["rows"] == 1_000_000), None)
    return {
        "sizes": results,
        "spark_session_start_seconds": round(spark_start, 2),
        "targets": TARGETS,
        "met": {
            "duckdb_imdb": imdb is not None
            and imdb["duckdb"]["median_seconds"] <= TARGETS["duckdb_imdb_seconds"],
            "spark_within_4x_at_1m": at_1m is not None
            and at_1m["spark_over_duckdb"] <= TARGETS["spark_over_duckdb_at_1m"],
        },
    }

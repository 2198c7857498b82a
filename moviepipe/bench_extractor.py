"""The extractor's benchmark: a large PostgreSQL table to a zipped bundle in the landing bucket.

Each run is a child process (``python -m moviepipe.bench_extractor``) that extracts the scaled source
exactly as the extractor's queue handler would (``run_extract``) and reports its wall time and its own
peak RSS, so the figure is the extractor's alone. The runs land in buckets of a prefix of their own,
which nothing consumes, so the running stack is not asked to transform a million rows between runs.
The reference, in the same run: the database's own ``COPY … TO STDOUT`` of the same table, read and
thrown away — what the extractor could at best do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from moviepipe.peak import peak_rss_bytes
from shared.aws import aws_environment
from shared.settings import Settings

TARGET_ROWS_PER_SECOND = 150_000
TARGET_PEAK_RSS_MB = 300


def ensure_scaled_postgres(settings: Settings, rows: int, url: str, step: Callable[[str], None]) -> str:
    """The scaled source of ``rows`` rows in PostgreSQL, seeded (and registered) unless it is there."""
    import sqlalchemy as sa

    from services.extractor.settings import extractor_settings
    from services.extractor.sources import ensure_sources_file
    from services.extractor.sources.config import load_sources_file
    from services.extractor.sources.scaled import scaled_name, seed_scaled

    extractor = extractor_settings(settings)
    sources_file = ensure_sources_file(extractor.sources_file)
    name = scaled_name(rows)
    declared = load_sources_file(sources_file).get(name)
    if declared is not None and declared.kind == "postgres":
        engine = sa.create_engine(declared.url if isinstance(declared.url, str) else url)
        try:
            with engine.connect() as connection:
                found = connection.exec_driver_sql(f'SELECT count(*) FROM "{declared.table}"').scalar()
            if found == rows:
                return name
        except sa.exc.SQLAlchemyError:
            pass
        finally:
            engine.dispose()
    step(f"seeding {rows:,} rows into PostgreSQL as source {name!r}")
    began = time.monotonic()
    seed_scaled(
        rows, into="postgres", sources_file=sources_file, sqlite_dir=extractor.sources_dir, postgres_url=url
    )
    step(f"seeded in {time.monotonic() - began:.1f}s")
    return name


def copy_reference(url: str, table: str) -> float:
    """Seconds for PostgreSQL to send the whole table with ``COPY … TO STDOUT`` (read, not kept)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            began = time.perf_counter()
            with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" TO STDOUT WITH (FORMAT csv)') as copy:
                for _ in copy:
                    pass
            return time.perf_counter() - began
    finally:
        engine.dispose()


def run_once(settings: Settings, source: str) -> dict[str, Any]:
    """One extract of ``source`` in a child process: its seconds, rows, bytes and peak RSS."""
    from deploy.provision import provision
    from moviepipe.stack import child_environment

    bench_settings = settings.model_copy(update={"prefix": f"{settings.prefix}-bench"})
    provision(bench_settings)  # here, so the child's memory is the extract's alone
    env = {**child_environment(bench_settings), **aws_environment(bench_settings)}
    done = subprocess.run(
        [sys.executable, "-m", "moviepipe.bench_extractor", "--source", source],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the extractor bench run failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_extractor_bench(
    settings: Settings, *, rows: int, runs: int, postgres_url: str, step: Callable[[str], None]
) -> dict[str, Any]:
    """Seed (once), then time ``runs`` extracts of the scaled PostgreSQL source, and the COPY reference."""
    from services.extractor.settings import extractor_settings
    from services.extractor.sources.config import load_sources_file

    source = ensure_scaled_postgres(settings, rows, postgres_url, step)
    declared = load_sources_file(extractor_settings(settings).sources_file)[source]
    measured = []
    for run in range(1, runs + 1):
        result = run_once(settings, source)
        step(
            f"extractor run {run}/{runs}: {result['rows']:,} rows in {result['seconds']:.2f}s "
            f"({result['rows'] / result['seconds']:,.0f} rows/s), peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        measured.append(result)
    reference = copy_reference(
        declared.url if isinstance(declared.url, str) else postgres_url, declared.table
    )
    seconds = statistics.median(r["seconds"] for r in measured)
    peak = max(r["peak_rss_mb"] for r in measured)
    return {
        "source": source,
        "rows": measured[0]["rows"],
        "bundle_bytes": measured[0]["bytes"],
        "runs": measured,
        "median_seconds": round(seconds, 3),
        "rows_per_second": round(measured[0]["rows"] / seconds),
        "peak_rss_mb": round(peak, 1),
        "reference_copy_seconds": round(reference, 3),
        "reference_copy_rows_per_second": round(measured[0]["rows"] / reference),
        "targets": {"rows_per_second": TARGET_ROWS_PER_SECOND, "peak_rss_mb": TARGET_PEAK_RSS_MB},
        "met": measured[0]["rows"] / seconds >= TARGET_ROWS_PER_SECOND and peak <= TARGET_PEAK_RSS_MB,
    }


def _child(source_name: str) -> None:
    """Inside the child: extract once into the (provisioned) bench prefix, print the figures as JSON."""
    from services.extractor.extract import new_extract_id, run_extract
    from services.extractor.settings import ExtractorSettings
    from services.extractor.sources import default_sources
    from shared.aws import client
    from shared.progress import ExtractProgress

    settings = ExtractorSettings()
    source = default_sources(settings).get(source_name, settings)
    extract_id = new_extract_id()
    progress = ExtractProgress(settings)
    progress.begin(extract_id, source_name)
    began = time.perf_counter()
    result = run_extract(settings, source, extract_id, full_refresh=True, progress=progress)
    seconds = time.perf_counter() - began
    peak_bytes = peak_rss_bytes()
    s3 = client("s3", settings)
    s3.delete_object(Bucket=settings.bucket("landing"), Key=f"{source_name}/{extract_id}.zip")
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "rows": result.rows,
                "bytes": result.bytes,
                "peak_rss_mb": peak_bytes / (1 << 20),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="One timed extract (run by `moviepipe bench`).")
    parser.add_argument("--source", required=True)
    _child(parser.parse_args().source)

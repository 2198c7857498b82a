"""End to end at scale: the scaled PostgreSQL source (1,000,000 and 5,000,000 rows) through the running
stack, each stage's time, rows per second, every service's peak memory, and how long an S3 event waits
for its consumer.

Each size is one extract requested with ``POST /extracts`` and followed until reconciled, on a stack
that has already loaded it once (warm: the session, the source's cursor, the warehouse's tables). The
reference is DuckDB's own time to read the same extract's ``movies.csv`` and write it back as CSV, in
this process, in the same run.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moviepipe import stack
from moviepipe.client import ExtractorClient
from moviepipe.loadtest import percentile
from shared.aws import DOWNLOADS, client
from shared.settings import STAGES, Settings

SCALE_SIZES = (1_000_000, 5_000_000)
TARGETS = {1_000_000: 45.0, 5_000_000: 180.0}
RSS_LIMIT_BYTES = 1.5e9
PICKUP_TARGET_MS = 50.0


def peak_rss(settings: Settings) -> dict[str, int]:
    """Each running process's peak resident memory so far (``VmHWM``), by name, in bytes."""
    state = stack.read_state(settings) or {"processes": []}
    found = {}
    for process in state["processes"]:
        if not process["pid"]:
            continue
        try:
            status = Path(f"/proc/{process['pid']}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                found[process["name"]] = int(line.split()[1]) * 1024
    return found


def queue_waits(settings: Settings, since: float) -> list[float]:
    """Seconds each message waited in its queue before a consumer received it (first receives only), as
    the services logged them (``message_received``) since ``since`` (epoch seconds)."""
    import json
    from datetime import datetime

    waits = []
    for log in sorted(stack.log_dir(settings).glob("*.log")):
        with log.open(errors="replace") as lines:
            for line in lines:
                if '"message_received"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                    if datetime.fromisoformat(entry["ts"]).timestamp() >= since:
                        waits.append(entry["waited_ms"] / 1000)
                except (ValueError, KeyError):
                    continue
    return waits


def pickups(record: dict[str, Any]) -> list[float]:
    """Seconds from one stage finishing (its output written, the S3 event sent) to the next starting."""
    from moviepipe.bench import _seconds

    return [
        _seconds(record["stages"][before]["at"], record["stages"][after]["started_at"])
        for before, after in itertools.pairwise(STAGES)
    ]


def spark_jvm_rss() -> dict[str, int]:
    """Peak memory of the Spark JVMs the transformers started (children of the stack, not in stack.json)."""
    found = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cmdline = (status.parent / "cmdline").read_bytes()
            if b"org.apache.spark" not in cmdline:
                continue
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    found[f"Spark JVM (pid {status.parent.name})"] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return found


def duckdb_reference(settings: Settings, source: str, extract_id: str) -> float:
    """DuckDB reading the extract's processed ``movies.csv`` and writing it as CSV: seconds."""
    import duckdb

    with tempfile.TemporaryDirectory() as work:
        movies = Path(work) / "movies.csv"
        key = f"{source}/{extract_id}/movies.csv"
        client("s3", settings).download_file(settings.bucket("processed"), key, str(movies), Config=DOWNLOADS)
        began = time.perf_counter()
        with duckdb.connect() as connection:
            connection.execute(
                f"COPY (SELECT * FROM read_csv('{movies}', all_varchar=true)) TO '{Path(work) / 'out.csv'}'"
            )
        return time.perf_counter() - began


def run_scale_bench(
    settings: Settings, step: Callable[[str], None], postgres_url: str, sizes: tuple[int, ...] = SCALE_SIZES
) -> dict[str, Any]:
    """For each size: a warm-up extract, then one timed; stage times, rows/s, RSS, pickup latency."""
    from moviepipe.bench import timings
    from moviepipe.bench_extractor import ensure_scaled_postgres

    client_ = ExtractorClient(settings)
    began = time.time()
    results = []
    all_pickups: list[float] = []
    for rows in sizes:
        source = ensure_scaled_postgres(settings, rows, postgres_url, step)
        measured = None
        for label in ("warm-up", "timed"):
            extract_id = client_.request_extract(source, full_refresh=True)
            record = client_.follow(extract_id, lambda _: None, timeout=1800)
            if record["status"] != "loaded":
                raise RuntimeError(f"{source}: extract {extract_id} ended {record['status']}")
            measured = timings(record)
            all_pickups += pickups(record)
            step(f"scale {rows:,} rows, {label}: {measured['total']:.1f} s")
        counts = record["stages"]["loader"].get("counts", {})
        results.append(
            {
                "rows": rows,
                "source": source,
                "stages": {name: round(value, 2) for name, value in measured.items()},
                "rows_per_second": round(rows / measured["total"]),
                "loaded": counts.get("loaded"),
                "target_seconds": TARGETS.get(rows),
                "met": measured["total"] <= TARGETS.get(rows, float("inf")),
                "duckdb_reference_seconds": round(duckdb_reference(settings, source, extract_id), 2),
            }
        )
    rss = peak_rss(settings)
    jvm = spark_jvm_rss()
    services = {name: size for name, size in rss.items() if name.split("-")[0] in (*STAGES, "dashboard")}
    # The transformer's process runs the Spark driver (with its JVM): the target exempts it.
    over = {
        name: size for name, size in services.items() if size > RSS_LIMIT_BYTES and "transformer" not in name
    }
    ordered = all_pickups
    waited = queue_waits(settings, began)
    return {
        "queue_wait_ms": {
            "samples": len(waited),
            "p50": round(percentile(waited, 0.5) * 1000, 1) if waited else None,
            "p99": round(percentile(waited, 0.99) * 1000, 1) if waited else None,
            "target_p50": PICKUP_TARGET_MS,
        },
        "sizes": results,
        "peak_rss_bytes": rss,
        "spark_jvm_rss_bytes": jvm,
        "rss_limit_bytes": RSS_LIMIT_BYTES,
        "rss_met": not over,
        "pickup_ms": {
            "samples": len(ordered),
            "p50": round(percentile(ordered, 0.5) * 1000, 1),
            "p99": round(percentile(ordered, 0.99) * 1000, 1),
            "target_p50": PICKUP_TARGET_MS,
        },
    }

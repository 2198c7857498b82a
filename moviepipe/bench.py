"""``moviepipe bench``: time extracts end to end on a warm stack and write docs/BENCHMARKS.md.

Timings come from the extract's own progress record (each stage writes when it starts and finishes),
so what is measured is what a user waits for: ``POST /extracts`` to reconciled rows in the warehouse.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from moviepipe import stack
from moviepipe.bench_scale import duckdb_reference
from moviepipe.client import ApiError, ExtractorClient
from shared.settings import STAGES, Settings
from shared.warehouse import query

TARGET_SECONDS = 2.5
"""POST /extracts → reconciled for the IMDb sample, warm (issue 8; it was 20 s before the star schema)."""


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def timings(record: dict[str, Any]) -> dict[str, float]:
    """Per-stage working time, the time between stages (queue and event delivery), and the total."""
    found: dict[str, float] = {}
    previous_end = record["requested_at"]
    waiting = 0.0
    for stage in STAGES:
        entry = record["stages"][stage]
        found[stage] = _seconds(entry["started_at"], entry["at"])
        waiting += max(0.0, _seconds(previous_end, entry["started_at"]))
        previous_end = entry["at"]
    found["between stages"] = waiting
    found["total"] = _seconds(record["requested_at"], record["stages"]["loader"]["at"])
    return found


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.split(
            "\n"
        )[0]
    except OSError:
        java = "not found"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": java,
    }


def versions() -> dict[str, str]:
    """The versions of what the figures depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("pyspark", "pyarrow", "duckdb", "fakesnow", "moto", "sqlalchemy", "psycopg", "httpx"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


SECTIONS = (
    "end_to_end",
    "scale",
    "dashboard",
    "transform",
    "extractor",
    "unzip",
    "loader",
    "load",
    "restart",
    "containers",
)
LOADER_SIZES = (58_788, 1_000_000)


def run_bench(
    settings: Settings,
    console: Console,
    *,
    runs: int,
    output: str,
    step,
    sections: tuple[str, ...] = SECTIONS,
    extractor_rows: int = 1_000_000,
    postgres_url: str | None = None,
    loader_rows: tuple[int, ...] = (),
) -> int:
    """Run the chosen sections, merge them into ``benchmarks.json`` beside ``output``, write both files.

    Sections not run this time keep the figures of their last run (each says when it was measured).
    """
    report_json = Path(output).with_name("benchmarks.json")
    report: dict[str, Any] = {}
    if report_json.exists():
        try:
            report = json.loads(report_json.read_text())
        except ValueError:
            report = {}
    report["machine"] = machine()
    report["versions"] = versions()
    if "containers" in sections:
        # The compose stack takes the local stack's ports: it runs alone, before anything else.
        if stack.is_up(settings):
            stack.stop_detached(settings, step)
        report["containers"] = _stamped(run_containers_bench(step))
    if set(sections) - {"containers"} and not stack.is_up(settings):
        began = time.monotonic()
        stack.start_detached(settings, step)
        report["stack_started_seconds"] = round(time.monotonic() - began, 1)
    if "end_to_end" in sections:
        measured = end_to_end(settings, console, runs=runs, step=step)
        if measured is None:
            return 1
        report["end_to_end"] = measured
    if "scale" in sections:
        from moviepipe.bench_scale import run_scale_bench
        from services.extractor.sources.scaled import DEFAULT_POSTGRES_URL

        report["scale"] = _stamped(run_scale_bench(settings, step, postgres_url or DEFAULT_POSTGRES_URL))
    if "dashboard" in sections:
        from moviepipe.bench_dashboard import run_dashboard_bench

        report["dashboard"] = _stamped(run_dashboard_bench(settings, runs=runs, step=step))
    if "transform" in sections:
        from moviepipe.bench_transform import run_transform_bench

        report["transform"] = _stamped(run_transform_bench(runs=runs, step=step))
    if "extractor" in sections:
        from moviepipe.bench_extractor import run_extractor_bench
        from services.extractor.sources.scaled import DEFAULT_POSTGRES_URL

        report["extractor"] = _stamped(
            run_extractor_bench(
                settings,
                rows=extractor_rows,
                runs=runs,
                postgres_url=postgres_url or DEFAULT_POSTGRES_URL,
                step=step,
            )
        )
    if "unzip" in sections:
        from moviepipe.bench_unzip import run_unzip_bench

        report["unzip"] = _stamped(run_unzip_bench(settings, step=step))
    if "loader" in sections:
        from moviepipe.bench_loader import run_loader_bench

        report["loader"] = _stamped(run_loader_bench(settings, sizes=loader_rows or LOADER_SIZES, step=step))
    if "load" in sections:
        report["load"] = _stamped(run_load_bench(settings, step))
    if "restart" in sections:
        report["restart"] = _stamped(run_restart_bench(settings, step))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    report_json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    Path(output).write_text(render(report))
    console.print(f"wrote {output} and {report_json}")
    return 0


LOAD_SOURCES = 5
LOAD_POSTS = 50
LOAD_RATE = 200
LOAD_SECONDS = 60


def run_load_bench(settings: Settings, step) -> dict[str, Any]:
    """50 POST /extracts at once over five sources, then GET /extracts/{id} at 200/s for a minute."""
    from moviepipe.client import ExtractorClient
    from moviepipe.loadtest import get_at_rate, post_storm
    from services.extractor.sources.scaled import register_source

    client = ExtractorClient(settings)
    seeded = client.follow(client.request_extract("imdb"), lambda _: None, timeout=600)["extract_id"]
    sources = [f"load_{n}" for n in range(LOAD_SOURCES)]
    for name in sources:
        register_source(
            settings.home / "sources.toml",
            name,
            {"kind": "sqlite", "url": "sqlite:///sources/imdb.sqlite", "table": "movies"},
        )
    storm = post_storm(settings, sources, requests=LOAD_POSTS)
    step(f"load: {LOAD_POSTS} POST /extracts at once: {storm['statuses']}")
    reads = get_at_rate(settings, [seeded, *storm["accepted"]], rate=LOAD_RATE, seconds=LOAD_SECONDS)
    step(f"load: GET at {reads['achieved_rate']}/s: p50 {reads['p50_ms']} ms, p99 {reads['p99_ms']} ms")
    outcomes = [
        client.follow(extract, lambda _: None, timeout=900)["status"] for extract in storm["accepted"]
    ]
    return {"posts": storm, "reads": reads, "accepted_outcomes": dict(Counter(outcomes))}


def _stamped(figures: dict[str, Any]) -> dict[str, Any]:
    """A section's figures with when they were measured."""
    return {"measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", **figures}


def run_restart_bench(settings: Settings, step) -> dict[str, Any]:
    """What keeping moto's state costs: ``down`` then ``up`` twice on what the stack holds now.

    The first ``down`` copies every object changed since the last one; the second finds nothing changed
    and links the objects it already holds. Each ``up`` restores everything.
    """
    from moviepipe import snapshot

    runs = []
    for label in ("first", "again, nothing changed"):
        began = time.monotonic()
        stack.stop_detached(settings, step)
        down = time.monotonic() - began
        began = time.monotonic()
        stack.start_detached(settings, step)
        up = time.monotonic() - began
        folder = snapshot.state_dir(settings)
        saved = json.loads((folder / "snapshot.json").read_text())
        restored = json.loads((folder / "restored.json").read_text())
        runs.append(
            {
                "label": label,
                "down_seconds": round(down, 2),
                "up_seconds": round(up, 2),
                "save_seconds": saved["seconds"],
                "restore_seconds": restored["seconds"],
                "objects": saved["objects"],
                "bytes": saved["bytes"],
                "messages": saved["messages"],
                "items": saved["items"],
            }
        )
        step(f"restart ({label}): down {down:.1f} s (save {saved['seconds']} s), up {up:.1f} s")
    return {"runs": runs}


def run_containers_bench(step) -> dict[str, Any]:
    """``make test-containers`` timed: images built, the compose stack up, one IMDb extract reconciled."""
    step("containers: building the images and running the compose stack (make test-containers)")
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "containers.json"
        done = subprocess.run(
            ["bash", str(root / "deploy/containers/test.sh")],
            env={**os.environ, "MOVIEPIPE_CONTAINERS_REPORT": str(report)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"make test-containers failed: {done.stderr[-2000:]}")
        measured = json.loads(report.read_text())
    step(
        f"containers: {measured['total_seconds']} s in all (images {measured['build_seconds']} s, compose up "
        f"{measured['up_seconds']} s, extract {measured['extract_seconds']} s)"
    )
    return measured


def end_to_end(settings: Settings, console: Console, *, runs: int, step) -> dict[str, Any] | None:
    """Warm the stack with one IMDb extract, time ``runs`` more: per stage, between stages, total."""
    client = ExtractorClient(settings)
    # The loader's time grows with what the warehouse already holds: say how much that was.
    _, ((batches_before,),) = query(
        settings, f"SELECT COUNT(*) FROM {settings.warehouse_database}.AUDIT.BATCHES"
    )
    warm_up: dict[str, float] = {}
    results: list[dict[str, float]] = []
    counts: dict[str, Any] = {}
    try:
        for run in range(runs + 1):
            label = "warm-up" if run == 0 else f"run {run}/{runs}"
            extract_id = client.request_extract("imdb")
            record = client.follow(extract_id, lambda _: None, timeout=900)
            if record["status"] != "loaded":
                console.print(f"[red]{label}: extract {extract_id} ended {record['status']}[/red]")
                return None
            measured = timings(record)
            step(f"{label}: {extract_id} loaded in {measured['total']:.2f}s")
            if run:
                results.append(measured)
                counts = record["stages"]["loader"].get("counts", {})
            else:
                warm_up = measured
    except ApiError as exc:
        console.print(f"[red]{exc}[/red]")
        return None
    columns = [*STAGES, "between stages", "total"]
    medians = {column: round(statistics.median(r[column] for r in results), 3) for column in columns}
    # This machine's speed drifts from one session to the next: the same DuckDB work on the same file,
    # timed in this run, says how fast it was.
    reference = statistics.median(duckdb_reference(settings, "imdb", extract_id) for _ in range(3))
    table = Table(title="seconds, POST /extracts → reconciled rows (warm)")
    for column in ("run", *columns):
        table.add_column(column)
    for number, result in enumerate(results, 1):
        table.add_row(str(number), *(f"{result[c]:.2f}" for c in columns))
    table.add_row("median", *(f"{medians[c]:.2f}" for c in columns))
    console.print(table)
    return {
        "measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "runs": [{c: round(r[c], 3) for c in columns} for r in results],
        "median": medians,
        "warm_up_total_seconds": round(warm_up["total"], 3),
        "batches_before": int(batches_before),
        "duckdb_reference_seconds": round(reference, 3),
        "rows": counts,
        "target_seconds": TARGET_SECONDS,
        "met": medians["total"] <= TARGET_SECONDS,
    }


_ROW_COUNTS = (
    "extracted",
    "loaded",
    "rejected",
    "duplicates",
    "merged",
    "versions_opened",
    "changed_in_place",
    "movies_closed",
)


def _in_pipeline_order(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Counts as the pipeline produces them (benchmarks.json keeps its keys sorted), others after."""
    rank = {name: n for n, name in enumerate(_ROW_COUNTS)}
    return sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


E2E_PROFILE = (
    "Where the time goes (profiled 2026-12-06 on this machine, while the DuckDB reference above took "
    "0.18-0.33 s: the services under py-spy, the warehouse's statements timed one by one, DEBUG logs of each "
    "stage). The loader is the largest stage, and its time "
    "is the warehouse stand-in's. In a typical load of 1.0 s: reading the manifest and checking the file in "
    "S3, 0.1 s; the load's transaction, 0.4 s (the COPY 0.25 s, its commit 0.08 s); the star-schema merge, "
    "0.5 s (0.35 s of DuckDB running its twenty statements, a commit of 0.04-0.08 s); the reconciliation, "
    "0.05-0.1 s. Every five or six loads the merge's commit also checkpoints DuckDB's write-ahead log, which "
    "grows about 45 MB a load, for 0.6-1 s: the slow run in most sets of seven. The changes of the second "
    "2026-12-06 session: the stand-in describes each result from its run instead of running DESCRIBE over "
    "it (2 ms a statement), sqlglot is the compiled build (parsing three times faster), the reconciliation "
    "inserts or updates its batch row instead of a MERGE that the stand-in took 0.1-0.14 s to translate, "
    "moto keeps objects up to 16 MB in memory (a 12 MB upload 0.16 -> 0.10 s), and the DuckDB engine ranks "
    "only the rows whose movie key repeats (0.1 s less for the IMDb sample). The transformer's stage "
    "is about 70-75% the DuckDB engine (reading the lines 0.05-0.1 s, the checks and the ranking 0.3-0.45 "
    "s, writing the CSV 0.1-0.15 s), then publishing the archive and registering it in the Data Catalog "
    "(0.05 s), and fetching and checking its input. The extractor reads the SQLite source through ADBC "
    "(0.08 s for the rows); the unzipper streams and checks the bundle."
)
"""What the end-to-end figures are made of, from the last profile (not measured by each bench run)."""


def render(report: dict[str, Any]) -> str:
    """docs/BENCHMARKS.md from the report: every section measured so far, the machine, the versions."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `moviepipe bench` (figures also in `docs/benchmarks.json`); "
        "numbers are measured, never asserted in tests.",
        "",
    ]
    e2e = report.get("end_to_end")
    if e2e:
        columns = [*STAGES, "between stages", "total"]
        medians = e2e["median"]
        lines += [
            "## POST /extracts → reconciled rows, IMDb movies, warm local stack",
            "",
            f"Measured {e2e['measured_at']}, {len(e2e['runs'])} runs after one warm-up extract"
            + (
                f", on a warehouse holding {e2e['batches_before']:,} earlier batches"
                if "batches_before" in e2e
                else ""
            )
            + ". "
            f"Target: at most {e2e['target_seconds']:g} s; median total {medians['total']:.2f} s "
            f"({'met' if e2e['met'] else 'NOT met'}).",
            "",
            "Rows per extract: " + ", ".join(f"{k} {v:,}" for k, v in _in_pipeline_order(e2e["rows"])),
            "",
            *(
                [
                    "Machine speed in the same run: DuckDB reads the last extract's movies.csv and writes it "
                    f"out again in {e2e['duckdb_reference_seconds']:.3f} s (median of 3); compare it across "
                    "runs before comparing the times above.",
                    "",
                ]
                if "duckdb_reference_seconds" in e2e
                else []
            ),
            f"The warm-up extract took {e2e['warm_up_total_seconds']:.2f} s. It pays for first-use work: the "
            "source database's seeding on a new home, connections opened and statements translated the first "
            "time.",
            "",
            "Per stage: the stage's own working time, from its progress record (started → finished). "
            "'between stages' is the time spent in S3 event delivery, SQS polling and handing over.",
            "",
            "| run | " + " | ".join(columns) + " |",
            "|" + "---|" * (len(columns) + 1),
        ]
        for number, result in enumerate(e2e["runs"], 1):
            lines.append(f"| {number} | " + " | ".join(f"{result[c]:.2f}" for c in columns) + " |")
        lines.append("| **median** | " + " | ".join(f"**{medians[c]:.2f}**" for c in columns) + " |")
        lines += ["", E2E_PROFILE, ""]
    dashboard = report.get("dashboard")
    if dashboard:
        target_ms = dashboard["target_seconds"] * 1000
        lines += [
            "## Dashboard: GET /analytics and /pipeline, whole response",
            "",
            f"Measured {dashboard['measured_at']} on what the warehouse held then "
            f"({dashboard['movie_versions']:,} movie versions, {dashboard['batches']:,} batches), "
            f"{dashboard['pages'][0]['runs']} requests each after one warm-up. 'fresh' asks "
            "`Cache-Control: no-cache` (a hard reload): every section is read again — the warehouse "
            "through the Snowflake connector, the progress and alerts tables, the quarantine bucket, the "
            "DLQs; 'cached' renders what was read less than `MOVIEPIPE_DASHBOARD_CACHE_SECONDS` ago.",
            "",
            f"Target: ≤ {target_ms:.0f} ms per page, fresh — {'met' if dashboard['met'] else 'NOT met'}.",
            "",
            "| page | fresh median (ms) | fresh max (ms) | cached median (ms) | cached max (ms) "
            "| size (kB) |",
            "|---|---|---|---|---|---|",
        ]
        for page in dashboard["pages"]:
            lines.append(
                f"| /{page['page']} | **{page['fresh_median_seconds'] * 1000:.0f}** | "
                f"{page['fresh_max_seconds'] * 1000:.0f} | {page['cached_median_seconds'] * 1000:.0f} | "
                f"{page['cached_max_seconds'] * 1000:.0f} | {page['bytes'] / 1000:.0f} |"
            )
        lines.append("")
    transform = report.get("transform")
    if transform:
        met = transform["met"]
        lines += [
            "## Transform: one movies.csv cleansed by each engine, warm",
            "",
            f"Measured {transform['measured_at']}, in the bench process: the same file, as the extractor "
            "writes it, cleansed by the one definition in `shared/transform.py` on DuckDB (in process) and "
            "on Spark (the warm local session, `local[2]`, started once in "
            f"{transform['spark_session_start_seconds']:.1f} s), after one warm-up run each; both write "
            "the archive's CSV files, compared byte for byte ('same output').",
            "",
            f"Targets: DuckDB at most {transform['targets']['duckdb_imdb_seconds']} s for the IMDb sample — "
            f"{'met' if met['duckdb_imdb'] else 'NOT met'}; Spark within "
            f"{transform['targets']['spark_over_duckdb_at_1m']:.0f} times DuckDB's time at 1,000,000 rows — "
            f"{'met' if met['spark_within_4x_at_1m'] else 'NOT met'}.",
            "",
            "| rows | CSV (MB) | DuckDB (s) | DuckDB rows/s | Spark (s) | Spark rows/s | Spark / DuckDB "
            "| same output | clean | rejected | duplicates |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for size in transform["sizes"]:
            counts = size["duckdb"]["counts"]
            lines.append(
                f"| {size['rows']:,} | {size['bytes'] / 1e6:.0f} | "
                f"**{size['duckdb']['median_seconds']:.2f}** | {size['duckdb']['rows_per_second']:,} | "
                f"**{size['spark']['median_seconds']:.2f}** | {size['spark']['rows_per_second']:,} | "
                f"{size['spark_over_duckdb']:.1f} | {'yes' if size['identical_output'] else 'NO'} | "
                f"{counts['clean']:,} | {counts['rejected']:,} | {counts['duplicates']:,} |"
            )
        lines.append("")
    extractor = report.get("extractor")
    if extractor:
        targets = extractor["targets"]
        lines += [
            "## Extractor: PostgreSQL table → zipped bundle in the landing bucket",
            "",
            f"Measured {extractor['measured_at']}: source `{extractor['source']}` "
            f"({extractor['rows']:,} rows, `moviepipe seed scaled --into postgres`), a full extract per "
            "run in a child process as the queue handler runs it (`run_extract`): read by ADBC's driver "
            "(binary `COPY … TO STDOUT` into Arrow), mapped and typed, written to CSV + Parquet, zipped, "
            "uploaded to moto. Peak RSS is the child's own (`VmHWM`), imports and clients included.",
            "",
            f"Targets: ≥ {targets['rows_per_second']:,} rows/s, peak RSS ≤ {targets['peak_rss_mb']} MB — "
            f"{'met' if extractor['met'] else 'NOT met'}: median {extractor['median_seconds']:.2f} s = "
            f"**{extractor['rows_per_second']:,} rows/s**, peak RSS **{extractor['peak_rss_mb']:.0f} MB**, "
            f"bundle {extractor['bundle_bytes'] / 1e6:.0f} MB.",
            "",
            "Reference, same run: PostgreSQL's own `COPY … TO STDOUT` of the table, read and discarded: "
            f"{extractor['reference_copy_seconds']:.2f} s "
            f"({extractor['reference_copy_rows_per_second']:,} rows/s); the extract takes "
            f"{extractor['median_seconds'] / extractor['reference_copy_seconds']:.1f} times as long.",
            "",
            "| run | seconds | rows/s | peak RSS (MB) |",
            "|---|---|---|---|",
        ]
        for number, run in enumerate(extractor["runs"], 1):
            rate = run["rows"] / run["seconds"]
            lines.append(f"| {number} | {run['seconds']:.2f} | {rate:,.0f} | {run['peak_rss_mb']:.0f} |")
        lines.append("")
    unzip = report.get("unzip")
    if unzip:
        mib = 1 << 20
        lines += [
            "## Unzipper: a bundle far larger than memory, streamed from landing to processed",
            "",
            f"Measured {unzip['measured_at']}: a generated bundle (the IMDb CSV rows repeated: "
            f"{unzip['rows']:,} rows, {unzip['inflated_bytes'] / 1e6:,.0f} MB of CSV in a "
            f"{unzip['bundle_bytes'] / 1e6:,.0f} MB zip) landed in moto and unzipped by a child process "
            "(`python -m moviepipe.bench_unzip`, `tempfile` disabled): ranged GETs, inflate (ISA-L), "
            "sha256, CSV header and record count, parts uploaded as they fill, committed after the checks. "
            "Peak RSS is the child's own (`VmHWM`), imports and clients included.",
            "",
            f"Targets: ≥ {unzip['target_mb_per_second']} MB/s of inflated data, peak RSS < "
            f"{unzip['rss_limit_bytes'] // mib} MiB — {'met' if unzip['met'] else 'NOT met'}: "
            f"**{unzip['streaming_mb_per_second']} MB/s** streaming through S3, peak RSS "
            f"**{unzip['peak_rss_bytes'] / mib:.0f} MiB**.",
            "",
            "| | seconds | MB/s inflated |",
            "|---|---|---|",
            f"| unzip through moto, until the upload's parts are in | {unzip['streaming_seconds']:.2f} | "
            f"{unzip['streaming_mb_per_second']} |",
            f"| moto's CompleteMultipartUpload (copies the parts into one object) | "
            f"{unzip['complete_seconds']:.2f} | |",
            f"| whole unzip through moto | {unzip['seconds']:.2f} | {unzip['mb_per_second']} |",
            f"| the same checks from local disk, files sent nowhere | {unzip['local_seconds']:.2f} | "
            f"{unzip['local_mb_per_second']} |",
            f"| reference: Python's zipfile inflating it from disk, no checks | "
            f"{unzip['reference_seconds']:.2f} | {unzip['reference_mb_per_second']} |",
            "",
            "Moto runs on the same two cores and takes one of them receiving the parts; its "
            "CompleteMultipartUpload copies every part (S3 completes an upload without copying), so the "
            "whole-unzip figure is the stand-in's, and the streaming figure is the unzipper's.",
            "",
        ]
    loader = report.get("loader")
    if loader:
        lines += [
            "## Loader: archived bundle → RAW (COPY) → star schema (MERGE), warm",
            "",
            f"Measured {loader['measured_at']}, in the bench process against the running stack's moto and "
            "warehouse stand-in (fakesnow over DuckDB), in a database of its own. Per size, the loader's "
            "steps as its queue handler runs them: verify the bundle's files in S3 (size and sha256), "
            "COPY into RAW in one transaction, MERGE into the star schema in one transaction, reconcile. "
            "'first load': every movie new; 're-load': a second full extract of the same movies with 1% "
            "of them changed (a new Type 2 version each) — the steady state, where every movie is compared.",
            "",
            f"Target: the loader stage ≤ {loader['target_seconds']} s for the IMDb sample — "
            f"{'met' if loader['met'] else 'NOT met'}.",
            "",
            "Reference, same run: DuckDB in the bench process reading the same CSV file into a table.",
            "",
            "| rows loaded | load | verify | COPY | MERGE | reconcile | total (s) | new versions | "
            "DuckDB read (s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for size in loader["sizes"]:
            for label, run in (
                ("first", size["first_load"]),
                ("re-load, 1% changed", size["changed_reload"]),
            ):
                lines.append(
                    f"| {size['rows_loaded']:,} | {label} | {run['verify_seconds']:.2f} | "
                    f"{run['copy_seconds']:.2f} | {run['merge_seconds']:.2f} | "
                    f"{run['reconcile_seconds']:.2f} | "
                    f"**{run['total_seconds']:.2f}** | {run['versions_opened']:,} | "
                    f"{size['reference_duckdb_read_seconds']:.2f} |"
                )
        lines.append("")
    scale = report.get("scale")
    if scale:
        columns = [*STAGES, "between stages", "total"]
        lines += [
            "## End to end at scale: the scaled PostgreSQL source through the stack",
            "",
            f"Measured {scale['measured_at']}: for each size, one extract of the scaled source "
            "(`moviepipe seed scaled --into postgres`) as a warm-up, then one timed, `POST /extracts` → "
            "reconciled; the transformer sends these batches to Spark (at or above "
            "`MOVIEPIPE_TRANSFORM_DUCKDB_MAX_ROWS`). Reference, same run: DuckDB reading the extract's "
            "`movies.csv` and writing it back as CSV.",
            "",
            "| rows | " + " | ".join(columns) + " | rows/s | target (s) | DuckDB reference (s) |",
            "|---" * (len(columns) + 4) + "|",
        ]
        for size in scale["sizes"]:
            met = "met" if size["met"] else "NOT met"
            lines.append(
                f"| {size['rows']:,} | "
                + " | ".join(f"{size['stages'][column]:.1f}" for column in columns)
                + f" | {size['rows_per_second']:,} | {size['target_seconds']:g} ({met}) | "
                f"{size['duckdb_reference_seconds']:.1f} |"
            )
        pickup = scale["pickup_ms"]
        waited = scale.get("queue_wait_ms") or {}
        rss = {**scale["peak_rss_bytes"], **scale.get("spark_jvm_rss_bytes", {})}
        lines += [""]
        if waited.get("samples"):
            met = "met" if waited["p50"] <= waited["target_p50"] else "NOT met"
            lines += [
                f"S3 event → consumer pickup: how long each S3 event waited in its queue until a consumer "
                f"received it (`now - SentTimestamp`, logged per message, {waited['samples']} messages "
                f"during these runs): p50 **{waited['p50']} ms**, p99 {waited['p99']} ms (target p50 ≤ "
                f"{waited['target_p50']:g} ms: {met}).",
                "",
            ]
        lines += [
            f"Handover, a stage finishing to the next one starting (pickup plus the next stage's own "
            f"checks before it records its start; {pickup['samples']} handovers): p50 {pickup['p50']} ms, "
            f"p99 {pickup['p99']} ms.",
            "",
            f"Peak memory (`VmHWM`) of each process after these runs; target: no service above "
            f"{scale['rss_limit_bytes'] / 1e9:g} GB but the Spark driver (the transformer's process and "
            f"its JVM) — {'met' if scale['rss_met'] else 'NOT met'}. moto and the warehouse are the local "
            "stand-ins for S3 and Snowflake (moto keeps every object in memory), not services.",
            "",
            "| process | peak RSS (MB) |",
            "|---|---|",
            *(f"| {name} | {size / 1e6:,.0f} |" for name, size in sorted(rss.items())),
            "",
        ]
    load = report.get("load")
    if load:
        posts, reads = load["posts"], load["reads"]
        lines += [
            "## The extractor API under load (loopback)",
            "",
            f"Measured {load['measured_at']} on the running stack, while the accepted extracts ran: "
            f"{posts['requests']} `POST /extracts` at once over {LOAD_SOURCES} sources, then "
            f"`GET /extracts/{{id}}` started on a fixed schedule of {reads['target_rate']:g} a second for "
            f"{reads['seconds']:g} s (arrivals do not wait for answers).",
            "",
            "| requests | answers | achieved rate (/s) | p50 (ms) | p99 (ms) |",
            "|---|---|---|---|---|",
            f"| {posts['requests']} POST at once | "
            + ", ".join(f"{status}: {count}" for status, count in sorted(posts["statuses"].items()))
            + f" | | {posts['p50_ms']} | {posts['p99_ms']} |",
            f"| {reads['requests']:,} GET | "
            + ", ".join(f"{status}: {count:,}" for status, count in sorted(reads["statuses"].items()))
            + f" | {reads['achieved_rate']} | {reads['p50_ms']} | {reads['p99_ms']} |",
            "",
            "Accepted extracts, as they ended: "
            + ", ".join(f"{status} {count}" for status, count in load["accepted_outcomes"].items())
            + ". A source with an extract running refuses another with 409, as the API promises.",
            "",
        ]
    restart = report.get("restart")
    if restart:
        first = restart["runs"][0]
        lines += [
            "## Keeping the local stack's state: `moviepipe down` then `moviepipe up`",
            "",
            f"Measured {restart['measured_at']} on what the stack held: {first['objects']:,} objects "
            f"({first['bytes'] / 1e6:,.0f} MB), {first['messages']:,} queued messages, {first['items']:,} "
            "table items. `down` stops the services, saves moto's state under `MOVIEPIPE_HOME/state` "
            "(objects changed since the last save are downloaded, unchanged ones linked) and stops moto; "
            "`up` starts moto, restores everything before the notifications are wired, then starts the "
            "services.",
            "",
            "| run | down (s) | of which saving (s) | up (s) | of which restoring (s) |",
            "|---|---|---|---|---|",
            *(
                f"| {run['label']} | {run['down_seconds']:.1f} | {run['save_seconds']:.1f} | "
                f"{run['up_seconds']:.1f} | {run['restore_seconds']:.1f} |"
                for run in restart["runs"]
            ),
            "",
        ]
    containers = report.get("containers")
    if containers:
        gb = 1e9
        lines += [
            "## Containers: `make test-containers`",
            "",
            f"Measured {containers['measured_at']}: podman (no Docker engine here) builds `moviepipe:app` "
            "and `moviepipe:spark` from `deploy/Dockerfile` on a Debian base made with `debootstrap` (reused "
            "once built), `docker-compose` runs `docker-compose.yml` on podman's socket, one IMDb extract "
            "goes through the containers and reconciles, and everything is torn down.",
            "",
            "| step | seconds |",
            "|---|---|",
            f"| build both images (layers cached from earlier builds where unchanged) | "
            f"{containers['build_seconds']} |",
            f"| compose up until the extractor answers | {containers['up_seconds']} |",
            f"| one IMDb extract, landing to reconciled | {containers['extract_seconds']} |",
            f"| whole run | **{containers['total_seconds']}** |",
            "",
            f"Image sizes: `moviepipe:app` {containers['app_image_bytes'] / gb:.2f} GB, `moviepipe:spark` "
            f"(with Java and pyspark) {containers['spark_image_bytes'] / gb:.2f} GB. Most of both is the "
            "Python dependencies (duckdb, pyarrow, pandas, moto; pyspark only in the Spark image).",
            "",
        ]
    lines += ["## Machine", ""]
    lines += [f"- {name}: {value}" for name, value in sorted(report.get("machine", {}).items())]
    lines += ["", "## Versions", ""]
    lines += [f"- {name}: {value}" for name, value in sorted(report.get("versions", {}).items())]
    lines.append("")
    return "\n".join(lines)

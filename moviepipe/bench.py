"""``moviepipe bench``: time extracts end to end on a warm stack and write docs/BENCHMARKS.md.

Timings come from the extract's own progress record (each stage writes when it starts and finishes),
so what is measured is what a user waits for: ``POST /extracts`` to reconciled rows in the warehouse.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from moviepipe import stack
from moviepipe.client import ApiError, ExtractorClient
from shared.settings import STAGES, Settings

TARGET_SECONDS = 20.0


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


def run_bench(settings: Settings, console: Console, *, runs: int, output: str, step) -> int:
    """Warm the stack with one extract, time ``runs`` more, write the report; returns the exit code."""
    started_stack = None
    if not stack.is_up(settings):
        began = time.monotonic()
        stack.start_detached(settings, step)
        started_stack = time.monotonic() - began
    client = ExtractorClient(settings)
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
                return 1
            measured = timings(record)
            step(f"{label}: {extract_id} loaded in {measured['total']:.2f}s")
            if run:
                results.append(measured)
                counts = record["stages"]["loader"].get("counts", {})
            else:
                warm_up = measured
    except ApiError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1

    columns = [*STAGES, "between stages", "total"]
    medians = {column: statistics.median(r[column] for r in results) for column in columns}
    table = Table(title="seconds, POST /extracts → reconciled rows (warm)")
    for column in ("run", *columns):
        table.add_column(column)
    for number, result in enumerate(results, 1):
        table.add_row(str(number), *(f"{result[c]:.2f}" for c in columns))
    table.add_row("median", *(f"{medians[c]:.2f}" for c in columns))
    console.print(table)

    lines = [
        "# Benchmarks",
        "",
        "Written by `moviepipe bench`; numbers are measured, never asserted in tests.",
        "",
        "## POST /extracts → reconciled rows, IMDb movies, warm local stack",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {runs} runs after one warm-up extract. "
        f"Target: under {TARGET_SECONDS:.0f} s; median total {medians['total']:.2f} s "
        f"({'met' if medians['total'] < TARGET_SECONDS else 'NOT met'}).",
        "",
        "Rows per extract: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
        "",
        f"The warm-up extract took {warm_up['total']:.2f} s"
        + (
            f", on a stack this run started in {started_stack:.1f} s."
            if started_stack
            else " (stack already up)."
        )
        + " It pays for first-use work: the source database's seeding on a new home, Spark's first job.",
        "",
        "Per stage: the stage's own working time, from its progress record (started → finished). "
        "'between stages' is the time spent in S3 event delivery, SQS polling and handing over.",
        "",
        "| run | " + " | ".join(columns) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for number, result in enumerate(results, 1):
        lines.append(f"| {number} | " + " | ".join(f"{result[c]:.2f}" for c in columns) + " |")
    lines.append("| **median** | " + " | ".join(f"**{medians[c]:.2f}**" for c in columns) + " |")
    lines += ["", "Machine:", ""]
    lines += [f"- {name}: {value}" for name, value in machine().items()]
    lines.append("")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text("\n".join(lines))
    console.print(f"wrote {output}")
    return 0

"""The dashboard's pages timed as a browser asks for them: the whole response, read fresh and from cache.

A fresh request (``Cache-Control: no-cache``, a hard reload) reads every section again: the warehouse
through the Snowflake connector, the progress and alerts tables, the quarantine bucket, the DLQs. A
cached one renders what was read less than ``dashboard_cache_seconds`` ago. Run on whatever the stack
holds; after the end-to-end section that is the demo data (the IMDb sample, loaded).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from shared.settings import Settings
from shared.warehouse import query

PAGES = ("analytics", "pipeline")
TARGET_SECONDS = 0.5
"""Per page, fresh, on the demo data."""


def _time(http: httpx.Client, path: str, headers: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    response = http.get(path, headers=headers)
    seconds = time.perf_counter() - started
    response.raise_for_status()
    if 'data-failed="' in response.text:
        raise RuntimeError(f"{path}: a section of the page failed to read; fix the stack before timing it")
    return seconds, len(response.content)


def run_dashboard_bench(settings: Settings, *, runs: int, step) -> dict[str, Any]:
    """Per page: one warm-up, then ``runs`` fresh and ``runs`` cached requests; medians and maxima."""
    runs = max(runs, 5)
    _, ((versions, extracts),) = query(
        settings,
        f"SELECT (SELECT COUNT(*) FROM {settings.warehouse_database}.ANALYTICS.DIM_MOVIE), "
        f"(SELECT COUNT(*) FROM {settings.warehouse_database}.AUDIT.BATCHES)",
    )
    with httpx.Client(base_url=settings.service_url("dashboard"), timeout=60) as http:
        pages = []
        for page in PAGES:
            path = f"/{page}"
            _time(http, path, {"Cache-Control": "no-cache"})
            fresh = [_time(http, path, {"Cache-Control": "no-cache"}) for _ in range(runs)]
            cached = [_time(http, path, {}) for _ in range(runs)]
            measured = {
                "page": page,
                "runs": runs,
                "bytes": fresh[-1][1],
                "fresh_median_seconds": round(statistics.median(s for s, _ in fresh), 4),
                "fresh_max_seconds": round(max(s for s, _ in fresh), 4),
                "cached_median_seconds": round(statistics.median(s for s, _ in cached), 4),
                "cached_max_seconds": round(max(s for s, _ in cached), 4),
            }
            step(
                f"dashboard {path}: fresh median {measured['fresh_median_seconds'] * 1000:.0f} ms, "
                f"cached {measured['cached_median_seconds'] * 1000:.0f} ms"
            )
            pages.append(measured)
    return {
        "movie_versions": int(versions),
        "batches": int(extracts),
        "pages": pages,
        "target_seconds": TARGET_SECONDS,
        "met": all(page["fresh_median_seconds"] <= TARGET_SECONDS for page in pages),
    }

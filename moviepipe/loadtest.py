"""The extractor API under load, on loopback: concurrent POST /extracts across sources, then a steady rate
of GET /extracts/{id}; every answer's status and latency.

The API promises: a request for a source with an extract running is refused with 409, any other is
accepted with 202, and an accepted extract completes. No request may get a 5xx. Used by the e2e test (a
short run) and by ``moviepipe bench --only load`` (the full minute).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from shared.settings import Settings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def post_storm(settings: Settings, sources: list[str], requests: int = 50) -> dict[str, Any]:
    """``requests`` POST /extracts at once, spread over ``sources``: statuses, accepted ids, latencies."""
    url = f"{settings.service_url('extractor')}/extracts"
    start = threading.Barrier(requests)

    def post(number: int) -> tuple[int, str | None, float]:
        with httpx.Client(timeout=60) as http:
            start.wait()
            began = time.perf_counter()
            response = http.post(url, json={"source": sources[number % len(sources)]})
            seconds = time.perf_counter() - began
        accepted = response.json().get("extract_id") if response.status_code == 202 else None
        return response.status_code, accepted, seconds

    with ThreadPoolExecutor(max_workers=requests) as pool:
        answers = list(pool.map(post, range(requests)))
    latencies = [seconds for _, _, seconds in answers]
    return {
        "requests": requests,
        "statuses": dict(Counter(status for status, _, _ in answers)),
        "accepted": [extract for _, extract, _ in answers if extract],
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
    }


def get_at_rate(
    settings: Settings, extract_ids: list[str], rate: float = 200, seconds: float = 60, workers: int = 32
) -> dict[str, Any]:
    """GET /extracts/{id} at ``rate`` per second for ``seconds``, round the ids: statuses and latencies.

    Requests are started on a fixed schedule (an open model): a slow answer does not slow the arrivals,
    so the latencies include any queueing in the API.
    """
    base = settings.service_url("extractor")
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    lock = threading.Lock()
    local = threading.local()

    def get(number: int, due: float) -> None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(timeout=30)
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        extract_id = extract_ids[number % len(extract_ids)]
        try:
            status: int | str = http.get(f"{base}/extracts/{extract_id}").status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        with lock:
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1

    total = int(rate * seconds)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for number in range(total):
            pool.submit(get, number, started + number / rate)
    elapsed = time.perf_counter() - started
    return {
        "requests": total,
        "target_rate": rate,
        "achieved_rate": round(total / elapsed, 1),
        "seconds": round(elapsed, 1),
        "statuses": {str(status): count for status, count in statuses.items()},
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else 0.0,
    }

"""The dashboard's Prometheus metrics (one set per process): pages served, sections read."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class DashboardMetrics:
    """How long pages and their sections take, and which sections failed."""

    def __init__(self) -> None:
        self.page_duration = Histogram(
            "moviepipe_dashboard_page_duration_seconds",
            "Time to read and render one page, by page",
            ["page"],
            buckets=BUCKETS,
        )
        self.section_duration = Histogram(
            "moviepipe_dashboard_section_duration_seconds",
            "Time to read one part of a page from the warehouse or AWS, by what it reads",
            ["source"],
            buckets=BUCKETS,
        )
        self.section_failures = Counter(
            "moviepipe_dashboard_section_failures_total",
            "Sections that could not be read, by section",
            ["section"],
        )
        self.reads = Counter(
            "moviepipe_dashboard_reads_total",
            "Page data requests, by whether the cached data was fresh enough (hit) or read again (miss)",
            ["outcome"],
        )


METRICS = DashboardMetrics()

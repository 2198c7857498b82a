"""Prometheus metrics every stage exposes, named ``moviepipe_<stage>_<what>_<unit>``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram


class StageMetrics:
    """The counters and timings common to every stage."""

    def __init__(self, stage: str):
        self.stage = stage
        self.messages = Counter(
            f"moviepipe_{stage}_messages_total", "Queue messages handled, by outcome", ["outcome"]
        )
        self.extracts = Counter(
            f"moviepipe_{stage}_extracts_total", "Extracts this stage finished, by outcome", ["outcome"]
        )
        self.rows = Counter(f"moviepipe_{stage}_rows_total", "Rows this stage handled, by kind", ["kind"])
        self.duration = Histogram(
            f"moviepipe_{stage}_duration_seconds",
            "Time this stage spent on one extract",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
        )

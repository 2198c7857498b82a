"""The extractor's Prometheus metrics (one set per process)."""

from __future__ import annotations

from prometheus_client import Counter

from shared.metrics import StageMetrics


class ExtractorMetrics(StageMetrics):
    """Shared stage metrics, plus the bytes of bundles landed."""

    def __init__(self) -> None:
        super().__init__("extractor")
        self.bundle_bytes = Counter("moviepipe_extractor_bundle_bytes_total", "Bytes of bundles landed")


METRICS = ExtractorMetrics()

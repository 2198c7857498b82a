"""The unzipper's Prometheus metrics (one set per process)."""

from __future__ import annotations

from prometheus_client import Counter

from shared.metrics import StageMetrics


class UnzipperMetrics(StageMetrics):
    """Shared stage metrics, plus bundles by outcome (and quarantine reason) and their bytes."""

    def __init__(self) -> None:
        super().__init__("unzipper")
        self.bundles = Counter(
            "moviepipe_unzipper_bundles_total",
            "Landed bundles handled, by outcome and reason",
            ["outcome", "reason"],
        )
        self.bundle_bytes = Counter(
            "moviepipe_unzipper_bundle_bytes_total", "Bytes of landed bundles unzipped"
        )


METRICS = UnzipperMetrics()

"""The loader's Prometheus metrics (one set per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from shared.metrics import StageMetrics


class LoaderMetrics(StageMetrics):
    """Shared stage metrics, plus archive files by what the load did with them, and reconciliation."""

    def __init__(self) -> None:
        super().__init__("loader")
        self.files = Counter(
            "moviepipe_loader_files_total",
            "Archive files seen by the loader: loaded, or skipped as loaded before",
            ["outcome"],
        )
        self.reconciliation_failures = Counter(
            "moviepipe_loader_reconciliation_failures_total",
            "Extracts loaded whose rows did not reconcile (extracted != loaded + rejected + duplicates)",
        )
        self.last_success = Gauge(
            "moviepipe_loader_last_success_timestamp_seconds",
            "When this process last loaded and reconciled an extract (Unix time; 0 before the first)",
        )


METRICS = LoaderMetrics()

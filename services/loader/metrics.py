"""The loader's Prometheus metrics (one set per process)."""

from __future__ import annotations

from prometheus_client import Counter

from shared.metrics import StageMetrics


class LoaderMetrics(StageMetrics):
    """Shared stage metrics, plus archive files by what the load did with them."""

    def __init__(self) -> None:
        super().__init__("loader")
        self.files = Counter(
            "moviepipe_loader_files_total",
            "Archive files seen by the loader: loaded, or skipped as loaded before",
            ["outcome"],
        )


METRICS = LoaderMetrics()

"""The transformer's Prometheus metrics (one set per process)."""

from __future__ import annotations

from shared.metrics import StageMetrics

METRICS = StageMetrics("transformer")

"""Prometheus metrics every stage exposes, named ``moviepipe_<stage>_<what>_<unit>``.

The queue consumer (``shared.consumer``) keeps the message, batch, lag and queue-depth series; each
stage's own code counts its extracts, rows and bytes. The process collector that prometheus-client
registers by default adds ``process_*`` (CPU, memory, open files, start time) to every ``/metrics``.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram, Info

MESSAGE_OUTCOMES = ("received", "succeeded", "failed", "retried", "dead_lettered")
"""``received``: every message a receive returned; ``retried``: those received before
(``ApproximateReceiveCount`` > 1); ``succeeded`` / ``failed``: what the handler made of them;
``dead_lettered``: failed on their last allowed receive, so the redrive moves them to the DLQ."""

_SECONDS_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


def _package_version() -> str:
    try:
        return version("moviepipe")
    except PackageNotFoundError:
        return "unknown"


class StageMetrics:
    """The counters, gauges and timings common to every stage."""

    def __init__(self, stage: str):
        self.stage = stage
        self.messages = Counter(
            f"moviepipe_{stage}_messages_total", "Queue messages handled, by outcome", ["outcome"]
        )
        for outcome in MESSAGE_OUTCOMES:
            # Present at 0 from the start, so rates and ratios see the first message.
            self.messages.labels(outcome)
        self.extracts = Counter(
            f"moviepipe_{stage}_extracts_total", "Extracts this stage finished, by outcome", ["outcome"]
        )
        self.rows = Counter(f"moviepipe_{stage}_rows_total", "Rows this stage handled, by kind", ["kind"])
        self.bytes = Counter(
            f"moviepipe_{stage}_bytes_total",
            "Bytes of files this stage read (in) and wrote (out)",
            ["direction"],
        )
        self.duration = Histogram(
            f"moviepipe_{stage}_duration_seconds",
            "Time this stage spent on one extract",
            buckets=_SECONDS_BUCKETS,
        )
        self.batch_duration = Histogram(
            f"moviepipe_{stage}_batch_duration_seconds",
            "Time the handler spent on one batch of queue messages",
            buckets=_SECONDS_BUCKETS,
        )
        self.queue_lag = Gauge(
            f"moviepipe_{stage}_queue_lag_seconds",
            "Age of the oldest message in the last batch received (0 once a receive finds none)",
        )
        self.queue_wait = Histogram(
            f"moviepipe_{stage}_queue_wait_seconds",
            "Time from a message being sent to its first receive",
            buckets=_WAIT_BUCKETS,
        )
        self.queue_messages = Gauge(
            f"moviepipe_{stage}_queue_messages",
            "Messages waiting on the stage's queue (ApproximateNumberOfMessages), refreshed periodically",
        )
        self.dlq_messages = Gauge(
            f"moviepipe_{stage}_dlq_messages",
            "Messages in the stage's dead-letter queue (ApproximateNumberOfMessages), refreshed periodically",
        )
        self.consumer_up = Gauge(
            f"moviepipe_{stage}_consumer_up",
            "1 while the stage's queue consumer is polling its queue, 0 while it cannot",
        )
        self.build = Info(f"moviepipe_{stage}_build", "The running build: package and Python versions")
        self.build.info({"version": _package_version(), "python": platform.python_version()})

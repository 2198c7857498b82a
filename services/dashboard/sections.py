"""A page is read as sections, each on its own: one that fails says what failed, the others still show.

Readers run concurrently (the warehouse on one connection, each AWS read beside it), each bounded by a
timeout, and what a page read is kept for a few seconds so that a page reloaded, or opened by several
people at once, reads the warehouse once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.dashboard.metrics import METRICS, DashboardMetrics
from shared.warehouse import WarehouseError

# Sized for a few pages read at once, with room for reads still waiting on an AWS that does not answer.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dashboard-read")


@dataclass(frozen=True)
class Section:
    """What one part of a page read: its value, or why it could not be read."""

    name: str
    value: Any = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class Reader:
    """Reads the sections ``names`` (one call may fill several: the warehouse's queries share a connection).

    ``source`` names what it reads from in one word (the metrics' label), ``what`` for a person (errors).
    """

    source: str
    what: str
    names: tuple[str, ...]
    read: Callable[[], dict[str, Section]]


@dataclass
class PageData:
    """Every section of a page, and when they were read."""

    sections: dict[str, Section]
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __getitem__(self, name: str) -> Section:
        return self.sections[name]

    @property
    def complete(self) -> bool:
        return not any(section.failed for section in self.sections.values())


def describe(exc: BaseException) -> str:
    """What went wrong, for the person looking at the page (never a traceback, never a secret)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"AWS answered {error.get('Code', 'an error')}: {error.get('Message', '')}".rstrip(": ")
    if isinstance(exc, WarehouseError | BotoCoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def failed(names: tuple[str, ...], message: str) -> dict[str, Section]:
    return {name: Section(name, error=message) for name in names}


def single(source: str, what: str, read: Callable[[], Any]) -> Reader:
    """A reader of one section, named as its source, whose value is what ``read`` returns."""

    def run() -> dict[str, Section]:
        return {source: Section(source, value=read())}

    return Reader(source, what, (source,), run)


def read_all(
    readers: list[Reader], *, timeout: float, metrics: DashboardMetrics = METRICS
) -> dict[str, Section]:
    """Run every reader at once; a reader that raises or outlasts ``timeout`` fails its sections."""

    def timed(reader: Reader) -> dict[str, Section]:
        started = time.perf_counter()
        try:
            return reader.read()
        except Exception as exc:
            return failed(reader.names, f"{reader.what}: {describe(exc)}")
        finally:
            metrics.section_duration.labels(reader.source).observe(time.perf_counter() - started)

    futures = [(reader, _POOL.submit(timed, reader)) for reader in readers]
    deadline = time.monotonic() + timeout
    sections: dict[str, Section] = {}
    for reader, future in futures:
        try:
            sections.update(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            sections.update(failed(reader.names, f"{reader.what} did not answer within {timeout:g} s"))
    for section in sections.values():
        if section.failed:
            metrics.section_failures.labels(section.name).inc()
    return sections


class PageCache:
    """Each page's data, kept for ``seconds`` after it was read; one reader at a time per page."""

    def __init__(self, seconds: float, metrics: DashboardMetrics = METRICS):
        self.seconds = seconds
        self.metrics = metrics
        self._pages: dict[str, tuple[float, PageData]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, page: str, read: Callable[[], PageData], *, fresh: bool = False) -> PageData:
        """The page's data: what was read less than ``seconds`` ago, else (or when ``fresh``) read now.

        Data with a failed section is not kept: the next request tries again.
        """
        with self._guard:
            lock = self._locks.setdefault(page, threading.Lock())
        with lock:
            kept = self._pages.get(page)
            if kept and not fresh and time.monotonic() - kept[0] < self.seconds:
                self.metrics.reads.labels("hit").inc()
                return kept[1]
            self.metrics.reads.labels("miss").inc()
            data = read()
            if data.complete and self.seconds > 0:
                self._pages[page] = (time.monotonic(), data)
            else:
                self._pages.pop(page, None)
            return data

"""The loader's queue handler: an archive manifest landed, so load its bundle (Snowpipe's job).

Follows Lambda's SQS contract through ``shared.batch``: a bundle that can never load (unreadable manifest,
a file missing or not as the manifest says, rows the warehouse refuses) is quarantined, alerted once and
not retried; anything else (the warehouse or S3 unreachable, a concurrent load of the same files) raises,
so the message is retried and, after repeated failure, dead-lettered.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import threading
import time
from typing import Any

from services.loader.bootstrap import bootstrap
from services.loader.bundle import ArchiveBundle, locate, read_bundle
from services.loader.exceptions import BadBundle, LoadConflict
from services.loader.load import LOAD_SKIPPED, LoadResult, load_bundle
from services.loader.merge import merge_star
from services.loader.metrics import METRICS, LoaderMetrics
from services.loader.quarantine import already_quarantined, quarantine_bundle
from services.loader.reconcile import RECONCILED, Reconciliation, reconcile
from services.loader.settings import LoaderSettings
from shared.alerts import Alert, raise_alert
from shared.batch import Handler, s3_event_handler
from shared.events import ObjectCreated
from shared.logs import log_event
from shared.manifest import MANIFEST_NAME
from shared.progress import FAILED, RUNNING, SUCCEEDED, ExtractProgress
from shared.quarantine import replay_command
from shared.settings import Settings
from shared.warehouse import ConnectionPool, WarehouseUnavailable

logger = logging.getLogger(__name__)

STAGE = "loader"
CONFLICT_RETRY_SECONDS = 180
CONFLICT_WAIT_SECONDS = 5
"""A load that loses a race to another loader is tried again after a random wait that doubles up to
``CONFLICT_WAIT_SECONDS``, for up to ``CONFLICT_RETRY_SECONDS``: long enough for the other's merge of a
large extract to commit, or for the local warehouse to end the transaction of a loader killed mid-merge
(``moviepipe.warehouse.IDLE_TRANSACTION_SECONDS``)."""


class Loader:
    """Loads the bundles that archive manifests announce, one manifest at a time."""

    def __init__(
        self,
        settings: Settings,
        metrics: LoaderMetrics,
        *,
        storage_integration: str | None = None,
        merge: bool = True,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.storage_integration = storage_integration
        self.merge = merge
        self.progress = ExtractProgress(settings)
        # A login costs more than most of a load's statements (locally 0.04 s with the logout; more in
        # Snowflake): a connection is kept from one load to the next.
        self.connections = ConnectionPool(settings, size=2)
        self._bootstrapped = False
        self._bootstrap_lock = threading.Lock()

    def ensure_bootstrapped(self) -> None:
        """Create the warehouse objects once per process (they persist; this only fills gaps)."""
        with self._bootstrap_lock:
            if not self._bootstrapped:
                bootstrap(self.settings, storage_integration=self.storage_integration)
                self._bootstrapped = True

    def process(self, created: ObjectCreated) -> None:
        """Load the bundle of one new archive manifest; raise (to be retried) if the warehouse or S3 fail."""
        if created.bucket != self.settings.bucket("archive") or not created.key.endswith(MANIFEST_NAME):
            log_event(logger, "object_ignored", "not an archive manifest", uri=created.uri)
            return
        try:
            self._load_through_conflicts(created)
        except Exception as exc:
            # Not a bad bundle (those are quarantined): the message comes back, and in the end dead-letters.
            logger.warning(
                "loading %s failed, to be retried: %s",
                created.uri,
                exc,
                exc_info=True,
                extra={
                    "event": "load_attempt_failed",
                    "manifest": created.uri,
                    "error_type": type(exc).__name__,
                },
            )
            raise

    def _load_through_conflicts(self, created: ObjectCreated) -> None:
        """``_load``, again after a short random wait when another loader won a race on the same tables.

        Loader replicas load and merge at the same time; where the warehouse aborts one of two concurrent
        transactions (a serialization failure) the loser starts over. Every step is idempotent (the load
        history skips files already copied; the merge takes whatever is loaded and not merged), so trying
        again is safe, and it is done here rather than by the queue, whose few receives are for failures
        that waiting does not cure.
        """
        deadline = time.monotonic() + CONFLICT_RETRY_SECONDS
        for attempt in itertools.count(1):
            try:
                self._load(created)
                return
            except LoadConflict as exc:
                if time.monotonic() > deadline:
                    raise
                wait = random.uniform(0.1, min(CONFLICT_WAIT_SECONDS, 0.25 * 2**attempt))
                log_event(
                    logger, "load_conflict_retried", str(exc), attempt=attempt, wait_seconds=round(wait, 2)
                )
                time.sleep(wait)

    def _load(self, created: ObjectCreated) -> None:
        started = time.monotonic()
        self.ensure_bootstrapped()
        try:
            # The stage begins as the bundle is read: checking its files is the loader's work.
            location = locate(created)
            self.progress.record(
                location.extract_id, STAGE, RUNNING, source=location.source, manifest=created.uri
            )
            bundle = read_bundle(self.settings, created)
            try:
                result, reconciliation = self._into_warehouse(bundle)
            except WarehouseUnavailable:
                # A kept connection may have outlived its session (the warehouse restarted): once more,
                # on a new one. Every step is idempotent: what the first try committed is not done twice.
                self.connections.close()
                result, reconciliation = self._into_warehouse(bundle)
        except BadBundle as error:
            self._quarantine(created, error)
            return
        self._report(bundle, result, reconciliation, time.monotonic() - started)

    def _into_warehouse(self, bundle: ArchiveBundle) -> tuple[LoadResult, Reconciliation]:
        """Load the bundle, merge it (unless merging is left to Snowflake's tasks) and reconcile it."""
        database = self.settings.warehouse_database
        with self.connections.connection() as connection:
            result = load_bundle(connection, database, bundle)
            if self.merge:
                merge_star(connection, database, extract_id=bundle.extract_id)
            return result, reconcile(connection, database, bundle, merged_here=self.merge)

    def _report(
        self, bundle: ArchiveBundle, result: LoadResult, reconciliation: Reconciliation, seconds: float
    ) -> None:
        counts = reconciliation.counts()
        copied = result.copied
        for load in result.files:
            self.metrics.files.labels(
                "skipped" if load.already or load.status == LOAD_SKIPPED else "loaded"
            ).inc()
        self.metrics.rows.labels("loaded").inc(result.rows_copied("movies"))
        self.metrics.rows.labels("rejected").inc(result.rows_copied("rejects"))
        self.metrics.bytes.labels("in").inc(sum(load.file.bytes for load in copied))
        self.metrics.duration.observe(seconds)
        database = self.settings.warehouse_database
        details: dict[str, Any] = {
            "warehouse": f"{database}.RAW.MOVIES",
            "reconciliation": reconciliation.status,
            "files_loaded": len(copied),
            "files_skipped": len(result.files) - len(copied),
        }
        if reconciliation.status == RECONCILED:
            self.progress.record(bundle.extract_id, STAGE, SUCCEEDED, counts=counts, **details)
            self.metrics.extracts.labels("succeeded").inc()
            self.metrics.last_success.set_to_current_time()
            log_event(
                logger,
                "extract_loaded",
                extract_id=bundle.extract_id,
                seconds=round(seconds, 3),
                **counts,
                **details,
            )
            return
        error = {"code": "NOT_RECONCILED", "message": reconciliation.explain()}
        self.progress.record(bundle.extract_id, STAGE, FAILED, counts=counts, error=error, **details)
        self.metrics.extracts.labels("failed").inc()
        self.metrics.reconciliation_failures.inc()
        log_event(
            logger,
            "extract_not_reconciled",
            reconciliation.explain(),
            level=logging.ERROR,
            extract_id=bundle.extract_id,
            error_code=error["code"],
            **counts,
        )
        # Once per extract: a replay that still does not reconcile finds the alert raised.
        raise_alert(
            self.settings,
            Alert(
                stage=STAGE,
                event="extract_not_reconciled",
                code=error["code"],
                message=f"extract {bundle.extract_id} did not reconcile: {reconciliation.explain()}",
                extract_id=bundle.extract_id,
                source=bundle.source,
                evidence=f"{database}.AUDIT.BATCHES (EXTRACT_ID = '{bundle.extract_id}')",
                replay=replay_command(STAGE, bundle.extract_id),
                details={"counts": counts},
            ),
        )

    def _quarantine(self, created: ObjectCreated, error: BadBundle) -> None:
        if already_quarantined(self.settings, self.progress, created, error):
            log_event(logger, "already_quarantined", str(error), manifest=created.uri)
            return
        where = quarantine_bundle(self.settings, self.progress, created, error)
        self.metrics.extracts.labels("quarantined").inc()
        log_event(
            logger,
            "bundle_quarantined",
            str(error),
            level=logging.WARNING,
            error_code=error.code,
            manifest=created.uri,
            quarantine=where,
        )


def make_handler(
    settings: Settings,
    *,
    metrics: LoaderMetrics | None = None,
    storage_integration: str | None = None,
    merge: bool = True,
) -> Handler:
    """``handler(event, context)`` loading the bundles of the archive manifests an event names (and
    merging them into the star schema, unless ``merge`` is false)."""
    loader = Loader(settings, metrics or METRICS, storage_integration=storage_integration, merge=merge)
    return s3_event_handler(loader.process)


@functools.cache
def _default_handler() -> Handler:
    settings = LoaderSettings()
    return make_handler(
        settings, storage_integration=settings.archive_storage_integration, merge=settings.merge_star
    )


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: settings from the environment."""
    return _default_handler()(event, context)

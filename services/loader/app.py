"""The loader service: its SQS queue fed to the Lambda handler, as Lambda's event source mapping would.

Run it with ``uvicorn services.loader.app:app``. Consumes the loader queue (S3 ObjectCreated events for
archive manifests), bootstraps the warehouse at start, and serves ``/health``, ``/ready`` (archive and
quarantine buckets, its queue, the progress table, the warehouse) and ``/metrics``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from snowflake.connector.errors import DatabaseError
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random

from services.loader.exceptions import CONFLICT_STATES
from services.loader.handler import STAGE, Loader
from services.loader.metrics import METRICS
from services.loader.settings import LoaderSettings
from shared.batch import s3_event_handler
from shared.logs import log_event
from shared.service import bucket_check, create_service, queue_check, table_check
from shared.settings import Settings
from shared.warehouse import WarehouseUnavailable, query

logger = logging.getLogger(__name__)

BOOTSTRAP_WAIT_SECONDS = 30


def _worth_waiting_for(exc: BaseException) -> bool:
    """The warehouse is away, or a concurrent bootstrap (another replica) won a race on its catalog."""
    lost_race = isinstance(exc, DatabaseError) and exc.sqlstate in CONFLICT_STATES
    return isinstance(exc, WarehouseUnavailable) or lost_race


def create_app(settings: Settings | None = None, *, storage_integration: str | None = None) -> FastAPI:
    """The loader app for these settings (from the environment by default)."""
    if settings is None:
        settings = LoaderSettings()
        storage_integration = settings.archive_storage_integration
    merge = settings.merge_star if isinstance(settings, LoaderSettings) else True
    loader = Loader(settings, METRICS, storage_integration=storage_integration, merge=merge)

    def bootstrap_at_startup() -> None:
        """Bootstrap the warehouse, waiting a while for it, and trying again when another loader replica
        bootstrapping at the same moment wins a race; if neither settles, the first load tries again."""
        wait = retry(
            retry=retry_if_exception(_worth_waiting_for),
            stop=stop_after_delay(BOOTSTRAP_WAIT_SECONDS),
            wait=wait_random(0.2, 1.5),
            reraise=True,
        )
        try:
            wait(loader.ensure_bootstrapped)()
        except Exception as exc:
            if not _worth_waiting_for(exc):
                raise
            log_event(logger, "bootstrap_deferred", str(exc), level=logging.WARNING)

    return create_service(
        STAGE,
        settings,
        METRICS,
        handler=s3_event_handler(loader.process),
        ready_checks={
            "archive": bucket_check(settings, "archive"),
            "quarantine": bucket_check(settings, "quarantine"),
            "queue": queue_check(settings, STAGE),
            "progress": table_check(settings),
            "warehouse": lambda: query(settings, "SELECT 1"),
        },
        on_startup=bootstrap_at_startup,
    )


app = create_app()

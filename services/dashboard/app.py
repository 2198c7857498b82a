"""The dashboard service: two read-only pages on the warehouse and the pipeline, plus health and metrics.

Run it with ``uvicorn services.dashboard.app:app``. Serves ``/`` (= ``/analytics``), ``/pipeline``,
``/health``, ``/ready`` (the warehouse, the quarantine bucket, the progress and alerts tables) and
``/metrics``. It only reads: it consumes no queue and writes nowhere.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.dashboard.metrics import METRICS
from services.dashboard.pages import router
from services.dashboard.sections import PageCache
from services.dashboard.settings import dashboard_settings
from shared.service import bucket_check, create_service, table_check
from shared.settings import Settings
from shared.warehouse import ConnectionPool, query

STAGE = "dashboard"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The dashboard app for these settings (from the environment by default)."""
    settings = dashboard_settings(settings)
    app = create_service(
        STAGE,
        settings,
        None,
        ready_checks={
            "warehouse": lambda: query(settings, "SELECT 1"),
            "quarantine": bucket_check(settings, "quarantine"),
            "progress": table_check(settings),
            "alerts": table_check(settings, settings.alerts_table),
        },
    )
    app.state.metrics = METRICS
    app.state.page_cache = PageCache(settings.dashboard_cache_seconds, METRICS)
    app.state.warehouse_pool = ConnectionPool(settings)
    app.include_router(router)
    return app


app = create_app()

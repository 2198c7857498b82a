"""The unzipper service: its SQS queue fed to the Lambda handler, as Lambda's event source mapping would.

Run it with ``uvicorn services.unzipper.app:app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.unzipper import STAGE
from services.unzipper.handler import make_handler
from services.unzipper.metrics import METRICS
from services.unzipper.settings import unzipper_settings
from shared.service import bucket_check, create_service, queue_check, table_check
from shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The unzipper app for these settings (from the environment by default)."""
    settings = unzipper_settings(settings)
    return create_service(
        STAGE,
        settings,
        METRICS,
        handler=make_handler(settings),
        ready_checks={
            "landing": bucket_check(settings, "landing"),
            "processed": bucket_check(settings, "processed"),
            "quarantine": bucket_check(settings, "quarantine"),
            "queue": queue_check(settings, STAGE),
            "progress": table_check(settings),
            "idempotency": table_check(settings, settings.idempotency_table),
        },
    )


app = create_app()

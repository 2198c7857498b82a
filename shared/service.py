"""The FastAPI shell every service shares: ``/health``, ``/ready``, ``/metrics`` and its queue consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.aws import client
from shared.batch import Handler
from shared.consumer import QueueConsumer
from shared.logs import configure_logging
from shared.metrics import StageMetrics
from shared.settings import Settings

ReadyCheck = Callable[[], Any]


def bucket_check(settings: Settings, role: str) -> ReadyCheck:
    return lambda: client("s3", settings).head_bucket(Bucket=settings.bucket(role))


def queue_check(settings: Settings, stage: str) -> ReadyCheck:
    return lambda: client("sqs", settings).get_queue_url(QueueName=settings.queue(stage))


def table_check(settings: Settings) -> ReadyCheck:
    return lambda: client("dynamodb", settings).describe_table(TableName=settings.extracts_table)


def create_service(
    stage: str,
    settings: Settings,
    metrics: StageMetrics,
    *,
    handler: Handler | None = None,
    ready_checks: dict[str, ReadyCheck] | None = None,
    on_startup: Callable[[], None] | None = None,
) -> FastAPI:
    """A FastAPI app for one stage; with ``handler``, it consumes the stage's queue while it runs."""
    checks = dict(ready_checks or {})
    consumer = QueueConsumer(settings, stage, handler, metrics) if handler else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(stage, settings.log_level)
        if on_startup:
            await asyncio.to_thread(on_startup)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop)) if consumer else None
        yield
        stop.set()
        if task:
            try:
                await asyncio.wait_for(task, timeout=settings.poll_wait_seconds + 30)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()

    app = FastAPI(title=f"moviepipe {stage}", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "stage": stage}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(asyncio.to_thread(check), timeout=5)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"{type(exc).__name__}: {exc}"
        if consumer is not None:
            results["queue_consumer"] = "ok" if consumer.polling else (consumer.last_error or "starting")
        is_ready = all(result == "ok" for result in results.values())
        return JSONResponse(
            {"status": "ready" if is_ready else "not ready", "stage": stage, "checks": results},
            status_code=200 if is_ready else 503,
        )

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app

"""The FastAPI shell every service shares: ``/health``, ``/ready``, ``/metrics`` and its queue consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from http import HTTPMethod
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.aws import client
from shared.batch import Handler
from shared.consumer import QueueConsumer
from shared.logs import configure_logging
from shared.metrics import StageMetrics
from shared.settings import Settings

ReadyCheck = Callable[[], Any]


class Health(BaseModel):
    """``GET /health``: the service is alive."""

    status: Literal["ok"]
    stage: str


class Readiness(BaseModel):
    """``GET /ready``: whether every dependency answered."""

    status: Literal["ready", "not ready"]
    stage: str
    checks: dict[str, str] = Field(description='By dependency: "ok", or why it did not answer')


def bucket_check(settings: Settings, role: str) -> ReadyCheck:
    return lambda: client("s3", settings).head_bucket(Bucket=settings.bucket(role))


def queue_check(settings: Settings, stage: str) -> ReadyCheck:
    return lambda: client("sqs", settings).get_queue_url(QueueName=settings.queue(stage))


def table_check(settings: Settings, table: str | None = None) -> ReadyCheck:
    """The DynamoDB table answers (the extracts' progress table unless another is named)."""
    name = table or settings.extracts_table
    return lambda: client("dynamodb", settings).describe_table(TableName=name)


def create_service(
    stage: str,
    settings: Settings,
    metrics: StageMetrics | None,
    *,
    handler: Handler | None = None,
    ready_checks: dict[str, ReadyCheck] | None = None,
    on_startup: Callable[[], None] | None = None,
) -> FastAPI:
    """A FastAPI app for one stage; with ``handler``, it consumes the stage's queue while it runs.

    ``metrics`` are the stage's queue metrics: needed with ``handler``; a service that consumes no queue
    (the dashboard) may have none.
    """
    if handler is not None and metrics is None:
        raise ValueError(f"{stage}: a service that consumes a queue needs its stage metrics")
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

    app.add_exception_handler(StarletteHTTPException, allow_every_method)

    @app.get("/health")
    def health() -> Health:
        return Health(status="ok", stage=stage)

    @app.get(
        "/ready",
        response_description="Every dependency answered",
        responses={503: {"model": Readiness, "description": "A dependency did not answer"}},
    )
    async def ready(response: Response) -> Readiness:
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
        response.status_code = 200 if is_ready else 503
        return Readiness(status="ready" if is_ready else "not ready", stage=stage, checks=results)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        response_description="Prometheus text exposition format",
    )
    def metrics_endpoint() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


async def allow_every_method(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's answer to an HTTP error, with a 405's ``Allow`` naming every method the path takes.

    Starlette lets the first route at the path answer 405 with only its own methods: where a GET route
    and a POST route share a path, ``Allow`` named only one of them.
    """
    if exc.status_code == 405:
        allowed = [
            method
            for method in HTTPMethod
            if any(
                route.matches({**request.scope, "method": method})[0] is Match.FULL
                for route in request.app.router.routes
            )
        ]
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, exc)

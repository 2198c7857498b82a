"""The extractor service: ``/extracts`` plus health, readiness, metrics, and the consumer that runs extracts.

Run it with ``uvicorn services.extractor.app:app``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.extractor.extract import STAGE
from services.extractor.handler import make_handler
from services.extractor.metrics import METRICS
from services.extractor.routes import router
from services.extractor.settings import extractor_settings
from services.extractor.sources import SourceRegistry, default_sources
from shared.progress import ExtractProgress
from shared.service import bucket_check, create_service, queue_check, table_check
from shared.settings import Settings


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable sentence in ``detail`` (and the field-by-field errors beside it)."""
    errors = exc.errors()
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors
    )
    return JSONResponse(
        {"detail": f"invalid request: {problems}", "errors": jsonable_encoder(errors)},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def create_app(settings: Settings | None = None, *, sources: SourceRegistry | None = None) -> FastAPI:
    """The extractor app for these settings (from the environment by default) and sources."""
    settings = extractor_settings(settings)
    sources = sources or default_sources()
    progress = ExtractProgress(settings)
    app = create_service(
        STAGE,
        settings,
        METRICS,
        handler=make_handler(settings, sources=sources, progress=progress),
        ready_checks={
            "landing": bucket_check(settings, "landing"),
            "queue": queue_check(settings, STAGE),
            "progress": table_check(settings),
        },
    )
    app.state.sources = sources
    app.state.progress = progress
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, invalid_request)
    return app


app = create_app()

"""The extractor service: ``/extracts`` plus health, readiness, metrics, and the consumer that runs extracts.

Run it with ``uvicorn services.extractor.app:app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.extractor.exceptions import SourcesFileError
from services.extractor.extract import STAGE
from services.extractor.handler import make_handler
from services.extractor.metrics import METRICS
from services.extractor.routes import router
from services.extractor.routes.problems import declare_problems
from services.extractor.settings import extractor_settings
from services.extractor.sources import SourceRegistry, default_sources
from services.extractor.state import SourceState
from shared.progress import ExtractProgress
from shared.service import bucket_check, create_service, queue_check, table_check
from shared.settings import Settings


def create_app(settings: Settings | None = None, *, sources: SourceRegistry | None = None) -> FastAPI:
    """The extractor app for these settings (from the environment by default) and sources."""
    settings = extractor_settings(settings)
    sources = sources or default_sources(settings)
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
            "sources": table_check(settings, settings.sources_table),
        },
    )
    app.state.sources = sources
    app.state.progress = progress
    app.state.source_state = SourceState(settings)
    app.include_router(router)
    declare_problems(app, needs_token=bool(settings.api_token))
    return app


def _app_or_exit() -> FastAPI:
    try:
        return create_app()
    except SourcesFileError as exc:
        # uvicorn imports this module: a bad sources file ends the process with one line saying why.
        raise SystemExit(f"the extractor cannot start: {exc.message}") from None


app = _app_or_exit()

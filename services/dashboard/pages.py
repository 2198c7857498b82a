"""The dashboard's two pages, rendered on the server: ``/`` (= ``/analytics``) and ``/pipeline``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from services.dashboard import analytics, charts, pipeline
from services.dashboard.metrics import METRICS
from services.dashboard.sections import PageCache, PageData
from services.dashboard.settings import DashboardSettings
from shared.warehouse import ConnectionPool

router = APIRouter()

templates = Environment(
    loader=PackageLoader("services.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: Request,
    page: str,
    read: Callable[[DashboardSettings, ConnectionPool], PageData],
    view: Callable[[PageData], dict[str, Any]],
) -> HTMLResponse:
    """Read the page's data (or take it from the cache), render its template, time the whole."""
    started = time.perf_counter()
    settings: DashboardSettings = request.app.state.settings
    cache: PageCache = request.app.state.page_cache
    # A hard reload (or any client asking ``Cache-Control: no-cache``) reads the data again.
    fresh = "no-cache" in request.headers.get("cache-control", "").lower()
    pool: ConnectionPool = request.app.state.warehouse_pool
    data = cache.get(page, lambda: read(settings, pool), fresh=fresh)
    context = {
        **view(data),
        "title": page,
        "cache_seconds": cache.seconds,
        "status_colours": charts.STATUS_COLOURS,
        "quarantine_bucket": settings.bucket("quarantine"),
    }
    html = templates.get_template(f"{page}.html").render(context)
    METRICS.page_duration.labels(page).observe(time.perf_counter() - started)
    return HTMLResponse(html)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/analytics", response_class=HTMLResponse, summary="The star schema's BI views, charted")
def analytics_page(request: Request) -> HTMLResponse:
    return render(request, analytics.PAGE, analytics.read_analytics, analytics.analytics_view)


@router.get("/pipeline", response_class=HTMLResponse, summary="Extracts, rejects, quarantine, alerts, DLQs")
def pipeline_page(request: Request) -> HTMLResponse:
    return render(request, pipeline.PAGE, pipeline.read_pipeline, pipeline.pipeline_view)

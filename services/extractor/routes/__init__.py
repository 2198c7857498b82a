"""The extractor's routes, one file per resource."""

from __future__ import annotations

from fastapi import APIRouter

from services.extractor.routes import extracts, sources

router = APIRouter()
router.include_router(extracts.router)
router.include_router(sources.router)

__all__ = ["router"]

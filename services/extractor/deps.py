"""FastAPI dependencies of the extractor's routes, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.extractor.settings import ExtractorSettings
from services.extractor.sources import SourceRegistry
from services.extractor.state import SourceState
from shared.progress import ExtractProgress

_bearer = HTTPBearer(auto_error=False, description="MOVIEPIPE_API_TOKEN, when the service has one")


def get_settings(request: Request) -> ExtractorSettings:
    return request.app.state.settings


def get_sources(request: Request) -> SourceRegistry:
    return request.app.state.sources


def get_progress(request: Request) -> ExtractProgress:
    return request.app.state.progress


def get_state(request: Request) -> SourceState:
    return request.app.state.source_state


SettingsDep = Annotated[ExtractorSettings, Depends(get_settings)]
SourcesDep = Annotated[SourceRegistry, Depends(get_sources)]
ProgressDep = Annotated[ExtractProgress, Depends(get_progress)]
StateDep = Annotated[SourceState, Depends(get_state)]


def require_api_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """When the service has an API token, refuse (401) a request not presenting it as a bearer token."""
    if not settings.api_token:
        return
    presented = credentials.credentials if credentials else ""
    if not hmac.compare_digest(presented.encode(), settings.api_token.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="this endpoint needs 'Authorization: Bearer <MOVIEPIPE_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = Annotated[None, Depends(require_api_token)]
"""A route parameter of this type admits only callers presenting the API token."""

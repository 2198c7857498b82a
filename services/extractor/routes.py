"""``/extracts``: request an extract, and follow it through every stage."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from services.extractor.deps import Authorized, ProgressDep, SettingsDep, SourcesDep
from services.extractor.exceptions import UnknownSource
from services.extractor.extract import STAGE, fail_extract, new_extract_id
from services.extractor.handler import ExtractRequest
from shared.aws import client, queue_url
from shared.logs import log_event

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/extracts", tags=["extracts"])


class ExtractRequestBody(BaseModel):
    """``POST /extracts``."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="A known source, e.g. imdb"
    )


class ExtractAccepted(BaseModel):
    """The answer to ``POST /extracts``: where to follow the extract."""

    extract_id: str
    status_url: str


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def request_extract(
    body: ExtractRequestBody,
    _: Authorized,
    settings: SettingsDep,
    sources: SourcesDep,
    progress: ProgressDep,
) -> ExtractAccepted:
    """Queue an extract of ``source``; it runs in the background, follow it at ``status_url``."""
    if body.source not in sources:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, UnknownSource(body.source, sources.names).message
        )
    extract_id = new_extract_id()
    progress.begin(extract_id, body.source)
    request = ExtractRequest(extract_id=extract_id, source=body.source)
    try:
        client("sqs", settings).send_message(
            QueueUrl=queue_url(settings, STAGE), MessageBody=request.to_message()
        )
    except (BotoCoreError, ClientError) as exc:
        fail_extract(settings, extract_id, body.source, exc, progress=progress)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"extract {extract_id} could not be queued: {exc}"
        ) from exc
    log_event(logger, "extract_requested", extract_id=extract_id, source=body.source)
    return ExtractAccepted(extract_id=extract_id, status_url=f"/extracts/{extract_id}")


@router.get("")
def list_extracts(
    progress: ProgressDep, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> dict[str, list[dict[str, Any]]]:
    """The most recently requested extracts, newest first."""
    return {"extracts": progress.recent(limit)}


@router.get("/{extract_id}")
def get_extract(extract_id: str, progress: ProgressDep) -> dict[str, Any]:
    """The extract's progress through every stage, with counts and errors."""
    extract = progress.get(extract_id)
    if extract is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no extract {extract_id!r}")
    return extract

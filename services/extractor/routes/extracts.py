"""``/extracts``: request an extract, list the recent ones, and follow one through every stage."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from services.extractor.deps import Authorized, ProgressDep, SettingsDep, SourcesDep, StateDep
from services.extractor.exceptions import ExtractAlreadyRunning, UnknownSource
from services.extractor.extract import STAGE, fail_extract, new_extract_id
from services.extractor.handler import ExtractRequest
from services.extractor.routes.problems import AUTH_PROBLEMS, Problem, ValidationProblem
from shared.aws import client, queue_url
from shared.locations import NAME_PATTERN
from shared.logs import log_event
from shared.settings import STAGES

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/extracts", tags=["extracts"])

SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"

ExtractId = Annotated[
    str,
    Path(
        max_length=1024,
        pattern=NAME_PATTERN,
        description="As POST /extracts answered it, or the name of a zip dropped in landing",
        examples=["20261126T041700Z-1a2b3c4d"],
    ),
]
"""Any id an extract can have. The unzipper takes ids from landing keys ``{source}/{extract_id}.zip`` of this
shape, so one is shorter than a key (1024 bytes), and well inside what DynamoDB takes as a key (2048)."""


class ExtractRequestBody(BaseModel):
    """``POST /extracts``."""

    # Strict: the document says full_refresh is a boolean, so 0 or "yes" is refused, not read as one.
    model_config = ConfigDict(extra="forbid", strict=True)

    source: str = Field(
        min_length=1,
        max_length=64,
        pattern=SOURCE_NAME_PATTERN,
        description="A known source (GET /sources lists them)",
        examples=["imdb"],
    )
    full_refresh: bool = Field(
        False, description="Read the whole source, ignoring an incremental source's high-water mark"
    )


class ExtractAccepted(BaseModel):
    """The answer to ``POST /extracts``: where to follow the extract."""

    extract_id: str
    status_url: str


class ExtractRecord(BaseModel):
    """An extract's progress: one entry per stage that has started (status, counts, error, locations)."""

    model_config = ConfigDict(extra="allow")

    extract_id: str
    source: str | None = None
    requested_at: str | None = None
    updated_at: str | None = None
    status: str = Field(description="running, loaded, empty, quarantined or failed")
    stages: dict[str, dict[str, Any]] = Field(description=f"by stage: {', '.join(STAGES)}")


class ExtractList(BaseModel):
    extracts: list[ExtractRecord]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **AUTH_PROBLEMS,
        404: {"model": Problem, "description": "No source of that name"},
        409: {"model": Problem, "description": "An extract of the source is already running"},
        422: {"model": ValidationProblem, "description": "The body is not an extract request"},
        503: {"model": Problem, "description": "The request could not be queued"},
    },
)
def request_extract(
    body: ExtractRequestBody,
    _: Authorized,
    settings: SettingsDep,
    sources: SourcesDep,
    progress: ProgressDep,
    state: StateDep,
) -> ExtractAccepted:
    """Queue an extract of ``source``; it runs in the background, follow it at ``status_url``."""
    if body.source not in sources:
        detail = UnknownSource(body.source, sources.names).message
        if getattr(sources, "problem", None):
            detail += f" (the sources file was refused as it is now: {sources.problem})"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail)
    extract_id = new_extract_id()
    try:
        state.claim(body.source, extract_id)
    except ExtractAlreadyRunning as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from exc
    except (BotoCoreError, ClientError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the progress store is unavailable: {exc}"
        ) from exc
    progress.begin(extract_id, body.source)
    request = ExtractRequest(extract_id=extract_id, source=body.source, full_refresh=body.full_refresh)
    try:
        client("sqs", settings).send_message(
            QueueUrl=queue_url(settings, STAGE), MessageBody=request.to_message()
        )
    except (BotoCoreError, ClientError) as exc:
        fail_extract(settings, extract_id, body.source, exc, progress=progress)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"extract {extract_id} could not be queued: {exc}"
        ) from exc
    log_event(
        logger,
        "extract_requested",
        extract_id=extract_id,
        source=body.source,
        full_refresh=body.full_refresh,
    )
    return ExtractAccepted(extract_id=extract_id, status_url=f"/extracts/{extract_id}")


@router.get("", responses={422: {"model": ValidationProblem, "description": "A bad query parameter"}})
def list_extracts(
    progress: ProgressDep,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many")] = 20,
    source: Annotated[
        str | None, Query(max_length=64, pattern=SOURCE_NAME_PATTERN, description="Only this source's")
    ] = None,
) -> ExtractList:
    """The most recent extracts, newest first (including ones that began with a bundle dropped by hand)."""
    return ExtractList(extracts=[ExtractRecord(**record) for record in progress.recent(limit, source=source)])


@router.get(
    "/{extract_id}",
    responses={
        404: {"model": Problem, "description": "No such extract"},
        422: {"model": ValidationProblem, "description": "Not an id an extract can have"},
    },
)
def get_extract(extract_id: ExtractId, progress: ProgressDep) -> ExtractRecord:
    """The extract's progress through every stage, with counts and errors."""
    extract = progress.get(extract_id)
    if extract is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no extract {extract_id!r}")
    return ExtractRecord(**extract)

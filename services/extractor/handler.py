"""The extractor's queue handler: runs the extracts that ``POST /extracts`` requested.

A request is a message ``{"extract_id", "source"}`` on the extractor's queue, so an extractor that dies
mid-extract loses nothing: the message comes back and the extract runs again. The handler follows
Lambda's SQS contract (``batchItemFailures``): a request that can never succeed (unknown source,
unreadable source, not a request at all) is recorded as failed, alerted once and not retried; anything
else (S3 or DynamoDB unreachable) is retried and, on its last receive, recorded as failed before it goes
to the dead-letter queue (the queue consumer raises the alert).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.extractor.exceptions import ExtractAlreadyRunning, ExtractError, InvalidExtractRequest
from services.extractor.extract import EXTRACT_ID_PATTERN, STAGE, fail_extract, run_extract
from services.extractor.metrics import METRICS
from services.extractor.settings import extractor_settings
from services.extractor.sources import SourceRegistry, default_sources
from services.extractor.state import SourceState
from shared.alerts import Alert, raise_alert
from shared.batch import Handler
from shared.logs import log_event
from shared.progress import SUCCEEDED, ExtractProgress
from shared.settings import Settings

logger = logging.getLogger(__name__)


class ExtractRequest(BaseModel):
    """An extract requested through the queue."""

    model_config = ConfigDict(extra="ignore")

    extract_id: str = Field(pattern=EXTRACT_ID_PATTERN.pattern)
    source: str = Field(min_length=1)
    full_refresh: bool = False

    def to_message(self) -> str:
        return self.model_dump_json()


def parse_request(body: str) -> ExtractRequest:
    """The request a queue message carries; ``InvalidExtractRequest`` naming what is wrong otherwise."""
    try:
        return ExtractRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}" for error in exc.errors()
        )
        raise InvalidExtractRequest(f"not an extract request ({problems}): {body[:200]!r}") from exc


def make_handler(
    settings: Settings,
    *,
    sources: SourceRegistry | None = None,
    progress: ExtractProgress | None = None,
) -> Handler:
    """``handler(event, context)`` for SQS events of extract requests (Lambda's or the consumer's)."""
    settings = extractor_settings(settings)
    sources = sources or default_sources(settings)
    progress = progress or ExtractProgress(settings)
    state = SourceState(settings)

    def record_handler(record: SQSRecord) -> None:
        try:
            request = parse_request(record.body)
        except InvalidExtractRequest as exc:
            _refuse_message(settings, progress, record.body, exc)
            return

        extract = progress.get(request.extract_id)
        if extract is None:
            progress.begin(request.extract_id, request.source)
        elif extract["stages"].get(STAGE, {}).get("status") == SUCCEEDED:
            METRICS.extracts.labels("skipped").inc()
            log_event(
                logger, "extract_already_succeeded", extract_id=request.extract_id, source=request.source
            )
            return

        try:
            source = sources.get(request.source, settings)
            # Held already when the request came through POST /extracts; retried while another runs.
            state.claim(request.source, request.extract_id)
            run_extract(
                settings,
                source,
                request.extract_id,
                full_refresh=request.full_refresh,
                progress=progress,
                state=state,
            )
        except ExtractError as exc:
            if not isinstance(exc, ExtractAlreadyRunning):
                fail_extract(settings, request.extract_id, request.source, exc, progress=progress)
                return
            retry_or_fail(record, request, exc)
        except Exception as exc:
            retry_or_fail(record, request, exc)

    def retry_or_fail(record: SQSRecord, request: ExtractRequest, exc: Exception) -> None:
        """Leave the message for another attempt; on the last one, record the extract as failed."""
        attempt = int(record.attributes.approximate_receive_count or 1)
        logger.warning(
            "extract attempt %s of %s failed, to be retried: %s",
            attempt,
            settings.max_receive_count,
            exc,
            exc_info=not isinstance(exc, ExtractAlreadyRunning),
            extra={"event": "extract_attempt_failed", "extract_id": request.extract_id},
        )
        if attempt >= settings.max_receive_count:
            # The consumer raises the one alert as the message goes to the DLQ.
            fail_extract(settings, request.extract_id, request.source, exc, progress=progress, alert=False)
        raise exc

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler


def _refuse_message(
    settings: Settings, progress: ExtractProgress, body: str, error: InvalidExtractRequest
) -> None:
    """A message that is no extract request: failed (when it names an extract) and alerted, not retried."""
    try:
        named = json.loads(body)
    except ValueError:
        named = None
    extract_id = named.get("extract_id") if isinstance(named, dict) else None
    if isinstance(extract_id, str) and EXTRACT_ID_PATTERN.match(extract_id):
        fail_extract(settings, extract_id, named.get("source"), error, progress=progress)
        return
    METRICS.extracts.labels("failed").inc()
    log_event(logger, "request_refused", error.message, level=logging.ERROR)
    raise_alert(
        settings,
        Alert(
            stage=STAGE,
            event="request_refused",
            code=error.code,
            message=f"a message on {settings.queue(STAGE)} is not an extract request: {error.message}",
            evidence=settings.queue(STAGE),
            details={"body": body[:2000]},
        ),
    )

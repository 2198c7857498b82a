"""One extract: read a source, write the bundle, land it in S3, and record how it went.

The landing zip is uploaded only once it is complete, and landing is written once per extract: a
replayed request for an extract that already landed does nothing.
"""

from __future__ import annotations

import logging
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from services.extractor.bundle import write_bundle
from services.extractor.exceptions import ExtractError
from services.extractor.metrics import METRICS
from services.extractor.settings import ExtractorSettings
from services.extractor.sources import Source
from shared.alerts import raise_alert
from shared.aws import client
from shared.logs import log_event
from shared.progress import FAILED, RUNNING, SUCCEEDED, ExtractProgress

logger = logging.getLogger(__name__)

STAGE = "extractor"
EXTRACT_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def new_extract_id(at: datetime | None = None) -> str:
    """A new extract id that sorts by time: ``20261126T041700Z-3f9c2a1b``."""
    at = at or datetime.now(UTC)
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def landing_key(source: str, extract_id: str) -> str:
    return f"{source}/{extract_id}.zip"


def landing_uri(settings: ExtractorSettings, source: str, extract_id: str) -> str:
    return f"s3://{settings.bucket('landing')}/{landing_key(source, extract_id)}"


@dataclass(frozen=True)
class ExtractResult:
    """What one extract landed."""

    extract_id: str
    source: str
    landing: str
    rows: int
    bytes: int
    seconds: float
    skipped: bool = False


def run_extract(
    settings: ExtractorSettings,
    source: Source,
    extract_id: str,
    *,
    progress: ExtractProgress | None = None,
) -> ExtractResult:
    """Extract ``source`` as ``extract_id`` into landing; raises ``ExtractError`` if the source fails."""
    progress = progress or ExtractProgress(settings)
    s3 = client("s3", settings)
    bucket, key = settings.bucket("landing"), landing_key(source.name, extract_id)
    uri = landing_uri(settings, source.name, extract_id)

    landed = _landed_bundle(s3, bucket, key)
    if landed is not None:
        return _already_landed(progress, extract_id, source.name, uri, landed)

    started = time.perf_counter()
    progress.record(extract_id, STAGE, RUNNING, landing=uri)
    log_event(logger, "extract_started", extract_id=extract_id, source=source.name)
    with tempfile.TemporaryDirectory(prefix=f"extract-{extract_id}-") as work:
        bundle = write_bundle(
            source.read_batches(settings.batch_rows), Path(work), extract_id=extract_id, source=source.name
        )
        s3.upload_file(
            str(bundle.path),
            bucket,
            key,
            ExtraArgs={
                "ContentType": "application/zip",
                "Metadata": {"rows": str(bundle.rows), "hash": bundle.hash},
            },
        )
    seconds = time.perf_counter() - started

    progress.record(
        extract_id, STAGE, SUCCEEDED, counts={"extracted": bundle.rows}, landing=uri, bytes=bundle.bytes
    )
    METRICS.extracts.labels(SUCCEEDED).inc()
    METRICS.rows.labels("extracted").inc(bundle.rows)
    METRICS.bundle_bytes.inc(bundle.bytes)
    METRICS.duration.observe(seconds)
    log_event(
        logger,
        "extract_landed",
        f"extract {extract_id} landed {bundle.rows} rows at {uri}",
        extract_id=extract_id,
        source=source.name,
        rows=bundle.rows,
        bytes=bundle.bytes,
        seconds=round(seconds, 3),
    )
    return ExtractResult(extract_id, source.name, uri, bundle.rows, bundle.bytes, seconds)


def fail_extract(
    settings: ExtractorSettings,
    extract_id: str,
    source: str | None,
    error: Exception,
    *,
    progress: ExtractProgress | None = None,
    alert: bool = True,
) -> None:
    """Record an extract as failed, with its error, and raise one alert (unless another is raised)."""
    progress = progress or ExtractProgress(settings)
    if isinstance(error, ExtractError):
        details = error.as_error()
    else:
        details = {"code": "EXTRACT_FAILED", "message": f"{type(error).__name__}: {error}"}
    progress.record(extract_id, STAGE, FAILED, error=details)
    METRICS.extracts.labels(FAILED).inc()
    log_event(
        logger,
        "extract_failed",
        details["message"],
        level=logging.ERROR,
        extract_id=extract_id,
        source=source,
    )
    if not alert:
        return
    raise_alert(
        settings,
        stage=STAGE,
        event="extract_failed",
        message=f"extract {extract_id} of source {source!r} failed: {details['message']}",
        extract_id=extract_id,
        details={"source": source, **details},
    )


def has_succeeded(progress: ExtractProgress, extract_id: str) -> bool:
    record = progress.get(extract_id)
    return bool(record) and record["stages"].get(STAGE, {}).get("status") == SUCCEEDED


def _landed_bundle(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _already_landed(
    progress: ExtractProgress, extract_id: str, source: str, uri: str, landed: dict[str, Any]
) -> ExtractResult:
    rows = int(landed.get("Metadata", {}).get("rows", 0))
    if not has_succeeded(progress, extract_id):
        # The last attempt landed the bundle and died before saying so.
        progress.record(
            extract_id,
            STAGE,
            SUCCEEDED,
            counts={"extracted": rows},
            landing=uri,
            bytes=landed["ContentLength"],
        )
    METRICS.extracts.labels("skipped").inc()
    log_event(logger, "extract_already_landed", extract_id=extract_id, source=source, landing=uri)
    return ExtractResult(extract_id, source, uri, rows, landed["ContentLength"], 0.0, skipped=True)

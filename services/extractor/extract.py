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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from botocore.exceptions import ClientError

from services.extractor.bundle import write_bundle
from services.extractor.exceptions import ExtractError
from services.extractor.metrics import METRICS
from services.extractor.records import RecordMapper
from services.extractor.settings import ExtractorSettings
from services.extractor.sources import Source
from services.extractor.sources.config import BaseSource
from services.extractor.state import SourceState
from shared.alerts import Alert, raise_alert
from shared.aws import UPLOADS, client, is_missing
from shared.logs import log_event
from shared.progress import FAILED, RUNNING, SUCCEEDED, ExtractProgress

logger = logging.getLogger(__name__)

STAGE = "extractor"
EXTRACT_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def new_extract_id(at: datetime | None = None) -> str:
    """A new extract id that sorts by time, to the millisecond: ``20261126T041700Z-3e7c2a1b``.

    The suffix is the millisecond in three hex digits, then five random ones: two extracts requested
    in the same second still sort in the order they were requested (the high-water mark relies on it).
    """
    at = (at or datetime.now(UTC)).astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%SZ}-{at.microsecond // 1000:03x}{secrets.token_hex(3)[:5]}"


def landing_key(source: str, extract_id: str) -> str:
    return f"{source}/{extract_id}.zip"


def landing_uri(settings: ExtractorSettings, source: str, extract_id: str) -> str:
    return f"s3://{settings.bucket('landing')}/{landing_key(source, extract_id)}"


@dataclass(frozen=True)
class ExtractResult:
    """What one extract landed."""

    extract_id: str
    source: str
    landing: str | None
    rows: int
    bytes: int
    seconds: float
    skipped: bool = False
    extract_kind: str = "full"
    high_water_mark: str | None = None


def run_extract(
    settings: ExtractorSettings,
    source: Source,
    extract_id: str,
    *,
    full_refresh: bool = False,
    progress: ExtractProgress | None = None,
    state: SourceState | None = None,
) -> ExtractResult:
    """Extract ``source`` as ``extract_id`` into landing; raises ``ExtractError`` if the source fails.

    An incremental source (one with a ``cursor``) reads from its high-water mark, unless
    ``full_refresh``; the mark moves to the highest cursor read only once the bundle has landed, so a
    crash re-extracts rather than skips. An extract of no rows succeeds and lands nothing.
    """
    progress = progress or ExtractProgress(settings)
    state = state or SourceState(settings)
    s3 = client("s3", settings)
    bucket, key = settings.bucket("landing"), landing_key(source.name, extract_id)
    uri = landing_uri(settings, source.name, extract_id)

    landed = _landed_bundle(s3, bucket, key)
    if landed is not None:
        return _already_landed(progress, state, extract_id, source.name, uri, landed)

    config = getattr(source, "config", None) or BaseSource()
    since = None if full_refresh or not config.cursor else state.get(source.name)["high_water_mark"]
    mapper = RecordMapper(
        source.name, config, since=since, filter_since=not getattr(source, "filters_since", False)
    )
    kind = "incremental" if since is not None else "full"

    started = time.perf_counter()
    progress.record(extract_id, STAGE, RUNNING, landing=uri, extract_kind=kind, since=since)
    log_event(
        logger, "extract_started", extract_id=extract_id, source=source.name, extract_kind=kind, since=since
    )

    def batches() -> Iterator[pa.RecordBatch]:
        yield from source.read_batches(settings.batch_rows, since=since)
        mapper.ignored_fields.update(getattr(source, "unread_fields", ()))

    def read_so_far(rows: int) -> None:
        progress.record(
            extract_id,
            STAGE,
            RUNNING,
            counts={"extracted": rows},
            landing=uri,
            extract_kind=kind,
            begins=False,
        )

    with tempfile.TemporaryDirectory(prefix=f"extract-{extract_id}-") as work:
        bundle = write_bundle(
            batches(),
            Path(work),
            extract_id=extract_id,
            source=source.name,
            mapper=mapper,
            progress=_every(settings.progress_rows, read_so_far),
        )
        mark = mapper.cursor.high if mapper.cursor is not None else None
        if bundle.path is not None:
            metadata = {"rows": str(bundle.rows), "hash": bundle.hash}
            if mark is not None:
                metadata["high-water-mark"] = mark
            s3.upload_file(
                str(bundle.path),
                bucket,
                key,
                ExtraArgs={"ContentType": "application/zip", "Metadata": metadata},
                Config=UPLOADS,
            )
    seconds = time.perf_counter() - started
    if mark is not None:
        state.advance(source.name, extract_id, mark)

    landing = uri if bundle.path is not None else None
    details: dict[str, Any] = {"landing": landing, "bytes": bundle.bytes, "extract_kind": kind}
    if since is not None:
        details["since"] = since
    if mark is not None:
        details["high_water_mark"] = mark
    if mapper.unfit_values:
        details["unfit_values"] = dict(mapper.unfit_values)
    missing = sorted(mapper.missing_fields) if bundle.rows else None
    if missing is not None:
        _say_missing_fields(settings, state, source.name, extract_id, missing, details)
    progress.record(extract_id, STAGE, SUCCEEDED, counts={"extracted": bundle.rows}, **details)
    state.release(source.name, extract_id, SUCCEEDED, missing_fields=missing)
    METRICS.extracts.labels(SUCCEEDED).inc()
    METRICS.rows.labels("extracted").inc(bundle.rows)
    METRICS.bundle_bytes.inc(bundle.bytes)
    METRICS.bytes.labels("out").inc(bundle.bytes)
    METRICS.duration.observe(seconds)
    message = (
        f"extract {extract_id} landed {bundle.rows} rows at {uri}"
        if landing
        else f"extract {extract_id} found no rows to extract; nothing landed"
    )
    log_event(
        logger,
        "extract_landed" if landing else "extract_empty",
        message,
        extract_id=extract_id,
        source=source.name,
        rows=bundle.rows,
        bytes=bundle.bytes,
        seconds=round(seconds, 3),
        extract_kind=kind,
    )
    return ExtractResult(
        extract_id,
        source.name,
        landing,
        bundle.rows,
        bundle.bytes,
        seconds,
        extract_kind=kind,
        high_water_mark=mark,
    )


def _say_missing_fields(
    settings: ExtractorSettings,
    state: SourceState,
    source: str,
    extract_id: str,
    missing: list[str],
    details: dict[str, Any],
) -> None:
    """Say which fields of the movie record the source did not give (they load as nulls).

    The extract's record names them every time. A field the source's previous extract gave and this one
    does not (a column dropped or renamed at the source) raises one alert: it would otherwise load as
    null for every movie without anyone being told. A source that never had a field alerts nothing.
    """
    if missing:
        details["missing_fields"] = missing
        log_event(
            logger,
            "fields_missing",
            f"source {source!r} gives no {', '.join(missing)}: null in every row",
            level=logging.WARNING,
            extract_id=extract_id,
            source=source,
            fields=missing,
        )
    # What the previous extract lacked; this one's is recorded as the source is released.
    before = state.get(source)["missing_fields"]
    lost = sorted(set(missing) - set(before)) if before is not None else []
    if not lost:
        return
    raise_alert(
        settings,
        Alert(
            stage=STAGE,
            event="fields_lost",
            code="SCHEMA_DRIFT",
            message=(
                f"source {source!r} no longer gives the movie record's {', '.join(lost)} (its previous "
                f"extract did): extract {extract_id} loads {'it' if len(lost) == 1 else 'them'} as null "
                f"for every movie. Map the renamed column in [sources.{source}.columns], or restore it."
            ),
            extract_id=extract_id,
            source=source,
            evidence=f"the extract's progress record: moviepipe status {extract_id}",
            details={"missing_fields": lost},
        ),
    )


def _every(rows: int, report: Callable[[int], None]) -> Callable[[int], None]:
    """``report`` called at most once per ``rows`` rows written."""
    reported = 0

    def maybe_report(written: int) -> None:
        nonlocal reported
        if written - reported >= rows:
            reported = written
            report(written)

    return maybe_report


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
    if source:
        SourceState(settings).release(source, extract_id, FAILED)
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
        Alert(
            stage=STAGE,
            event="extract_failed",
            code=details["code"],
            message=f"extract {extract_id} of source {source!r} failed: {details['message']}",
            extract_id=extract_id,
            source=source,
            evidence=f"the extract's progress record: moviepipe status {extract_id}",
            replay=f"moviepipe extract {source}" if source else None,
        ),
    )


def has_succeeded(progress: ExtractProgress, extract_id: str) -> bool:
    record = progress.get(extract_id)
    return bool(record) and record["stages"].get(STAGE, {}).get("status") == SUCCEEDED


def _landed_bundle(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def _already_landed(
    progress: ExtractProgress,
    state: SourceState,
    extract_id: str,
    source: str,
    uri: str,
    landed: dict[str, Any],
) -> ExtractResult:
    rows = int(landed.get("Metadata", {}).get("rows", 0))
    mark = landed.get("Metadata", {}).get("high-water-mark")
    if mark is not None:
        # The last attempt may have landed the bundle and died before moving the mark.
        state.advance(source, extract_id, mark)
    state.release(source, extract_id, SUCCEEDED)
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

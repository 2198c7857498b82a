"""Quarantine: a bad bundle is kept with a ``reason.json`` beside it, its extract marked, one alert raised.

Layout in the quarantine bucket: ``unzip/{landing key without .zip}/{file name}.zip`` and ``.../reason.json``.
reason.json is written last and carries the bundle's hash: a replayed event for the same bundle finds it
and does nothing, so each bad bundle is alerted once (a crash before reason.json repeats the alert
rather than losing it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from services.unzipper import STAGE
from services.unzipper.exceptions import BadBundle
from services.unzipper.locations import LandedBundle
from shared.alerts import raise_alert
from shared.logs import log_event
from shared.progress import QUARANTINED, ExtractProgress
from shared.quarantine import read_reason, write_reason
from shared.settings import Settings

logger = logging.getLogger(__name__)


def already_quarantined(
    s3: Any, settings: Settings, bundle: LandedBundle, bundle_hash: str
) -> dict[str, Any] | None:
    """The reason.json of exactly this bundle (same hash), if it has been quarantined already."""
    reason = read_reason(s3, settings, bundle.quarantine_prefix())
    return reason if reason is not None and reason.get("bundle_hash") == bundle_hash else None


def quarantine(
    s3: Any,
    settings: Settings,
    progress: ExtractProgress,
    bundle: LandedBundle,
    zip_path: Path,
    *,
    bundle_hash: str,
    error: BadBundle,
) -> str:
    """Keep the bad bundle, alert, write its reason.json, mark its extract quarantined; where it is kept.

    In that order: a crash before reason.json repeats the alert on the retry rather than losing it.
    """
    bucket = settings.bucket("quarantine")
    prefix = bundle.quarantine_prefix()
    kept_key = prefix + bundle.file_name
    kept = f"s3://{bucket}/{kept_key}"
    # The bytes that were hashed, not a copy of the landing key, which may have been replaced since.
    s3.upload_file(str(zip_path), bucket, kept_key, ExtraArgs={"ContentType": "application/zip"})
    log_event(
        logger,
        "bundle_quarantined",
        error.message,
        level=logging.WARNING,
        extract_id=bundle.extract_id,
        reason=str(error.reason),
        bundle=bundle.uri,
        quarantine=kept,
    )
    raise_alert(
        settings,
        stage=STAGE,
        event="bundle_quarantined",
        message=f"bundle {bundle.uri} quarantined ({error.reason}): {error.message}",
        extract_id=bundle.extract_id,
        details={"reason": str(error.reason), "bundle": bundle.uri, "quarantine": kept},
    )
    write_reason(
        s3,
        settings,
        prefix,
        stage=STAGE,
        extract_id=bundle.extract_id,
        source=bundle.source,
        reason=str(error.reason),
        message=error.message,
        origin=bundle.uri,
        files=[bundle.file_name],
        file=error.file,
        bundle_hash=bundle_hash,
    )
    # Last: once the extract reads "quarantined", its reason.json is there to read.
    if bundle.extract_id:
        progress.record(bundle.extract_id, STAGE, QUARANTINED, error=error.as_error(), quarantine=kept)
    return kept


def record_quarantined(
    settings: Settings, progress: ExtractProgress, bundle: LandedBundle, reason: dict[str, Any]
) -> None:
    """Mark the extract quarantined again from its reason.json (a replay after a crash before the mark)."""
    if bundle.extract_id:
        kept = f"s3://{settings.bucket('quarantine')}/{bundle.quarantine_prefix()}{bundle.file_name}"
        error = {"code": reason.get("reason"), "message": reason.get("message")}
        progress.record(bundle.extract_id, STAGE, QUARANTINED, error=error, quarantine=kept)

"""Quarantine: a bad bundle is kept with a ``reason.json`` beside it, its extract marked, one alert raised.

Layout in the quarantine bucket: ``unzip/{landing key without .zip}/{file name}.zip`` and ``.../reason.json``.
reason.json is written last and carries the bundle's hash: a replayed event for the same bundle finds it
and does nothing, so each bad bundle is alerted once (a crash before reason.json repeats the alert
rather than losing it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from services.unzipper import STAGE
from services.unzipper.exceptions import BadBundle
from services.unzipper.locations import LandedBundle
from shared.alerts import raise_alert
from shared.logs import log_event
from shared.progress import QUARANTINED, ExtractProgress, now
from shared.settings import Settings

logger = logging.getLogger(__name__)

REASON_NAME = "reason.json"


def reason_key(bundle: LandedBundle) -> str:
    return bundle.quarantine_prefix() + REASON_NAME


def quarantined_reason(s3: Any, settings: Settings, bundle: LandedBundle) -> dict[str, Any] | None:
    """The reason.json of this landing key's quarantine, if it has one."""
    try:
        body = s3.get_object(Bucket=settings.bucket("quarantine"), Key=reason_key(bundle))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    try:
        found = json.loads(body)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def already_quarantined(s3: Any, settings: Settings, bundle: LandedBundle, bundle_hash: str) -> bool:
    """Whether exactly this bundle (same hash) has been quarantined already."""
    reason = quarantined_reason(s3, settings, bundle)
    return reason is not None and reason.get("bundle_hash") == bundle_hash


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
    """Keep the bad bundle with its reason, mark its extract quarantined, alert; returns where it is kept."""
    bucket = settings.bucket("quarantine")
    kept_key = bundle.quarantine_prefix() + bundle.file_name
    kept = f"s3://{bucket}/{kept_key}"
    s3.upload_file(str(zip_path), bucket, kept_key, ExtraArgs={"ContentType": "application/zip"})
    reason = {
        "stage": STAGE,
        "extract_id": bundle.extract_id,
        "source": bundle.source,
        "reason": str(error.reason),
        "message": error.message,
        "file": error.file,
        "bundle": bundle.uri,
        "bundle_hash": bundle_hash,
        "quarantined": kept,
        "at": now(),
    }
    if bundle.extract_id:
        progress.record(bundle.extract_id, STAGE, QUARANTINED, error=error.as_error(), quarantine=kept)
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
    s3.put_object(
        Bucket=bucket,
        Key=reason_key(bundle),
        Body=json.dumps(reason, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    return kept

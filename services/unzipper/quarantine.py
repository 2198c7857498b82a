"""Quarantine: a bad bundle is kept with a ``reason.json`` beside it, its extract marked, one alert raised.

Layout in the quarantine bucket: ``unzip/{landing key without .zip}/{file name}.zip`` and ``.../reason.json``.
The steps and their order are ``shared.quarantine``'s; reason.json carries the bundle's ETag and hash, so a
replayed event for the same bundle finds it and changes nothing, while a new (still bad) upload under the
same key is judged again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from services.unzipper import STAGE
from services.unzipper.exceptions import BadBundle
from services.unzipper.locations import LandedBundle
from shared import quarantine as shared_quarantine
from shared.aws import UPLOADS
from shared.logs import log_event
from shared.progress import ExtractProgress
from shared.quarantine import Refusal
from shared.settings import Settings

logger = logging.getLogger(__name__)


def refusal(bundle: LandedBundle) -> Refusal:
    return Refusal(
        stage=STAGE,
        folder=bundle.quarantine_prefix(),
        origin=bundle.uri,
        extract_id=bundle.extract_id,
        source=bundle.source,
    )


def already_quarantined(
    s3: Any,
    settings: Settings,
    progress: ExtractProgress,
    bundle: LandedBundle,
    same: Callable[[dict[str, Any] | None], bool],
) -> dict[str, Any] | None:
    """The reason.json of exactly this bundle (``same`` tells), if it has been quarantined already."""
    return shared_quarantine.already_quarantined(s3, settings, refusal(bundle), progress=progress, same=same)


def quarantine(
    s3: Any,
    settings: Settings,
    progress: ExtractProgress,
    bundle: LandedBundle,
    *,
    etag: str,
    bundle_hash: str,
    error: BadBundle,
) -> str:
    """Keep the bad bundle, explain, alert, mark its extract quarantined; the quarantine folder's URI."""

    def keep(bucket: str, folder: str) -> list[str]:
        # Copied inside S3, and only the version that was judged: a replaced landing key fails the copy
        # (a retry judges the new upload).
        s3.copy(
            {"Bucket": bundle.bucket, "Key": bundle.key},
            bucket,
            folder + bundle.file_name,
            ExtraArgs={
                "CopySourceIfMatch": etag,
                "ContentType": "application/zip",
                "MetadataDirective": "REPLACE",
            },
            Config=UPLOADS,
        )
        return [bundle.file_name]

    where = shared_quarantine.quarantine(
        s3,
        settings,
        refusal(bundle),
        error,
        keep,
        progress=progress,
        file=error.file,
        bundle_hash=bundle_hash,
        bundle_etag=etag,
    )
    log_event(
        logger,
        "bundle_quarantined",
        error.message,
        level=logging.WARNING,
        extract_id=bundle.extract_id,
        error_code=error.code,
        bundle=bundle.uri,
        quarantine=where,
    )
    return where

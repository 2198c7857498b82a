"""Keep a bundle the loader refused: ``s3://{prefix}-quarantine/load/{source}/{extract_id}/…`` + reason.json.

The archive keeps its copy too. The steps and their order are ``shared.quarantine``'s; a replayed event for
the same bundle and the same reason finds reason.json and changes nothing.
"""

from __future__ import annotations

from typing import Any

from services.loader.bundle import locate
from services.loader.exceptions import BadBundle, UnexpectedKey
from shared import quarantine
from shared.aws import client
from shared.events import ObjectCreated
from shared.progress import ExtractProgress
from shared.quarantine import Refusal
from shared.settings import Settings

QUARANTINE_FOLDER = "load"
STAGE = "loader"


def refusal(created: ObjectCreated) -> Refusal:
    """The manifest's folder in the archive, kept under ``load/`` (``load/{source}/{extract_id}/``)."""
    try:
        location = locate(created)
        extract_id, source = location.extract_id, location.source
    except UnexpectedKey:
        extract_id = source = None
    return quarantine.manifest_folder(
        STAGE, QUARANTINE_FOLDER, created.bucket, created.key, extract_id=extract_id, source=source
    )


def already_quarantined(
    settings: Settings, progress: ExtractProgress, created: ObjectCreated, error: BadBundle
) -> bool:
    """Whether an earlier delivery quarantined this bundle for the same reason (then marked again)."""

    def same(reason: dict[str, Any]) -> bool:
        return reason.get("reason") == error.code and reason.get("message") == error.described

    s3 = client("s3", settings)
    found = quarantine.already_quarantined(s3, settings, refusal(created), progress=progress, same=same)
    return found is not None


def quarantine_bundle(
    settings: Settings, progress: ExtractProgress, created: ObjectCreated, error: BadBundle
) -> str:
    """Copy the manifest's folder to the quarantine, explain, alert, mark; the quarantine folder's URI."""
    s3 = client("s3", settings)
    keep = quarantine.keep_manifest_folder(s3, settings, created.bucket, created.key)
    return quarantine.quarantine(s3, settings, refusal(created), error, keep, progress=progress)

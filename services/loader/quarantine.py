"""Keep a bundle the loader refused: ``s3://{prefix}-quarantine/load/{source}/{extract_id}/…`` + reason.json.

The archive keeps its copy too. ``reason.json`` is written last (after the alert), so its presence means
the refusal was handled completely, and a replayed event for the same bundle and reason changes nothing.
"""

from __future__ import annotations

import posixpath
from typing import Any

from services.loader.exceptions import BadBundle
from shared import quarantine
from shared.aws import client
from shared.events import ObjectCreated
from shared.settings import Settings

QUARANTINE_FOLDER = "load"
STAGE = "loader"


def quarantine_prefix(created: ObjectCreated) -> str:
    """``load/{source}/{extract_id}/``: the manifest's folder in the archive, under the loader's folder."""
    folder = posixpath.dirname(created.key)
    return f"{QUARANTINE_FOLDER}/{folder}/" if folder else f"{QUARANTINE_FOLDER}/"


def quarantine_uri(settings: Settings, created: ObjectCreated, name: str = "") -> str:
    return f"s3://{settings.bucket('quarantine')}/{quarantine_prefix(created)}{name}"


def refusal(error: BadBundle, created: ObjectCreated, *, extract_id: str | None, source: str | None) -> dict:
    """What reason.json says about the refusal: which stage refused which bundle, and why."""
    return {
        "stage": STAGE,
        "extract_id": extract_id,
        "source": source,
        "reason": error.code,
        "message": str(error),
        "origin": created.uri,
    }


def already_quarantined(settings: Settings, created: ObjectCreated, why: dict[str, Any]) -> bool:
    """Whether an earlier delivery quarantined this bundle for the same reason."""
    kept = quarantine.read_reason(client("s3", settings), settings, quarantine_prefix(created))
    return kept is not None and all(kept.get(name) == value for name, value in why.items())


def copy_bundle(settings: Settings, created: ObjectCreated) -> list[str]:
    """Copy every object in the manifest's folder to the quarantine; their paths relative to it."""
    s3 = client("s3", settings)
    folder = posixpath.dirname(created.key)
    prefix = quarantine_prefix(created)
    if not folder:
        return quarantine.copy_into_quarantine(s3, settings, created.bucket, "", prefix, keys=[created.key])
    return quarantine.copy_into_quarantine(s3, settings, created.bucket, f"{folder}/", prefix)


def write_reason(settings: Settings, created: ObjectCreated, why: dict[str, Any], files: list[str]) -> str:
    """Write reason.json beside the quarantined files; its URI."""
    return quarantine.write_reason(
        client("s3", settings), settings, quarantine_prefix(created), files=files, **why
    )

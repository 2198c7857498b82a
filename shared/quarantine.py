"""Quarantine: what a stage refused, kept for a person beside a ``reason.json`` that says why.

Each stage keeps its own folder in ``s3://{prefix}-quarantine/`` (``unzip/…``, ``transform/…``,
``load/…``), and every ``reason.json`` has the same core shape (``REASON_KEYS``):

- ``stage``, ``extract_id``, ``source``: which stage refused which extract (None where the key names none);
- ``reason``, ``message``: the reason code, and what was wrong in words;
- ``origin``: the ``s3://`` URI of what was refused (a bundle zip, a processed folder, an archive manifest);
- ``files``: the names kept beside ``reason.json``, relative to its folder;
- ``quarantined_at``: when, ISO 8601 in UTC;

then whatever a stage adds (the unzipper's ``file`` and ``bundle_hash``). ``reason.json`` is written
after the files it describes, so its presence means the quarantine is complete; stages read it back to
tell a replayed event from a new refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from shared.aws import read_json_object
from shared.progress import now
from shared.settings import Settings

REASON_NAME = "reason.json"
REASON_KEYS = (
    "stage",
    "extract_id",
    "source",
    "reason",
    "message",
    "origin",
    "files",
    "quarantined_at",
)
"""The keys every ``reason.json`` has, in the order it has them."""


def _folder(prefix: str) -> str:
    return prefix if prefix.endswith("/") else f"{prefix}/"


def reason_key(prefix: str) -> str:
    """The key of the ``reason.json`` in the quarantine folder ``prefix``."""
    return f"{_folder(prefix)}{REASON_NAME}"


def read_reason(s3: Any, settings: Settings, prefix: str) -> dict[str, Any] | None:
    """The ``reason.json`` in the quarantine folder ``prefix``; None if there is none.

    One that is not a JSON object counts as none, so quarantining again replaces it. Any other S3 failure
    raises.
    """
    return read_json_object(s3, settings.bucket("quarantine"), reason_key(prefix))


def copy_into_quarantine(
    s3: Any,
    settings: Settings,
    bucket: str,
    source_prefix: str,
    prefix: str,
    *,
    keys: Iterable[str] | None = None,
) -> list[str]:
    """Copy every object under ``source_prefix`` in ``bucket`` (or only ``keys``, which lie under it) into
    the quarantine folder ``prefix``, keeping their names relative to ``source_prefix``; those names.
    """
    if keys is None:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=source_prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    quarantine = settings.bucket("quarantine")
    folder = _folder(prefix)
    names = []
    for key in keys:
        name = key.removeprefix(source_prefix)
        s3.copy({"Bucket": bucket, "Key": key}, quarantine, f"{folder}{name}")
        names.append(name)
    return names


def write_reason(
    s3: Any,
    settings: Settings,
    prefix: str,
    *,
    stage: str,
    extract_id: str | None,
    source: str | None,
    reason: str,
    message: str,
    origin: str,
    files: list[str],
    **extras: Any,
) -> str:
    """Write ``reason.json`` in the quarantine folder ``prefix``, once the files it names are kept; its URI.

    ``extras`` follow the core keys, which they may not replace.
    """
    clashing = sorted(set(extras) & set(REASON_KEYS))
    if clashing:
        raise ValueError(f"reason.json extras may not replace its core keys: {clashing}")
    document = {
        "stage": stage,
        "extract_id": extract_id,
        "source": source,
        "reason": reason,
        "message": message,
        "origin": origin,
        "files": files,
        "quarantined_at": now(),
        **extras,
    }
    bucket = settings.bucket("quarantine")
    key = reason_key(prefix)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    return f"s3://{bucket}/{key}"

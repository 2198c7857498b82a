"""Keep a bundle the loader refused: ``s3://{prefix}-quarantine/load/{source}/{extract_id}/…`` + reason.json.

The archive keeps its copy too. ``reason.json`` is written last (after the alert), so its presence means
the refusal was handled completely, and a replayed event for the same bundle and reason changes nothing.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from botocore.exceptions import ClientError

from services.loader.exceptions import BadBundle
from shared.aws import client
from shared.events import ObjectCreated
from shared.progress import now
from shared.settings import Settings

QUARANTINE_FOLDER = "load"
REASON_NAME = "reason.json"


def quarantine_prefix(created: ObjectCreated) -> str:
    """``load/{source}/{extract_id}/``: the manifest's folder in the archive, under the loader's folder."""
    folder = posixpath.dirname(created.key)
    return f"{QUARANTINE_FOLDER}/{folder}/" if folder else f"{QUARANTINE_FOLDER}/"


def quarantine_uri(settings: Settings, created: ObjectCreated, name: str = "") -> str:
    return f"s3://{settings.bucket('quarantine')}/{quarantine_prefix(created)}{name}"


def reason(error: BadBundle, created: ObjectCreated, *, extract_id: str | None, source: str | None) -> dict:
    """What reason.json says: which stage refused which bundle, and why."""
    return {
        "stage": "loader",
        "extract_id": extract_id,
        "source": source,
        "manifest": created.uri,
        **error.as_error(),
    }


def already_quarantined(settings: Settings, created: ObjectCreated, why: dict[str, Any]) -> bool:
    """Whether an earlier delivery quarantined this bundle for the same reason."""
    key = f"{quarantine_prefix(created)}{REASON_NAME}"
    try:
        body = client("s3", settings).get_object(Bucket=settings.bucket("quarantine"), Key=key)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    kept = json.loads(body.read())
    return all(kept.get(name) == value for name, value in why.items())


def copy_bundle(settings: Settings, created: ObjectCreated) -> list[str]:
    """Copy every object in the manifest's folder to the quarantine; their paths relative to it."""
    s3 = client("s3", settings)
    folder = posixpath.dirname(created.key)
    prefix = quarantine_prefix(created)
    keys = [created.key]
    if folder:
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=created.bucket, Prefix=f"{folder}/"):
            keys.extend(item["Key"] for item in page.get("Contents", []))
    copied = []
    for key in keys:
        relative = posixpath.relpath(key, folder) if folder else key
        s3.copy_object(
            CopySource={"Bucket": created.bucket, "Key": key},
            Bucket=settings.bucket("quarantine"),
            Key=f"{prefix}{relative}",
        )
        copied.append(relative)
    return copied


def write_reason(settings: Settings, created: ObjectCreated, why: dict[str, Any], files: list[str]) -> str:
    """Write reason.json beside the quarantined files; its URI."""
    key = f"{quarantine_prefix(created)}{REASON_NAME}"
    body = json.dumps({**why, "files": files, "quarantined_at": now()}, indent=2)
    client("s3", settings).put_object(
        Bucket=settings.bucket("quarantine"), Key=key, Body=body.encode(), ContentType="application/json"
    )
    return f"s3://{settings.bucket('quarantine')}/{key}"

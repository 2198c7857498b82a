"""Quarantine: keep a processed extract that can never be transformed, with the reason, for a person.

``s3://{prefix}-quarantine/transform/{source}/{extract_id}/`` receives a copy of every file of the
processed extract, then ``reason.json`` (written last, so its presence means the quarantine is complete).
"""

from __future__ import annotations

import json
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from services.transformer.exceptions import BadInput, StorageUnavailable
from services.transformer.processed import ProcessedExtract
from shared.progress import now

FOLDER = "transform"
REASON_NAME = "reason.json"
STAGE = "transformer"


def quarantine_prefix(extract: ProcessedExtract) -> str:
    return f"{FOLDER}/{extract.source}/{extract.extract_id}"


def reason_key(extract: ProcessedExtract) -> str:
    return f"{quarantine_prefix(extract)}/{REASON_NAME}"


def quarantine(s3: Any, extract: ProcessedExtract, error: BadInput, quarantine_bucket: str) -> str:
    """Copy what the processed extract holds into quarantine, then write ``reason.json``; its URI."""
    destination = quarantine_prefix(extract)
    try:
        files = []
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=extract.bucket, Prefix=f"{extract.prefix}/"
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"].removeprefix(f"{extract.prefix}/")
                s3.copy(
                    {"Bucket": extract.bucket, "Key": item["Key"]}, quarantine_bucket, f"{destination}/{name}"
                )
                files.append(name)
        reason = {
            "stage": STAGE,
            "extract_id": extract.extract_id,
            "source": extract.source,
            "reason": error.code,
            "message": error.message,
            "files": files,
            "processed": extract.uri,
            "at": now(),
        }
        s3.put_object(
            Bucket=quarantine_bucket,
            Key=reason_key(extract),
            Body=json.dumps(reason, indent=2).encode(),
            ContentType="application/json",
        )
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise StorageUnavailable(f"could not quarantine {extract.uri}: {exc}") from exc
    return f"s3://{quarantine_bucket}/{destination}/"

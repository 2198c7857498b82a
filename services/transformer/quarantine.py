"""Quarantine: keep a processed extract that can never be transformed, with the reason, for a person.

``s3://{prefix}-quarantine/transform/{source}/{extract_id}/`` receives a copy of every file of the
processed extract, then ``reason.json`` (written after them, so its presence means the quarantine is
complete).
"""

from __future__ import annotations

from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from services.transformer.exceptions import BadInput, StorageUnavailable
from services.transformer.processed import ProcessedExtract
from shared.quarantine import copy_into_quarantine, write_reason
from shared.settings import Settings

FOLDER = "transform"
STAGE = "transformer"


def quarantine_prefix(extract: ProcessedExtract) -> str:
    """``transform/{source}/{extract_id}/`` in the quarantine bucket."""
    return f"{FOLDER}/{extract.source}/{extract.extract_id}/"


def keep_files(s3: Any, settings: Settings, extract: ProcessedExtract) -> list[str]:
    """Copy what the processed extract holds into its quarantine folder; the names kept."""
    try:
        return copy_into_quarantine(
            s3, settings, extract.bucket, f"{extract.prefix}/", quarantine_prefix(extract)
        )
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise StorageUnavailable(f"could not quarantine {extract.uri}: {exc}") from exc


def explain(s3: Any, settings: Settings, extract: ProcessedExtract, error: BadInput, files: list[str]) -> str:
    """Write ``reason.json`` beside the kept files; the quarantine folder's URI."""
    destination = quarantine_prefix(extract)
    try:
        write_reason(
            s3,
            settings,
            destination,
            stage=STAGE,
            extract_id=extract.extract_id,
            source=extract.source,
            reason=error.code,
            message=error.message,
            origin=extract.uri,
            files=files,
        )
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise StorageUnavailable(f"could not quarantine {extract.uri}: {exc}") from exc
    return quarantine_uri(settings, extract)


def quarantine_uri(settings: Settings, extract: ProcessedExtract) -> str:
    return f"s3://{settings.bucket('quarantine')}/{quarantine_prefix(extract)}"

"""The processed extract that triggers a transform: where it is, what its manifest vouches for, and
whether it can be transformed at all (checked cheaply, before any Spark or Glue time is spent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.transformer.exceptions import InputMissing, ManifestUnreadable, StorageUnavailable
from services.transformer.movies_csv import header_columns
from services.transformer.runner import TransformJob
from shared.aws import is_missing
from shared.locations import ExtractLocation, manifest_location
from shared.manifest import Manifest, ManifestInvalid, Resource, parse_manifest

HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProcessedExtract:
    """``s3://{processed bucket}/{source}/{extract_id}/``: movies.csv, movies.parquet, manifest.json."""

    bucket: str
    source: str
    extract_id: str

    @classmethod
    def from_manifest_key(cls, bucket: str, key: str) -> ProcessedExtract | None:
        """The extract a ``{source}/{extract_id}/manifest.json`` key belongs to; None for any other key."""
        found = manifest_location(key)
        if found is None:
            return None
        return cls(bucket=bucket, source=found.source, extract_id=found.extract_id)

    @property
    def location(self) -> ExtractLocation:
        return ExtractLocation(self.source, self.extract_id)

    @property
    def prefix(self) -> str:
        return self.location.prefix

    @property
    def manifest_key(self) -> str:
        return self.location.manifest_key

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/"


def read_manifest(s3: Any, extract: ProcessedExtract) -> Manifest:
    """The processed manifest, checked to belong to its location and to say how many rows were extracted."""
    where = f"s3://{extract.bucket}/{extract.manifest_key}"
    try:
        body = s3.get_object(Bucket=extract.bucket, Key=extract.manifest_key)["Body"].read()
    except ClientError as exc:
        if is_missing(exc):
            raise ManifestUnreadable(f"{where} does not exist") from exc
        raise StorageUnavailable(f"could not read {where}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"could not read {where}: {exc}") from exc
    try:
        manifest = parse_manifest(body)
    except ManifestInvalid as exc:
        raise ManifestUnreadable(f"{where} is not a valid manifest: {exc}") from exc
    if (manifest.source, manifest.extract_id) != (extract.source, extract.extract_id):
        raise ManifestUnreadable(
            f"{where} describes extract {manifest.source}/{manifest.extract_id}, not the one at its location"
        )
    if "extracted" not in manifest.row_counts:
        raise ManifestUnreadable(f"{where} has no row_counts.extracted")
    return manifest


def movies_resource(manifest: Manifest) -> Resource:
    """The CSV file the manifest vouches for (``movies.csv``)."""
    for resource in manifest.resources:
        if resource.format == "csv":
            if resource.path.startswith("/") or ".." in resource.path.split("/"):
                raise ManifestUnreadable(
                    f"manifest resource {resource.name} has an unsafe path {resource.path}"
                )
            return resource
    raise ManifestUnreadable("the manifest lists no CSV resource (movies.csv)")


def check_movies_csv(s3: Any, bucket: str, key: str) -> None:
    """``movies.csv`` exists and its header has every column of the movie record."""
    where = f"s3://{bucket}/{key}"
    try:
        head = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"].read()
    except ClientError as exc:
        if is_missing(exc):
            raise InputMissing(f"{where} does not exist, though the manifest vouches for it") from exc
        if _code(exc) == "InvalidRange":  # an empty object
            head = b""
        else:
            raise StorageUnavailable(f"could not read {where}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"could not read {where}: {exc}") from exc
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
    header_columns(first_line)


def prepare_job(s3: Any, extract: ProcessedExtract, manifest: Manifest, archive_bucket: str) -> TransformJob:
    """The transform of this extract, once its input has passed the cheap checks."""
    movies = movies_resource(manifest)
    key = f"{extract.prefix}/{movies.path}"
    check_movies_csv(s3, extract.bucket, key)
    return TransformJob(
        extract_id=extract.extract_id,
        source=extract.source,
        extracted_at=manifest.extracted_at,
        extracted=manifest.row_counts["extracted"],
        input_bucket=extract.bucket,
        input_key=key,
        input_hash=movies.hash or None,
        input_bytes=movies.bytes,
        archive_bucket=archive_bucket,
        extract_kind=manifest.extract_kind,
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

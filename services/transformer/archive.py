"""The archive of one extract: the transform's CSV parts, then the manifest that commits them.

Layout under ``s3://{prefix}-archive/{source}/{extract_id}/``::

    movies/part-00000.csv     clean rows, columns of shared.schema.CLEAN_MOVIE_FIELDS
    rejects/part-00000.csv    refused rows, columns of shared.schema.REJECT_FIELDS (header only if none)
    manifest.json             written last; the loader is triggered by it and trusts only what it lists

Both ways of running the job end here: the local runner and a Glue run hand a directory of Spark's
output to ``publish_archive``, which names the parts, describes them and writes the manifest last.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.csv as pa_csv
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from services.transformer.exceptions import ArchiveIncomplete, StorageUnavailable
from shared.aws import DOWNLOADS, UPLOADS
from shared.logs import log_event
from shared.manifest import MANIFEST_NAME, Manifest, Resource, describe_file, file_digest, new_manifest
from shared.schema import CLEAN_MOVIE_FIELDS, REJECT_FIELDS, field_names
from shared.schema import Field as SchemaField

logger = logging.getLogger(__name__)

STAGE = "transform"
ROLES: dict[str, tuple[SchemaField, ...]] = {"movies": CLEAN_MOVIE_FIELDS, "rejects": REJECT_FIELDS}
"""Each kind of archive file, with the fields of its rows; also the folder it lives in."""
COUNTED_AS = {"movies": "clean", "rejects": "rejected"}


def archive_prefix(source: str, extract_id: str) -> str:
    """The extract's folder in the archive bucket (no trailing slash)."""
    return f"{source}/{extract_id}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → ``("bucket", "some/key")``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@dataclass(frozen=True)
class ArchivePart:
    """One CSV part file of the archive, on local disk, with its rows and its nulls per column."""

    role: str
    path: Path
    rows: int
    nulls: dict[str, int]
    digest: tuple[str, int] | None = None
    """Its hash and size, where taken already (else the manifest reads the file for them)."""


def collect_parts(directory: Path) -> list[ArchivePart]:
    """Spark's output under ``directory/{role}/``, renamed ``part-00000.csv`` … and counted row by row."""
    return [ArchivePart(role, path, *_csv_rows(path)) for role, path in name_parts(directory)]


def name_parts(directory: Path) -> list[tuple[str, Path]]:
    """Spark's output under ``directory/{role}/``, renamed ``part-00000.csv`` …, each with its role."""
    named = []
    for role in ROLES:
        written = sorted((directory / role).glob("part-*.csv"))
        if not written:
            raise ArchiveIncomplete(f"the job wrote no {role} part under {directory / role}")
        for number, path in enumerate(written):
            name = path.with_name(f"part-{number:05d}.csv")
            if name != path:
                path.rename(name)
            named.append((role, name))
    return named


def archive_manifest(
    directory: Path,
    parts: list[ArchivePart],
    *,
    extract_id: str,
    source: str,
    extracted_at: str,
    row_counts: dict[str, int],
    extract_kind: str = "full",
) -> Manifest:
    """The archive manifest: one resource per part (with its ``role``), the extract's identity, its counts
    and the nulls per column of its clean rows (``null_counts``)."""
    resources: list[Resource] = []
    for role, fields in ROLES.items():
        of_role = [part for part in parts if part.role == role]
        for number, part in enumerate(of_role):
            name = role if len(of_role) == 1 else f"{role}-{number:05d}"
            described = describe_file(
                part.path,
                name=name,
                rows=part.rows,
                fields=fields,
                relative_to=directory,
                digest=part.digest,
            )
            resources.append(described.model_copy(update={"role": role}))
    return new_manifest(
        extract_id=extract_id,
        source=source,
        stage=STAGE,
        row_counts=row_counts,
        resources=resources,
        extracted_at=extracted_at,
        extract_kind=extract_kind,
        null_counts=null_counts(parts),
    )


class ArchiveTarget(Protocol):
    """Where an extract's archive goes: part files first, then the manifest that commits them."""

    uri: str

    def upload(self, path: Path, relative: str) -> None: ...

    def remove(self, relative: str) -> None:
        """Take back a part uploaded for a manifest that will not be written."""
        ...

    def commit(self, manifest: Manifest) -> bool:
        """Write the manifest unless one is there already; True if this call wrote it."""
        ...


class S3Target:
    """The extract's folder in the archive bucket."""

    def __init__(self, s3: Any, bucket: str, prefix: str):
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}"

    def upload(self, path: Path, relative: str) -> None:
        key = f"{self.prefix}/{relative}"
        try:
            self.s3.upload_file(
                str(path), self.bucket, key, ExtraArgs={"ContentType": "text/csv"}, Config=UPLOADS
            )
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            raise StorageUnavailable(f"could not upload s3://{self.bucket}/{key}: {exc}") from exc

    def remove(self, relative: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{relative}")

    def commit(self, manifest: Manifest) -> bool:
        key = f"{self.prefix}/{MANIFEST_NAME}"
        try:
            # If-None-Match: a concurrent run of the same extract cannot replace a committed manifest.
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=manifest.to_json().encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise StorageUnavailable(f"could not write s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"could not write s3://{self.bucket}/{key}: {exc}") from exc
        return True


class DirectoryTarget:
    """A local folder, for a plain pyspark run of the job."""

    def __init__(self, root: Path):
        self.root = root
        self.uri = root.as_uri()

    def upload(self, path: Path, relative: str) -> None:
        destination = self.root / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink(missing_ok=True)

    def commit(self, manifest: Manifest) -> bool:
        destination = self.root / MANIFEST_NAME
        if destination.exists():
            return False
        pending = destination.with_suffix(".json.tmp")
        pending.write_text(manifest.to_json())
        pending.replace(destination)
        return True


def publish_archive(
    directory: Path,
    target: ArchiveTarget,
    *,
    extract_id: str,
    source: str,
    extracted_at: str,
    row_counts: dict[str, int],
    extract_kind: str = "full",
) -> Manifest:
    """Name and check the parts Spark wrote under ``directory``, upload them, then commit the manifest.

    The parts must hold exactly the rows the transform counted; a manifest never vouches for less. They
    go up while they are counted (a 5,000,000-row archive: 9 s of counting, 8 s of upload to moto);
    parts that then fail the count are taken back, and no manifest is written.
    """
    named = name_parts(directory)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-upload") as uploads:
        uploading = uploads.submit(_upload_parts, target, directory, [path for _, path in named])
        try:
            # Counted and hashed while they go up: the manifest needs both, and the upload takes longer.
            parts = [ArchivePart(role, path, *_csv_rows(path), file_digest(path)) for role, path in named]
            for role, counted_as in COUNTED_AS.items():
                written = sum(part.rows for part in parts if part.role == role)
                counted = row_counts[counted_as]
                if written != counted:
                    raise ArchiveIncomplete(
                        f"{role} parts hold {written} rows; the transform counted {counted}"
                    )
        except ArchiveIncomplete:
            with contextlib.suppress(Exception):
                uploading.result()
            for _, path in named:
                with contextlib.suppress(Exception):
                    target.remove(str(path.relative_to(directory)))
            raise
        uploading.result()
    identity = {"extract_id": extract_id, "source": source, "extracted_at": extracted_at}
    manifest = archive_manifest(
        directory,
        parts,
        **identity,
        row_counts=row_counts,
        extract_kind=extract_kind,
    )
    if not target.commit(manifest):
        log_event(logger, "archive_already_committed", extract_id=extract_id, archive=target.uri)
    return manifest


def _upload_parts(target: ArchiveTarget, directory: Path, paths: list[Path]) -> None:
    for path in paths:
        target.upload(path, str(path.relative_to(directory)))


def download_prefix(s3: Any, bucket: str, prefix: str, directory: Path) -> None:
    """Copy every object under ``prefix`` to ``directory``, keeping the key's path below the prefix."""
    prefix = prefix.rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            local = directory / item["Key"].removeprefix(prefix)
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(local), Config=DOWNLOADS)


def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    prefix = prefix.rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _csv_rows(path: Path) -> tuple[int, dict[str, int]]:
    """Rows of a part (header aside) and, per column, how many are empty: null, as the loader reads it.

    Read by Arrow as text, an empty field (quoted or not) counting as a null, as the local warehouse
    loads it; a value may span lines. A part whose rows do not all have the header's columns is not
    one the transform wrote: ``ArchiveIncomplete``.
    """
    with path.open("rb") as handle:
        first = handle.readline()
    if not first.strip():
        return 0, {}
    columns = next(csv.reader([first.decode("utf-8")]))
    size = path.stat().st_size
    for block_bytes in (*BLOCK_BYTES, size + 1):
        try:
            return _count_streaming(path, columns, block_bytes)
        except pa.ArrowInvalid as exc:
            # A value longer than a block (a 10 MB title) straddles two: larger blocks, the rare time it is.
            if "straddl" not in str(exc) or block_bytes > size:
                raise ArchiveIncomplete(f"{path.name} is not a whole CSV part: {exc}") from exc
    raise AssertionError("unreachable: the last block holds the whole file")


BLOCK_BYTES = (1 << 20, 16 << 20, 256 << 20)
"""Bytes of a part read at a time to count its rows and nulls, the smallest first. Arrow holds some 40
blocks at once: 1 MiB blocks counted a 1.07 GB part in 6.3 s with a 189 MB peak, 64 MiB blocks took 10 s
and 1.4 GB (measured on the bench machine). Larger blocks only for a part with a longer value."""


def _count_streaming(path: Path, columns: list[str], block_bytes: int) -> tuple[int, dict[str, int]]:
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=block_bytes, use_threads=False),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    rows, nulls = 0, dict.fromkeys(reader.schema.names, 0)
    for batch in reader:
        rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            nulls[name] += column.null_count
    return rows, nulls


def null_counts(parts: list[ArchivePart], role: str = "movies") -> dict[str, int]:
    """Nulls per column over every part of a role (the clean rows by default)."""
    total = dict.fromkeys(field_names(ROLES[role]), 0)
    for part in parts:
        if part.role == role:
            for name, count in part.nulls.items():
                total[name] = total.get(name, 0) + count
    return total

"""The archived bundle: its manifest, and proof that every file it lists is there as described.

The transformer writes ``{source}/{extract_id}/movies/part-*.csv`` and ``rejects/part-*.csv`` to the archive
bucket, then ``manifest.json`` last; the loader trusts nothing the manifest does not vouch for (size and
sha256 hash of every file), and loads nothing of a bundle that fails the check.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from services.loader.exceptions import FileMismatch, MissingFile, UnexpectedKey, UnreadableManifest
from services.loader.statements import TARGETS
from shared.aws import client, is_missing
from shared.events import ObjectCreated
from shared.locations import manifest_location
from shared.manifest import (
    HASH_ALGORITHM,
    MANIFEST_NAME,
    Manifest,
    ManifestInvalid,
    Resource,
    StreamDigest,
    parse_manifest,
    read_chunks,
)
from shared.settings import Settings

MANIFEST_STAGE = "transform"
REQUIRED_COUNTS = ("extracted", "clean", "rejected", "duplicates")


@dataclass(frozen=True)
class ArchiveFile:
    """One data file of the bundle, as the manifest describes it."""

    role: str  # "movies" | "rejects"
    bucket: str
    key: str
    path: str  # relative to the bundle's folder, e.g. "movies/part-00000.csv"
    bytes: int
    hash: str
    rows: int
    columns: tuple[str, ...] = ()
    """The file's columns in order, upper case, as its manifest schema lists them; () when it lists none.
    An archive written before a column existed lists fewer: those load as null."""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ArchiveBundle:
    """A verified bundle: what the loader copies into the warehouse."""

    source: str
    extract_id: str
    manifest_uri: str
    row_counts: dict[str, int]
    files: tuple[ArchiveFile, ...]
    extract_kind: str = "full"
    extracted_at: str = ""
    """When the extract was taken, UTC, as the warehouse's ``TIMESTAMP_NTZ`` reads it."""

    @property
    def stage_prefix(self) -> str:
        """The bundle's folder, relative to the archive bucket (and so to the archive stage)."""
        return f"{self.source}/{self.extract_id}"


@dataclass(frozen=True)
class BundleLocation:
    """Source and extract named by a manifest's key, ``{source}/{extract_id}/manifest.json``."""

    source: str
    extract_id: str


def locate(created: ObjectCreated) -> BundleLocation:
    """Source and extract from the manifest's key; ``UnexpectedKey`` when the key is not laid out so."""
    found = manifest_location(created.key)
    if found is None:
        raise UnexpectedKey(
            f"expected {{source}}/{{extract_id}}/{MANIFEST_NAME} in the archive bucket", where=created.uri
        )
    return BundleLocation(source=found.source, extract_id=found.extract_id)


def read_bundle(settings: Settings, created: ObjectCreated) -> ArchiveBundle:
    """The bundle a new archive manifest announces, every listed file checked against the manifest."""
    location = locate(created)
    manifest = read_manifest(settings, created, location)
    folder = posixpath.dirname(created.key)
    files = tuple(_archive_file(created, folder, resource) for resource in manifest.resources)
    for file in files:
        verify_file(settings, file)
    return ArchiveBundle(
        source=location.source,
        extract_id=location.extract_id,
        manifest_uri=created.uri,
        row_counts={
            name: manifest.row_counts[name]
            for name in (*REQUIRED_COUNTS, "unzipped")
            if name in manifest.row_counts
        },
        files=files,
        extract_kind=manifest.extract_kind,
        extracted_at=warehouse_time(manifest.extracted_at, where=created.uri),
    )


def warehouse_time(moment: str, *, where: str) -> str:
    """An ISO 8601 time as UTC without a zone, to the microsecond (a time without a zone is taken as UTC)."""
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise UnreadableManifest(f"extracted_at {moment!r} is not an ISO 8601 time", where=where) from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.isoformat(sep=" ", timespec="microseconds")


def read_manifest(settings: Settings, created: ObjectCreated, location: BundleLocation) -> Manifest:
    try:
        body = client("s3", settings).get_object(Bucket=created.bucket, Key=created.key)["Body"].read()
    except ClientError as exc:
        if is_missing(exc):
            raise UnreadableManifest("the manifest is not in the archive", where=created.uri) from exc
        raise
    try:
        manifest = parse_manifest(body)
    except ManifestInvalid as exc:
        raise UnreadableManifest(f"not a valid manifest: {exc}", where=created.uri) from exc
    problems = []
    if manifest.stage != MANIFEST_STAGE:
        problems.append(f"stage is {manifest.stage!r}, not {MANIFEST_STAGE!r}")
    if (manifest.source, manifest.extract_id) != (location.source, location.extract_id):
        problems.append(
            f"it describes {manifest.source}/{manifest.extract_id}, "
            f"not {location.source}/{location.extract_id} as its key says"
        )
    if missing := [name for name in REQUIRED_COUNTS if name not in manifest.row_counts]:
        problems.append(f"row_counts lacks {', '.join(missing)}")
    if not manifest.resources:
        problems.append("it lists no files")
    if problems:
        raise UnreadableManifest("; ".join(problems), where=created.uri)
    return manifest


def _archive_file(created: ObjectCreated, folder: str, resource: Resource) -> ArchiveFile:
    role = (resource.model_extra or {}).get("role")
    path = posixpath.normpath(resource.path)
    where = f"{created.uri}: resource {resource.name!r}"
    if role not in TARGETS:
        raise UnreadableManifest(f"role is {role!r}, not one of {', '.join(TARGETS)}", where=where)
    if resource.format != "csv":
        raise UnreadableManifest(f"format is {resource.format!r}, not 'csv'", where=where)
    if path.startswith(("/", "..")) or path == MANIFEST_NAME:
        raise UnreadableManifest(f"path {resource.path!r} is not a file inside the bundle", where=where)
    if not resource.sha256:
        raise UnreadableManifest(f"hash {resource.hash!r} is not {HASH_ALGORITHM}:<hex>", where=where)
    fields = resource.schema_.get("fields") or []
    if not isinstance(fields, list) or not all(isinstance(field, dict) for field in fields):
        raise UnreadableManifest("its schema's fields are not a list of fields", where=where)
    columns = tuple(str(field.get("name", "")).upper() for field in fields)
    if unknown := [name for name in columns if name not in TARGETS[role].columns]:
        raise UnreadableManifest(
            f"its schema names {', '.join(map(repr, unknown))}, not columns of {TARGETS[role].table}",
            where=where,
        )
    return ArchiveFile(
        role=role,
        bucket=created.bucket,
        key=f"{folder}/{path}",
        path=path,
        bytes=resource.bytes,
        hash=resource.hash,
        rows=resource.rows,
        columns=columns,
    )


def verify_file(settings: Settings, file: ArchiveFile) -> None:
    """``MissingFile`` or ``FileMismatch`` unless the file is there with the manifest's size and hash."""
    try:
        body = client("s3", settings).get_object(Bucket=file.bucket, Key=file.key)["Body"]
    except ClientError as exc:
        if is_missing(exc):
            raise MissingFile("listed in the manifest but not in the archive", where=file.uri) from exc
        raise
    digest = StreamDigest(count_lines=True)
    for chunk in read_chunks(body):
        digest.update(chunk)
    size, lines, found = digest.bytes, digest.lines, digest.hash
    if size != file.bytes:
        raise FileMismatch(f"{size} bytes, the manifest says {file.bytes}", where=file.uri)
    if found != file.hash:
        raise FileMismatch(f"hash {found}, the manifest says {file.hash}", where=file.uri)
    if file.rows == 0 and lines > 1:
        # An empty file is not copied (see load.py), so "no rows" must be true of the file itself.
        raise FileMismatch(f"{lines} lines, the manifest says a header and no rows", where=file.uri)

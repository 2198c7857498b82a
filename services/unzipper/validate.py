"""Checks that a bundle is exactly what its manifest vouches for, each failure a ``BadBundle`` with a reason.

Each check is a small function over an open zip (any seekable binary file: an S3 object read in ranges, or
bytes in memory), run in order by ``validate_bundle``; the first failure wins. The data files are checked
while they stream, inflated, into their sinks (the processed bucket's uploads): nothing is held whole, in
memory or on disk.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any, Protocol

from services.unzipper.content import CONTENT_CHECKS
from services.unzipper.exceptions import (
    BundleTooLarge,
    CorruptZip,
    HashMismatch,
    InvalidManifest,
    ManifestMismatch,
    MissingFile,
    MissingManifest,
    SchemaMismatch,
    UnexpectedFile,
)
from services.unzipper.inflate import InflateLimits, InflateTally, check_declared, inflate
from shared.manifest import (
    HASH_ALGORITHM,
    MANIFEST_NAME,
    Manifest,
    ManifestInvalid,
    Resource,
    StreamDigest,
    parse_manifest,
)
from shared.schema import SCHEMA_VERSION

CSV_NAME = "movies.csv"
PARQUET_NAME = "movies.parquet"
DATA_FILES = {CSV_NAME: "csv", PARQUET_NAME: "parquet"}
"""The data files a bundle may hold, by path, with their format; movies.csv is required."""
EXTRACT_STAGE = "extract"
MAX_MANIFEST_BYTES = 4 << 20


class Sink(Protocol):
    """Where a data file's bytes go as they are inflated: nothing is kept until ``commit``."""

    def write(self, data: bytes) -> Any: ...

    def commit(self) -> Any: ...

    def abort(self) -> None: ...


@dataclass(frozen=True)
class ValidBundle:
    """A bundle that passed every check, each data file written (not yet committed) to its sink."""

    manifest: Manifest
    sinks: dict[str, Sink]

    def abort(self) -> None:
        for sink in self.sinks.values():
            sink.abort()


def open_zip(bundle: IO[bytes]) -> zipfile.ZipFile:
    """The bundle opened as a zip; ``CorruptZip`` when it is not one."""
    try:
        return zipfile.ZipFile(bundle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise CorruptZip(f"the bundle is not a readable zip: {exc}") from exc


def check_entries(archive: zipfile.ZipFile, *, limits: InflateLimits) -> None:
    """Plain top-level files only, each once, unencrypted, declaring no more than ``limits`` allow (which
    inflating then enforces, since declarations can lie)."""
    seen: set[str] = set()
    total = 0
    for info in archive.infolist():
        name = info.filename
        path = PurePosixPath(name.replace("\\", "/"))
        if info.is_dir() or path.is_absolute() or ".." in path.parts or len(path.parts) != 1 or ":" in name:
            raise UnexpectedFile(
                f"zip entry {name!r} is not a plain file at the top of the bundle", file=name
            )
        if name in seen:
            raise UnexpectedFile(f"zip entry {name!r} appears more than once", file=name)
        if info.flag_bits & 0x1:
            raise CorruptZip(f"zip entry {name!r} is encrypted", file=name)
        seen.add(name)
        check_declared(info, limits)
        total += info.file_size
    if total > limits.max_bytes:
        raise BundleTooLarge(
            f"the bundle unzips to {total} bytes, more than the limit of {limits.max_bytes} "
            "(MOVIEPIPE_MAX_UNZIPPED_BYTES)"
        )


def read_manifest(bundle: IO[bytes], archive: zipfile.ZipFile, limits: InflateLimits) -> Manifest:
    """The bundle's manifest.json, parsed; ``MissingManifest`` or ``InvalidManifest`` naming what is wrong."""
    try:
        info = archive.getinfo(MANIFEST_NAME)
    except KeyError:
        raise MissingManifest(f"the bundle has no {MANIFEST_NAME}", file=MANIFEST_NAME) from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise InvalidManifest(
            f"{MANIFEST_NAME} is {info.file_size} bytes, more than a manifest's {MAX_MANIFEST_BYTES}",
            file=MANIFEST_NAME,
        )
    text = b"".join(inflate(bundle, info, limits, InflateTally()))
    try:
        return parse_manifest(text)
    except ManifestInvalid as exc:
        raise InvalidManifest(f"{MANIFEST_NAME} is not a valid manifest: {exc}", file=MANIFEST_NAME) from exc


def check_manifest(manifest: Manifest, *, extract_id: str, source: str) -> None:
    """The manifest describes this extract (named by the landing key) in terms this pipeline reads."""
    if manifest.extract_id != extract_id or manifest.source != source:
        raise ManifestMismatch(
            f"{MANIFEST_NAME} describes extract {manifest.extract_id!r} of source {manifest.source!r}, "
            f"but the bundle landed as extract {extract_id!r} of source {source!r}",
            file=MANIFEST_NAME,
        )

    def invalid(problem: str) -> InvalidManifest:
        return InvalidManifest(f"{MANIFEST_NAME}: {problem}", file=MANIFEST_NAME)

    if manifest.profile != "tabular-data-package":
        raise invalid(f"profile is {manifest.profile!r}, expected 'tabular-data-package'")
    if manifest.stage != EXTRACT_STAGE:
        raise invalid(f"stage is {manifest.stage!r}, expected {EXTRACT_STAGE!r}")
    if manifest.schema_version != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"{MANIFEST_NAME}: schema_version is {manifest.schema_version!r}, "
            f"this pipeline reads {SCHEMA_VERSION!r}",
            file=MANIFEST_NAME,
        )
    extracted = manifest.row_counts.get("extracted")
    if extracted is None:
        raise invalid("row_counts.extracted is missing")
    paths = [resource.path for resource in manifest.resources]
    if CSV_NAME not in paths:
        raise invalid(f"resources do not include {CSV_NAME}")
    if len(set(paths)) != len(paths):
        raise invalid(f"resources list a path twice: {paths}")
    for resource in manifest.resources:
        where = f"resource {resource.name!r} ({resource.path})"
        if resource.path not in DATA_FILES:
            raise invalid(f"{where}: path must be one of {sorted(DATA_FILES)}")
        if resource.format != DATA_FILES[resource.path]:
            raise invalid(f"{where}: format is {resource.format!r}, expected {DATA_FILES[resource.path]!r}")
        if not resource.sha256:
            raise invalid(f"{where}: hash {resource.hash!r} is not '{HASH_ALGORITHM}:<hex digest>'")
        if resource.rows != extracted:
            raise invalid(f"{where}: rows is {resource.rows}, but row_counts.extracted is {extracted}")


def check_listed_files(archive: zipfile.ZipFile, manifest: Manifest) -> None:
    """Every file the manifest lists is in the zip, and nothing else is."""
    names = set(archive.namelist())
    listed = {resource.path for resource in manifest.resources}
    if missing := sorted(listed - names):
        raise MissingFile(missing[0])
    if unexpected := sorted(names - listed - {MANIFEST_NAME}):
        name = unexpected[0]
        raise UnexpectedFile(f"{name} is in the bundle but not listed in {MANIFEST_NAME}", file=name)


def stream_member(
    bundle: IO[bytes],
    info: zipfile.ZipInfo,
    resource: Resource,
    sink: Sink,
    limits: InflateLimits,
    tally: InflateTally,
) -> None:
    """Inflate one listed file into ``sink``, checking its size, sha256 and content against the manifest
    as it passes."""
    digest = StreamDigest()
    check = CONTENT_CHECKS[resource.format](resource)
    for chunk in inflate(bundle, info, limits, tally):
        digest.update(chunk)
        check.feed(chunk)
        sink.write(chunk)
    if digest.bytes != resource.bytes:
        raise HashMismatch(resource.path, "size in bytes", resource.bytes, digest.bytes)
    if digest.hash != resource.hash:
        raise HashMismatch(resource.path, HASH_ALGORITHM, resource.hash, digest.hash)
    # A count the fast way could not vouch for is made again, slowly, from the member read a second time.
    check.finish(None if check.exact else inflate(bundle, info, limits, InflateTally()))


def validate_bundle(
    bundle: IO[bytes],
    open_sink: Callable[[Resource, zipfile.ZipInfo], Sink],
    *,
    extract_id: str,
    source: str,
    limits: InflateLimits,
) -> ValidBundle:
    """Run every check, streaming each data file into the sink ``open_sink`` gives it; the first failure
    raises, and every sink opened is aborted. The sinks of a valid bundle are left for the caller to
    commit (or abort)."""
    sinks: dict[str, Sink] = {}
    try:
        with open_zip(bundle) as archive:
            check_entries(archive, limits=limits)
            manifest = read_manifest(bundle, archive, limits)
            check_manifest(manifest, extract_id=extract_id, source=source)
            check_listed_files(archive, manifest)
            tally = InflateTally()
            # In the order they lie in the zip, so the bundle is read front to back, once.
            offsets = {
                resource.path: archive.getinfo(resource.path).header_offset for resource in manifest.resources
            }
            for resource in sorted(manifest.resources, key=lambda resource: offsets[resource.path]):
                info = archive.getinfo(resource.path)
                sinks[resource.path] = sink = open_sink(resource, info)
                stream_member(bundle, info, resource, sink, limits, tally)
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return ValidBundle(manifest=manifest, sinks=sinks)

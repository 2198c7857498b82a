"""Checks that a bundle is exactly what its manifest vouches for, each failure a ``BadBundle`` with a reason.

Each check is a small function over an open zip (a file or bytes in memory), run in order by
``validate_bundle``; the first failure wins.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from services.unzipper.exceptions import (
    BundleTooLarge,
    CorruptZip,
    HashMismatch,
    InvalidManifest,
    MalformedFile,
    ManifestMismatch,
    MissingFile,
    MissingManifest,
    RowCountMismatch,
    SchemaMismatch,
    UnexpectedFile,
)
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
from shared.schema import SCHEMA_VERSION, arrow_schema, field_names

CSV_NAME = "movies.csv"
PARQUET_NAME = "movies.parquet"
DATA_FILES = {CSV_NAME: "csv", PARQUET_NAME: "parquet"}
"""The data files a bundle may hold, by path, with their format; movies.csv is required."""
EXTRACT_STAGE = "extract"


@dataclass(frozen=True)
class ValidBundle:
    """A bundle that passed every check, its data files unzipped on disk."""

    manifest: Manifest
    files: dict[str, Path]


def open_zip(bundle: Path | IO[bytes]) -> zipfile.ZipFile:
    """The bundle opened as a zip; ``CorruptZip`` when it is not one."""
    try:
        return zipfile.ZipFile(bundle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise CorruptZip(f"the bundle is not a readable zip: {exc}") from exc


def check_entries(archive: zipfile.ZipFile, *, max_unzipped_bytes: int) -> None:
    """Plain top-level files only, each once, unencrypted, adding up to at most ``max_unzipped_bytes``."""
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
        # zipfile never yields more than an entry's declared size, so the declared sizes bound the unzip.
        total += info.file_size
    if total > max_unzipped_bytes:
        raise BundleTooLarge(
            f"the bundle unzips to {total} bytes, more than the limit of {max_unzipped_bytes} "
            "(MOVIEPIPE_MAX_UNZIPPED_BYTES)"
        )


def read_manifest(archive: zipfile.ZipFile) -> Manifest:
    """The bundle's manifest.json, parsed; ``MissingManifest`` or ``InvalidManifest`` naming what is wrong."""
    try:
        text = _read(archive, MANIFEST_NAME)
    except KeyError:
        raise MissingManifest(f"the bundle has no {MANIFEST_NAME}", file=MANIFEST_NAME) from None
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


def extract_file(archive: zipfile.ZipFile, resource: Resource, directory: Path) -> Path:
    """Unzip one listed file into ``directory``, checking its size and sha256 against the manifest."""
    target = directory / resource.path
    digest = StreamDigest()
    try:
        with archive.open(resource.path) as packed, target.open("wb") as out:
            for chunk in read_chunks(packed):
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise CorruptZip(f"{resource.path} cannot be unzipped: {exc}", file=resource.path) from exc
    if digest.bytes != resource.bytes:
        raise HashMismatch(resource.path, "size in bytes", resource.bytes, digest.bytes)
    if digest.hash != resource.hash:
        raise HashMismatch(resource.path, HASH_ALGORITHM, resource.hash, digest.hash)
    return target


def check_csv(path: Path, resource: Resource) -> None:
    """The CSV's header is the movie record's columns and it holds ``resource.rows`` records.

    Records are counted with the csv module, not by lines: a quoted title may span lines.
    """
    name = resource.path
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise MalformedFile(f"{name} is empty: no header row", file=name)
            if header != field_names():
                raise SchemaMismatch.columns(name, field_names(), header)
            rows = sum(1 for record in reader if record)
    except csv.Error as exc:
        raise MalformedFile(f"{name} line {reader.line_num}: {exc}", file=name) from exc
    except UnicodeDecodeError as exc:
        raise MalformedFile(f"{name} is not UTF-8 text: {exc}", file=name) from exc
    if rows != resource.rows:
        raise RowCountMismatch(name, resource.rows, rows)


def check_parquet(path: Path, resource: Resource) -> None:
    """The Parquet file has the movie record's columns and types and holds ``resource.rows`` rows."""
    name = resource.path
    try:
        metadata = pq.ParquetFile(path).metadata
        schema = metadata.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as exc:
        raise MalformedFile(f"{name} is not a readable Parquet file: {exc}", file=name) from exc
    expected = arrow_schema()
    if schema.names != expected.names:
        raise SchemaMismatch.columns(name, expected.names, schema.names)
    for field in expected:
        actual_type = schema.field(field.name).type
        if actual_type != field.type:
            raise SchemaMismatch(
                f"{name}: column {field.name!r} is {actual_type}, expected {field.type}", file=name
            )
    if metadata.num_rows != resource.rows:
        raise RowCountMismatch(name, resource.rows, metadata.num_rows)


_CONTENT_CHECKS = {"csv": check_csv, "parquet": check_parquet}


def validate_bundle(
    bundle: Path | IO[bytes],
    directory: Path,
    *,
    extract_id: str,
    source: str,
    max_unzipped_bytes: int,
) -> ValidBundle:
    """Run every check, unzipping the data files into ``directory``; the first failure raises."""
    directory.mkdir(parents=True, exist_ok=True)
    with open_zip(bundle) as archive:
        check_entries(archive, max_unzipped_bytes=max_unzipped_bytes)
        manifest = read_manifest(archive)
        check_manifest(manifest, extract_id=extract_id, source=source)
        check_listed_files(archive, manifest)
        files = {}
        for resource in manifest.resources:
            files[resource.path] = path = extract_file(archive, resource, directory)
            _CONTENT_CHECKS[resource.format](path, resource)
    return ValidBundle(manifest=manifest, files=files)


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise CorruptZip(f"{name} cannot be unzipped: {exc}", file=name) from exc

"""The bundle manifest: a Frictionless Tabular Data Package describing each data file of an extract.

Every stage that writes files writes a manifest last; the next stage trusts nothing the manifest does
not vouch for (bytes, sha256 hash, row count, schema).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.schema import SCHEMA_VERSION, table_schema
from shared.schema import Field as SchemaField

MANIFEST_NAME = "manifest.json"
HASH_ALGORITHM = "sha256"
CHUNK_BYTES = 1 << 20

MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


class Resource(BaseModel):
    """One data file of the package."""

    model_config = ConfigDict(extra="allow")

    name: str
    path: str
    profile: str = "tabular-data-resource"
    format: str
    mediatype: str | None = None
    encoding: str | None = None
    bytes: int
    hash: str
    rows: int
    schema_: dict[str, Any] = Field(alias="schema")

    @property
    def sha256(self) -> str:
        algorithm, _, digest = self.hash.partition(":")
        return digest if algorithm == HASH_ALGORITHM else ""


class Manifest(BaseModel):
    """The whole package: which extract, from where, which files, how many rows."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    profile: str = "tabular-data-package"
    name: str
    extract_id: str
    source: str
    extracted_at: str
    schema_version: str = SCHEMA_VERSION
    extract_kind: Literal["full", "incremental"] = "full"
    """``full``: a complete picture of the source; ``incremental``: only rows at or above a mark."""
    stage: str
    row_counts: dict[str, int]
    resources: list[Resource]

    def resource(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2, exclude_none=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse a manifest this pipeline wrote (no profile check: see ``parse_manifest``)."""
        return cls.model_validate(json.loads(text))


class ManifestInvalid(ValueError):
    """A manifest that is not a tabular data package this pipeline reads; ``problems`` say why."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


PROBLEMS_SHOWN = 5


def profile_problems(document: dict[str, Any]) -> list[str]:
    """What the Frictionless ``tabular-data-package`` profile finds wrong with ``document`` (none: [])."""
    from frictionless import FrictionlessException, Package

    try:
        return [error.message for error in Package.metadata_validate(document)][:PROBLEMS_SHOWN]
    except FrictionlessException as exc:  # it raises, rather than reports, some malformed schemas
        return [exc.error.message]
    except (TypeError, AttributeError, KeyError) as exc:  # and trips over others (a field that is null)
        return [f"not a tabular data package the profile can read ({type(exc).__name__}: {exc})"]


def parse_manifest(text: str | bytes) -> Manifest:
    """A manifest from its bytes, as every stage reads one: JSON, then the Frictionless tabular data
    package profile, then this pipeline's own fields (counts, hashes, kind …). ``ManifestInvalid``
    names every problem found (the first few), so a person can fix the producer."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestInvalid([f"not JSON ({exc})"]) from exc
    except RecursionError as exc:
        raise ManifestInvalid(["not JSON this pipeline reads (nested too deeply)"]) from exc
    if not isinstance(document, dict):
        raise ManifestInvalid([f"not a JSON object but {type(document).__name__}"])
    try:
        # Text that JSON allows but UTF-8 cannot hold (a lone surrogate, "\ud800") could not be written
        # back by the stage that republishes the manifest.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ManifestInvalid([f"holds text that is not valid Unicode ({exc.reason})"]) from exc
    problems = profile_problems(document)
    try:
        manifest = Manifest.model_validate(document)
    except ValidationError as exc:
        problems += [
            f"{'.'.join(str(part) for part in error['loc']) or 'manifest'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise ManifestInvalid(problems[: PROBLEMS_SHOWN * 2]) from exc
    if problems:
        raise ManifestInvalid(problems)
    return manifest


class StreamDigest:
    """The hash (``sha256:<hex>``, as a manifest records it), size and line count of bytes read in passing.

    Every stage that checks a file against its manifest feeds the chunks it reads through one of these,
    so no file is read twice to be checked.
    """

    def __init__(self, *, count_lines: bool = False):
        self._sha = hashlib.sha256()
        self._count_lines = count_lines
        self.bytes = 0
        self.lines = 0
        """Newline characters seen (counted only with ``count_lines``)."""

    def update(self, chunk: bytes | memoryview) -> None:
        self._sha.update(chunk)
        self.bytes += memoryview(chunk).nbytes
        if self._count_lines:
            self.lines += bytes(chunk).count(b"\n")

    @property
    def hash(self) -> str:
        return f"{HASH_ALGORITHM}:{self._sha.hexdigest()}"


def read_chunks(stream: Any, size: int = CHUNK_BYTES):
    """The chunks of a binary stream (a file, an S3 body, a zip member) until it ends."""
    while chunk := stream.read(size):
        yield chunk


def file_digest(path: Path) -> tuple[str, int]:
    """``sha256:<hex>`` and the size in bytes of a file, read in chunks."""
    digest = StreamDigest()
    with path.open("rb") as handle:
        for chunk in read_chunks(handle):
            digest.update(chunk)
    return digest.hash, digest.bytes


def describe_file(
    path: Path,
    *,
    name: str,
    rows: int,
    fields: tuple[SchemaField, ...],
    relative_to: Path | None = None,
    digest: tuple[str, int] | None = None,
) -> Resource:
    """A manifest resource for a data file (csv or parquet, told by its suffix).

    ``digest`` (hash and size) is for a file hashed as it was written; without it the file is read.
    """
    fmt = path.suffix.lstrip(".")
    digest, size = digest or file_digest(path)
    extra: dict[str, Any] = {"encoding": "utf-8"} if fmt == "csv" else {}
    return Resource(
        name=name,
        path=str(path.relative_to(relative_to)) if relative_to else path.name,
        format=fmt,
        mediatype=MEDIA_TYPES.get(fmt),
        bytes=size,
        hash=digest,
        rows=rows,
        schema=table_schema(fields),
        **extra,
    )


def new_manifest(
    *,
    extract_id: str,
    source: str,
    stage: str,
    row_counts: dict[str, int],
    resources: list[Resource],
    extracted_at: str | None = None,
    **extra: Any,
) -> Manifest:
    return Manifest(
        name=f"movies-{extract_id}".lower(),
        extract_id=extract_id,
        source=source,
        extracted_at=extracted_at or datetime.now(UTC).isoformat(timespec="microseconds"),
        stage=stage,
        row_counts=row_counts,
        resources=resources,
        **extra,
    )

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

from pydantic import BaseModel, ConfigDict, Field

from shared.schema import SCHEMA_VERSION, table_schema
from shared.schema import Field as SchemaField

MANIFEST_NAME = "manifest.json"
HASH_ALGORITHM = "sha256"
_CHUNK = 1 << 20

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
        return cls.model_validate(json.loads(text))


def file_digest(path: Path) -> tuple[str, int]:
    """``sha256:<hex>`` and the size in bytes of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return f"{HASH_ALGORITHM}:{digest.hexdigest()}", size


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

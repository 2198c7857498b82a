"""The bundle: movies.csv + movies.parquet + manifest.json, zipped, as the extractor lands it.

Record batches stream straight into both writers, so an extract holds one batch in memory however
large the source.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from services.extractor.exceptions import SourceUnreadable
from shared.manifest import MANIFEST_NAME, Manifest, describe_file, file_digest, new_manifest
from shared.schema import MOVIE_FIELDS, arrow_schema

CSV_NAME = "movies.csv"
PARQUET_NAME = "movies.parquet"
CSV_RESOURCE = "movies-csv"
PARQUET_RESOURCE = "movies-parquet"
STAGE = "extract"

# Strings are always quoted (quotes doubled inside), nulls are empty fields, booleans true/false.
CSV_OPTIONS = pa_csv.WriteOptions(include_header=True, delimiter=",", quoting_style="needed")


@dataclass(frozen=True)
class Bundle:
    """A finished bundle on disk."""

    path: Path
    manifest: Manifest
    rows: int
    bytes: int
    hash: str


def conform(batch: pa.RecordBatch, schema: pa.Schema, *, source: str) -> pa.RecordBatch:
    """The batch in the movie record's schema; other columns, or values that do not fit, are refused."""
    if batch.schema.equals(schema):
        return batch
    if batch.schema.names != schema.names:
        missing = [name for name in schema.names if name not in batch.schema.names]
        unexpected = [name for name in batch.schema.names if name not in schema.names]
        raise SourceUnreadable(
            source,
            f"rows do not have the movie record's columns (missing {missing}, unexpected {unexpected})",
        )
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SourceUnreadable(source, f"rows do not fit the movie record: {exc}") from exc


def write_data_files(batches: Iterable[pa.RecordBatch], directory: Path, *, source: str) -> int:
    """Stream the batches into ``movies.csv`` and ``movies.parquet`` in ``directory``; returns the rows."""
    schema = arrow_schema()
    rows = 0
    with (
        pa_csv.CSVWriter(directory / CSV_NAME, schema, write_options=CSV_OPTIONS) as csv_writer,
        pq.ParquetWriter(directory / PARQUET_NAME, schema) as parquet_writer,
    ):
        for batch in batches:
            batch = conform(batch, schema, source=source)
            csv_writer.write_batch(batch)
            parquet_writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def write_manifest(directory: Path, *, extract_id: str, source: str, rows: int) -> Manifest:
    """Describe the data files in ``directory`` (bytes, sha256, rows, schema) in ``manifest.json``."""
    manifest = new_manifest(
        extract_id=extract_id,
        source=source,
        stage=STAGE,
        row_counts={"extracted": rows},
        resources=[
            describe_file(directory / CSV_NAME, name=CSV_RESOURCE, rows=rows, fields=MOVIE_FIELDS),
            describe_file(directory / PARQUET_NAME, name=PARQUET_RESOURCE, rows=rows, fields=MOVIE_FIELDS),
        ],
    )
    (directory / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def zip_bundle(directory: Path, target: Path) -> None:
    """Zip the data files and the manifest; Parquet is stored as it is, being compressed already."""
    with zipfile.ZipFile(target, "w") as archive:
        archive.write(directory / CSV_NAME, CSV_NAME, compress_type=zipfile.ZIP_DEFLATED)
        archive.write(directory / PARQUET_NAME, PARQUET_NAME, compress_type=zipfile.ZIP_STORED)
        archive.write(directory / MANIFEST_NAME, MANIFEST_NAME, compress_type=zipfile.ZIP_DEFLATED)


def write_bundle(
    batches: Iterable[pa.RecordBatch], directory: Path, *, extract_id: str, source: str
) -> Bundle:
    """Write the whole bundle into ``directory``: the data files, the manifest, and ``{extract_id}.zip``."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = write_data_files(batches, directory, source=source)
    manifest = write_manifest(directory, extract_id=extract_id, source=source, rows=rows)
    path = directory / f"{extract_id}.zip"
    zip_bundle(directory, path)
    digest, size = file_digest(path)
    return Bundle(path=path, manifest=manifest, rows=rows, bytes=size, hash=digest)

"""The bundle: movies.csv + movies.parquet + manifest.json, zipped, as the extractor lands it.

Record batches stream straight into both writers, so an extract holds a few batches in memory however
large the source; the CSV is deflated into the zip as it is written, never kept unzipped on disk.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from services.extractor.records import MovieBatch, RecordMapper
from shared.manifest import MANIFEST_NAME, Manifest, StreamDigest, describe_file, file_digest, new_manifest
from shared.schema import MOVIE_FIELDS, arrow_schema

CSV_NAME = "movies.csv"
PARQUET_NAME = "movies.parquet"
CSV_RESOURCE = "movies-csv"
PARQUET_RESOURCE = "movies-parquet"
STAGE = "extract"

# Strings are always quoted (quotes doubled inside), nulls are empty fields, booleans true/false.
CSV_OPTIONS = pa_csv.WriteOptions(include_header=True, delimiter=",", quoting_style="needed")
CSV_OPTIONS_NO_HEADER = pa_csv.WriteOptions(include_header=False, delimiter=",", quoting_style="needed")
# Deflating the CSV is the slowest step of a large extract; the fastest level keeps it short
# (docs/BENCHMARKS.md has the figures).
ZIP_LEVEL = 1
ISAL_LEVEL = 1

Progress = Callable[[int], None]
"""Called with the rows written so far, after each batch."""


@dataclass(frozen=True)
class Bundle:
    """A finished bundle on disk."""

    path: Path | None
    manifest: Manifest
    rows: int
    bytes: int
    hash: str


class _HashingSink(io.RawIOBase):
    """Passes bytes on to ``target`` while hashing (sha256) and counting them."""

    def __init__(self, target: IO[bytes]):
        self.target = target
        self.digest = StreamDigest()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.target.write(view)
        return view.nbytes

    def result(self) -> tuple[str, int]:
        return self.digest.hash, self.digest.bytes


_DONE = object()


def _mapped(
    batches: Iterable[pa.RecordBatch], mapper: RecordMapper, also: Callable[[MovieBatch], None]
) -> Iterator[MovieBatch]:
    """The source read, mapped and handed to ``also`` in a thread of its own, ahead of the caller.

    Reading (the database's stream, the casts, the Parquet writer) and the caller's writing (CSV,
    deflate) then overlap; both release the GIL for their heavy parts.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                movies = mapper.conform(batch)
                if movies.typed.num_rows:
                    also(movies)
                while not stop.is_set():
                    try:
                        handoff.put(movies, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(_DONE)
        except BaseException as exc:  # handed to the writer, which raises it
            handoff.put(exc)
        finally:
            # Stopped early (a row that does not map, the writer failing): the source's generator is
            # closed here, so its connection goes back now, not when the garbage collector finds it
            # (PostgreSQL would hold the table's lock "idle in transaction" until then).
            close = getattr(batches, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    reader = threading.Thread(target=read, name="extract-reader", daemon=True)
    reader.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=30)


def write_data_files(
    batches: Iterable[pa.RecordBatch],
    directory: Path,
    mapper: RecordMapper,
    archive: zipfile.ZipFile,
    *,
    progress: Progress | None = None,
) -> tuple[int, tuple[str, int]]:
    """Map the source's batches to the movie record and stream them into the two data files.

    ``movies.csv`` goes straight into the zip, deflated and hashed as it is written, batch by batch,
    each batch in its own columns' types, so a value that did not fit its field travels as text (see
    ``services.extractor.records``). ``movies.parquet`` (typed) is written beside it in ``directory``.
    Returns the rows and the CSV's hash and size.
    """
    schema = arrow_schema()
    rows = 0
    with (
        archive.open(_member(CSV_NAME, zipfile.ZIP_DEFLATED), "w", force_zip64=True) as member,
        pq.ParquetWriter(directory / PARQUET_NAME, schema) as parquet_writer,
    ):
        _deflate_faster(member)
        sink = _HashingSink(member)
        csv_file = io.BufferedWriter(sink, buffer_size=1 << 20)
        header = True
        for movies in _mapped(batches, mapper, lambda movies: parquet_writer.write_batch(movies.typed)):
            if not movies.typed.num_rows:
                continue
            options = CSV_OPTIONS if header else CSV_OPTIONS_NO_HEADER
            pa_csv.write_csv(movies.as_text, csv_file, write_options=options)
            header = False
            rows += movies.typed.num_rows
            if progress is not None:
                progress(rows)
        if header:
            pa_csv.write_csv(
                pa.RecordBatch.from_pylist([], schema=schema), csv_file, write_options=CSV_OPTIONS
            )
        csv_file.flush()
    return rows, sink.result()


def _deflate_faster(member: IO[bytes]) -> None:
    """Deflate the member with ISA-L (the same deflate format, about four times faster than zlib here).

    Deflating the CSV was the extract's costliest step after reading (docs/BENCHMARKS.md). zipfile
    keeps its compressor in a private attribute set when the member is opened; where that is not so,
    or ISA-L is missing, zlib stays.
    """
    try:
        from isal import isal_zlib
    except ImportError:
        return
    if getattr(member, "_compressor", None) is not None:
        member._compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -15)  # type: ignore[attr-defined]


def _member(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.compress_type = compression
    if compression == zipfile.ZIP_DEFLATED:
        info._compresslevel = ZIP_LEVEL  # type: ignore[attr-defined]  # what ZipFile.write sets too
    return info


def write_manifest(
    directory: Path,
    *,
    extract_id: str,
    source: str,
    rows: int,
    csv_digest: tuple[str, int] | None = None,
    mapper: RecordMapper | None = None,
) -> Manifest:
    """Describe the data files (bytes, sha256, rows, schema) in ``manifest.json`` in ``directory``."""
    manifest = new_manifest(
        extract_id=extract_id,
        source=source,
        stage=STAGE,
        row_counts={"extracted": rows},
        resources=[
            describe_file(
                directory / CSV_NAME, name=CSV_RESOURCE, rows=rows, fields=MOVIE_FIELDS, digest=csv_digest
            ),
            describe_file(directory / PARQUET_NAME, name=PARQUET_RESOURCE, rows=rows, fields=MOVIE_FIELDS),
        ],
        **(mapper.manifest_fields() if mapper is not None else {}),
    )
    (directory / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def write_bundle(
    batches: Iterable[pa.RecordBatch],
    directory: Path,
    *,
    extract_id: str,
    source: str,
    mapper: RecordMapper | None = None,
    progress: Progress | None = None,
) -> Bundle:
    """Write ``{extract_id}.zip`` into ``directory``: ``movies.csv``, ``movies.parquet``, then the manifest.

    A bundle of no rows is described but not kept (``path`` is None): there is nothing to land.
    """
    directory.mkdir(parents=True, exist_ok=True)
    mapper = mapper or RecordMapper(source)
    path = directory / f"{extract_id}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        rows, csv_digest = write_data_files(batches, directory, mapper, archive, progress=progress)
        manifest = write_manifest(
            directory, extract_id=extract_id, source=source, rows=rows, csv_digest=csv_digest, mapper=mapper
        )
        # Parquet is compressed already; the manifest goes last, as every stage writes it.
        archive.write(directory / PARQUET_NAME, PARQUET_NAME, compress_type=zipfile.ZIP_STORED)
        archive.write(directory / MANIFEST_NAME, MANIFEST_NAME, compress_type=zipfile.ZIP_DEFLATED)
    if not rows:
        path.unlink()
        return Bundle(path=None, manifest=manifest, rows=0, bytes=0, hash="")
    digest, size = file_digest(path)
    return Bundle(path=path, manifest=manifest, rows=rows, bytes=size, hash=digest)

"""Checks of a data file's content made while its bytes stream past; each ends in a ``BadBundle`` or not.

A check is fed every chunk in order (``feed``) and then says what it found (``finish``). None holds the
file: the CSV check keeps counts and the header, the Parquet check the file's last bytes, where its footer
(schema and row count) lives.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator

import numpy as np

from services.unzipper.exceptions import BadBundle, MalformedFile, RowCountMismatch, SchemaMismatch
from shared.manifest import Resource
from shared.schema import arrow_schema, field_names

HEADER_BYTES = 1 << 20
"""A CSV header row longer than this is not a header."""
FOOTER_BYTES = 8 << 20
"""The Parquet footer is read from the file's last bytes, kept up to this size."""
PARQUET_MAGIC = b"PAR1"
_QUOTE, _LF, _CR, _COMMA = b'"\n\r,'
_BESIDE_QUOTE = np.zeros(256, dtype=bool)
_BESIDE_QUOTE[[_COMMA, _LF, _CR, _QUOTE]] = True
"""What may precede an opening quote or follow a closing one in RFC 4180 CSV."""


class CsvRecords:
    """Counts CSV records as ``csv.reader`` reads them (quoted line breaks inside a record, blank lines
    skipped), vectorised: a line end is a record's end when an even number of quotes precedes it.

    That parity is exact for RFC 4180 CSV, where a quote opens or closes a whole field. A quote inside an
    unquoted field (``5'10" tall``) breaks it; then ``regular`` turns False and the caller counts again with
    ``count_records_exactly``.
    """

    def __init__(self) -> None:
        self.regular = True
        self._offset = 0  # bytes fed so far
        self._quoted = False  # inside a quoted field where the fed bytes end
        self._line_start = 0  # where the current line began: the end of the last line end
        self._records = 0  # lines ended so far that were not blank
        self._pending_cr: int | None = None  # an unquoted CR that ended the last chunk: CR or half a CRLF
        self._last = _COMMA  # the byte before the next chunk; the file's start acts as a comma
        self._closed_at_end = False  # the last chunk ended with a closing quote: a separator must follow

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        data = np.frombuffer(chunk, dtype=np.uint8)
        base, size = self._offset, len(data)
        quotes = np.flatnonzero(data == _QUOTE)
        starts, ends = self._line_ends(chunk, data, quotes)
        if starts.size:
            previous = np.concatenate(([self._line_start], ends[:-1]))
            self._records += int(np.count_nonzero(starts + base > previous))
            self._line_start = int(ends[-1])
        if self.regular:
            self._check_quotes(data, quotes)
        self._quoted = bool((self._quoted + quotes.size) & 1)
        self._last = int(data[-1])
        self._offset += size

    @property
    def first_line_ended(self) -> bool:
        return self._line_start > 0

    def records(self) -> int:
        """Records in everything fed, the header included."""
        if self._pending_cr is not None:  # a CR ended the file: a line end of its own
            if self._pending_cr > self._line_start:
                self._records += 1
            self._line_start = self._pending_cr + 1
            self._pending_cr = None
        return self._records + (1 if self._offset > self._line_start else 0)

    def _unquoted(self, positions: np.ndarray, quotes: np.ndarray) -> np.ndarray:
        inside = (np.searchsorted(quotes, positions) + self._quoted) & 1
        return positions[inside == 0]

    def _line_ends(self, chunk: bytes, data: np.ndarray, quotes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (absolute; starts relative to the chunk) of every unquoted LF, CRLF and lone CR."""
        base, size = self._offset, len(data)
        feeds = self._unquoted(np.flatnonzero(data == _LF), quotes)
        starts = feeds.copy()
        crlf = feeds[feeds > 0]
        starts[feeds > 0] = np.where(data[crlf - 1] == _CR, crlf - 1, crlf)
        extra_starts: list[int] = []
        if self._pending_cr is not None:
            if data[0] == _LF:  # the CRLF straddles the chunks: the line ended where the CR stood
                starts[0] = self._pending_cr - base
            else:
                extra_starts.append(self._pending_cr - base)
            self._pending_cr = None
        if _CR.to_bytes(1, "big") in chunk:
            returns = self._unquoted(np.flatnonzero(data == _CR), quotes)
            if returns.size and returns[-1] == size - 1:
                self._pending_cr = base + size - 1
                returns = returns[:-1]
            lone = returns[data[returns + 1] != _LF]
            extra_starts.extend(lone.tolist())
        ends = feeds + 1
        if extra_starts:
            lone_starts = np.array(extra_starts, dtype=np.int64)
            starts = np.concatenate((starts, lone_starts))
            ends = np.concatenate((ends, lone_starts + 1))
            order = np.argsort(starts, kind="stable")
            starts, ends = starts[order], ends[order]
        return starts, ends + base

    def _check_quotes(self, data: np.ndarray, quotes: np.ndarray) -> None:
        if self._closed_at_end and not _BESIDE_QUOTE[data[0]]:
            self.regular = False
        self._closed_at_end = False
        if not quotes.size:
            return
        opening = ((np.arange(quotes.size) + self._quoted) & 1) == 0
        opened, closed = quotes[opening], quotes[~opening]
        before = data[np.maximum(opened - 1, 0)]
        if opened.size and opened[0] == 0:
            before[0] = self._last
        after_end = closed == len(data) - 1
        after = data[np.minimum(closed + 1, len(data) - 1)]
        if not (_BESIDE_QUOTE[before].all() and (_BESIDE_QUOTE[after] | after_end).all()):
            self.regular = False
        self._closed_at_end = bool(after_end.any())


def count_records_exactly(chunks: Iterable[bytes]) -> int:
    """Records as ``csv.reader`` counts them (blank lines skipped), the header included; the slow path."""
    text = io.TextIOWrapper(_ChunkStream(iter(chunks)), encoding="utf-8", errors="replace", newline="")
    return sum(1 for record in csv.reader(text) if record)


class CsvCheck:
    """A CSV data file: UTF-8, the movie record's header, and as many records as the manifest says."""

    def __init__(self, resource: Resource):
        self.resource = resource
        self.records = CsvRecords()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._decoded = 0
        self._head: list[str] = []
        self._head_chars = 0
        self._problem: BadBundle | None = None

    @property
    def exact(self) -> bool:
        """Whether the fast count is exact (else the caller counts again, see ``CsvRecords``)."""
        return self.records.regular

    def feed(self, chunk: bytes) -> None:
        if self._problem is not None:
            return
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            self._problem = MalformedFile(
                f"{self.resource.path} is not UTF-8 text: {exc.reason} at byte {self._decoded + exc.start}",
                file=self.resource.path,
            )
            return
        self._decoded += len(chunk)
        if self._head_chars < HEADER_BYTES and not self.records.first_line_ended:
            self._head.append(text[: HEADER_BYTES - self._head_chars])
            self._head_chars += len(self._head[-1])
        self.records.feed(chunk)

    def finish(self, recount: Iterable[bytes] | None = None) -> None:
        """Raise what is wrong; ``recount`` (the file's chunks again) when the fast count was not exact."""
        name = self.resource.path
        if self._problem is not None:
            raise self._problem
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise MalformedFile(f"{name} is not UTF-8 text: it ends inside a character", file=name) from exc
        header = next(csv.reader(io.StringIO("".join(self._head), newline="")), None)
        if header is None:
            raise MalformedFile(f"{name} is empty: no header row", file=name)
        if header != field_names():
            raise SchemaMismatch.columns(name, field_names(), header)
        records = self.records.records() if recount is None else count_records_exactly(recount)
        if records - 1 != self.resource.rows:
            raise RowCountMismatch(name, self.resource.rows, records - 1)


class ParquetCheck:
    """A Parquet data file: the magic at both ends, the movie record's columns and types, the row count."""

    def __init__(self, resource: Resource):
        self.resource = resource
        self._head = b""
        self._tail = bytearray()
        self.exact = True

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < len(PARQUET_MAGIC):
            self._head += chunk[: len(PARQUET_MAGIC) - len(self._head)]
        self._tail += chunk
        if len(self._tail) > 2 * FOOTER_BYTES:
            del self._tail[: len(self._tail) - FOOTER_BYTES]

    def finish(self, recount: Iterable[bytes] | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = self.resource.path
        tail = bytes(self._tail[-FOOTER_BYTES:])
        if self._head != PARQUET_MAGIC or tail[-4:] != PARQUET_MAGIC:
            raise MalformedFile(f"{name} is not a readable Parquet file: no PAR1 magic", file=name)
        footer = int.from_bytes(tail[-8:-4], "little") + 8
        if footer > len(tail):
            raise MalformedFile(
                f"{name}: its Parquet footer ({footer} bytes) is larger than the file or than the "
                f"{FOOTER_BYTES} bytes checked",
                file=name,
            )
        try:
            metadata = pq.read_metadata(pa.BufferReader(tail))
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
        if metadata.num_rows != self.resource.rows:
            raise RowCountMismatch(name, self.resource.rows, metadata.num_rows)


CONTENT_CHECKS = {"csv": CsvCheck, "parquet": ParquetCheck}


class _ChunkStream(io.RawIOBase):
    """An iterator of byte chunks as a readable binary stream."""

    def __init__(self, chunks: Iterator[bytes]):
        super().__init__()
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size

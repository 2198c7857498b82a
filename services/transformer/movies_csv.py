"""``movies.csv`` as every engine reads it: the header check, and one record per line.

The Spark job reads the file with Spark's CSV reader; the DuckDB engine reads it here, line by line, so
that both see the same rows: a line is a record (quoted values do not span lines), blank lines are
skipped, and a line that does not split into the header's number of columns is a malformed row.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from services.transformer.exceptions import InvalidHeader
from shared.schema import field_names
from shared.transform import CORRUPT_RECORD, ROW

_BLANK_BYTES = bytes(range(33))
"""What Java's String.trim() strips: a line of only these is blank to Spark's reader."""


def header_columns(line: str | None) -> list[str]:
    """The record's column names in a CSV header line, in file order; ``InvalidHeader`` if it lacks any.

    Names match case-insensitively and ignoring surrounding spaces and a byte-order mark; columns that
    are not part of the record are allowed and become ``_extra_<position>``.
    """
    if line is None or not line.strip():
        raise InvalidHeader("movies.csv has no header row")
    names = [name.strip().lower() for name in next(csv.reader([line.lstrip("\ufeff")]))]
    missing = [name for name in field_names() if name not in names]
    if missing:
        raise InvalidHeader(f"movies.csv header lacks column(s) {', '.join(missing)} (found: {line.strip()})")
    repeated = sorted({name for name in names if name in field_names() and names.count(name) > 1})
    if repeated:
        raise InvalidHeader(f"movies.csv header repeats column(s) {', '.join(repeated)}")
    known = set(field_names())
    return [name if name in known else f"_extra_{position}" for position, name in enumerate(names)]


def read_lines(path: Path) -> pa.Table:
    """``movies.csv`` untyped: one string column per record field, ``_corrupt_record``, ``_row``.

    Empty values are null, as Spark's reader gives them; a malformed row keeps only its line.

    Lines whose quotes balance (nearly all) are parsed together by Arrow's CSV reader, one record per
    line; the rest (a quote left open, which Arrow would carry onto the next line) one by one with the
    csv module. ``_row`` numbers the records in file order, whichever parser read them, and the table
    holds them in that order. The lines are
    found, and their quotes counted, over the file's bytes at once: no line becomes a Python object
    unless it needs the csv module or may be blank.
    """
    data = _universal_newlines(_utf8(path.read_bytes()))
    lines = _Lines(data)
    columns = header_columns(lines.text(0) if lines.count > 1 or lines.length(0) else None)
    width = len(columns)
    body = np.arange(1, lines.count)
    body = body[lines.lengths[body] > 0]
    # Java's String.trim() strips every character up to U+0020: a line of only those is blank to Spark.
    maybe_blank = body[lines.first_bytes(body) <= ord(" ")]
    blank = [line for line in maybe_blank.tolist() if not lines.bytes(line).translate(None, _BLANK_BYTES)]
    body = np.setdiff1d(body, np.array(blank, dtype=body.dtype), assume_unique=True)
    rows = np.arange(len(body), dtype=np.int64)  # a record's number: its place among the kept lines
    names = [f"c{position}" for position in range(width)]
    balanced = lines.quotes(body) % 2 == 0
    try:
        table, invalid = _read_balanced(lines.joined(body[balanced]), names)
        carried = table.num_rows + len(invalid) != int(balanced.sum())
    except pa.ArrowInvalid:
        carried = True
    if carried:
        # A quote opened inside a line whose quotes balance (``1,ab"c,"d``: the first is a character,
        # the second opens a value) carries Arrow onto the next lines. Every line then goes one by one.
        balanced[:] = False
        table, invalid = _read_balanced(b"", names)
    parsed_rows: list[int] = []
    parsed: list[tuple[str | None, ...]] = []
    corrupt_rows: list[int] = []
    corrupt: list[str] = []
    for line, row in zip(body[~balanced].tolist(), rows[~balanced].tolist(), strict=True):
        text = lines.text(line)
        values = _parse(text)
        if len(values) == width:
            parsed.append(tuple(value or None for value in values))
            parsed_rows.append(row)
        else:
            corrupt.append(text)
            corrupt_rows.append(row)
    balanced_rows = rows[balanced]
    if invalid:
        invalid_at = np.array(sorted(invalid), dtype=np.int64)
        corrupt += [lines.text(line) for line in body[balanced][invalid_at].tolist()]
        corrupt_rows += balanced_rows[invalid_at].tolist()
        balanced_rows = np.delete(balanced_rows, invalid_at)
    arrays = {}
    for name in field_names():
        position = columns.index(name)
        column = table.column(names[position])
        values = [row[position] for row in parsed]
        arrays[name] = pa.chunked_array(
            [*column.chunks, pa.array(values, pa.string()), pa.nulls(len(corrupt), pa.string())],
            pa.string(),
        )
    arrays[CORRUPT_RECORD] = pa.concat_arrays(
        [pa.nulls(len(balanced_rows) + len(parsed), pa.string()), pa.array(corrupt, pa.string())]
    )
    arrays[ROW] = pa.concat_arrays(
        [pa.array(balanced_rows, pa.int64()), pa.array([*parsed_rows, *corrupt_rows], pa.int64())]
    )
    table = pa.table(arrays)
    numbers = arrays[ROW].to_numpy()
    if (np.diff(numbers) < 0).any():  # rows read one by one came after the others: back in file order
        table = table.take(np.argsort(numbers, kind="stable"))
    return table


def _utf8(data: bytes) -> bytes:
    """The bytes as UTF-8, with U+FFFD for any sequence that is not (as a lenient decoder reads them)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace").encode("utf-8")
    return data


def _universal_newlines(data: bytes) -> bytes:
    r"""``\r\n`` and a lone ``\r`` as ``\n``: every line end Hadoop's line reader knows, one way."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


class _Lines:
    r"""The lines of a file's bytes, split at ``\n`` (the last one may be empty), found all at once."""

    def __init__(self, data: bytes):
        self.data = data
        view = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(view == ord("\n"))
        self.starts = np.concatenate(([0], ends + 1))
        self.ends = np.append(ends, len(data))
        self.lengths = self.ends - self.starts
        self.count = len(self.starts)
        self._view = view
        self._quote_at = np.flatnonzero(view == ord('"'))

    def length(self, line: int) -> int:
        return int(self.lengths[line])

    def bytes(self, line: int) -> bytes:
        return self.data[self.starts[line] : self.ends[line]]

    def text(self, line: int) -> str:
        return self.bytes(line).decode("utf-8")

    def first_bytes(self, lines: np.ndarray) -> np.ndarray:
        """The first byte of each of these lines (none of them empty)."""
        return self._view[self.starts[lines]]

    def quotes(self, lines: np.ndarray) -> np.ndarray:
        """How many ``"`` each of these lines holds."""
        quote_at = self._quote_at
        return np.searchsorted(quote_at, self.ends[lines]) - np.searchsorted(quote_at, self.starts[lines])

    def joined(self, lines: np.ndarray) -> bytes:
        r"""These lines (in order), one per ``\n``: the file's own bytes where they follow each other."""
        if not len(lines):
            return b""
        # Runs of consecutive lines are one slice of the file each.
        breaks = np.flatnonzero(np.diff(lines) != 1) + 1
        firsts = np.concatenate(([0], breaks))
        lasts = np.append(breaks - 1, len(lines) - 1)
        return b"\n".join(
            self.data[start:end]
            for start, end in zip(
                self.starts[lines[firsts]].tolist(), self.ends[lines[lasts]].tolist(), strict=True
            )
        )


def _read_balanced(data: bytes, names: list[str]) -> tuple[pa.Table, set[int]]:
    """Arrow's reading of ``data`` (one record a line); which records (by position) had another width.

    Read on every core; a record of the wrong width is rare, and only then is the file read again on
    one thread, which is when Arrow tells which record it was.
    """
    if not data:
        return pa.table({name: pa.array([], pa.string()) for name in names}), set()
    refused: list[int | None] = []

    def refuse(row: pa_csv.InvalidRow) -> str:
        refused.append(row.number)  # None when read on several threads
        return "skip"

    table = _arrow_csv(data, names, refuse, use_threads=True)
    if refused:
        refused.clear()
        table = _arrow_csv(data, names, refuse, use_threads=False)
    return table, {number - 1 for number in refused if number is not None}  # numbers count from 1


def _arrow_csv(data: bytes, names: list[str], refuse, *, use_threads: bool) -> pa.Table:
    return pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(
            column_names=names, use_threads=use_threads, block_size=ARROW_BLOCK_BYTES
        ),
        parse_options=pa_csv.ParseOptions(
            quote_char='"', double_quote=True, newlines_in_values=False, invalid_row_handler=refuse
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


ARROW_BLOCK_BYTES = 1 << 20
"""Bytes Arrow parses at a time; blocks are parsed in parallel, so a 7 MB file keeps both cores busy."""


def _parse(line: str) -> list[str]:
    try:
        return next(csv.reader((line,)), [])
    except csv.Error:
        return []

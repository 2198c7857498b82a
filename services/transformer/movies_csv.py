"""``movies.csv`` as every engine reads it: the header check, and one record per line.

The Spark job reads the file with Spark's CSV reader; the DuckDB engine reads it here, line by line, so
that both see the same rows: a line is a record (quoted values do not span lines), blank lines are
skipped, and a line that does not split into the header's number of columns is a malformed row.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from services.transformer.exceptions import InvalidHeader
from shared.schema import field_names
from shared.transform import CORRUPT_RECORD, ROW

# What Java's String.trim() strips: a line of only these is blank to Spark's reader.
_BLANK = "".join(chr(code) for code in range(33))


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
    """
    # Universal newlines: \n, \r\n and \r end a line, as in Hadoop's line reader.
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    columns = header_columns(lines[0] if lines[0] or len(lines) > 1 else None)
    width = len(columns)
    nothing = (None,) * width
    rows: list[tuple[str | None, ...] | list[str]] = []
    corrupt: list[str | None] = []
    for line in lines[1:]:
        if not line or (line[0] <= " " and not line.strip(_BLANK)):
            continue
        # Most lines hold no quote: splitting on commas is then exactly what a CSV parser does, and faster.
        parsed = _parse(line) if '"' in line else line.split(",")
        if len(parsed) == width:
            rows.append(parsed)
            corrupt.append(None)
        else:
            rows.append(nothing)
            corrupt.append(line)
    transposed = list(zip(*rows, strict=True)) if rows else [()] * width
    arrays = {}
    for name in field_names():
        values = pa.array(transposed[columns.index(name)], pa.string())
        arrays[name] = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    arrays[CORRUPT_RECORD] = pa.array(corrupt, pa.string())
    arrays[ROW] = pa.array(range(len(corrupt)), pa.int64())
    return pa.table(arrays)


def _parse(line: str) -> list[str]:
    try:
        return next(csv.reader((line,)), [])
    except csv.Error:
        return []

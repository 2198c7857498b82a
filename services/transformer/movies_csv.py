"""``movies.csv`` as every engine reads it: the header check, and one record per line.

The Spark job reads the file with Spark's CSV reader; the DuckDB engine reads it here, line by line, so
that both see the same rows: a line is a record (quoted values do not span lines), blank lines are
skipped, and a line that does not split into the header's number of columns is a malformed row.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

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

    Lines whose quotes balance (nearly all) are parsed together by Arrow's CSV reader, one record per
    line; the rest (a quote left open, which Arrow would carry onto the next line) one by one with the
    csv module. ``_row`` numbers the records in file order, whichever parser read them.
    """
    # Universal newlines: \n, \r\n and \r end a line, as in Hadoop's line reader.
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    columns = header_columns(lines[0] if lines[0] or len(lines) > 1 else None)
    width = len(columns)
    balanced: list[str] = []
    balanced_rows: list[int] = []
    parsed_rows: list[int] = []
    parsed: list[tuple[str | None, ...]] = []
    corrupt_rows: list[int] = []
    corrupt: list[str] = []
    row = 0
    for line in lines[1:]:
        if not line or (line[0] <= " " and not line.strip(_BLANK)):
            continue
        if line.count('"') % 2 == 0:
            balanced.append(line)
            balanced_rows.append(row)
        else:
            values = _parse(line)
            if len(values) == width:
                parsed.append(tuple(value or None for value in values))
                parsed_rows.append(row)
            else:
                corrupt.append(line)
                corrupt_rows.append(row)
        row += 1
    names = [f"c{position}" for position in range(width)]
    table, invalid = _read_balanced(balanced, names)
    kept = [row for number, row in enumerate(balanced_rows) if number not in invalid]
    corrupt += [balanced[number] for number in sorted(invalid)]
    corrupt_rows += [balanced_rows[number] for number in sorted(invalid)]
    arrays = {}
    for name in field_names():
        position = columns.index(name)
        values = [row[position] for row in parsed]
        arrays[name] = pa.concat_arrays(
            [
                table.column(names[position]).combine_chunks().cast(pa.string()),
                pa.array(values, pa.string()),
                pa.nulls(len(corrupt), pa.string()),
            ]
        )
    arrays[CORRUPT_RECORD] = pa.concat_arrays(
        [pa.nulls(len(kept) + len(parsed), pa.string()), pa.array(corrupt, pa.string())]
    )
    arrays[ROW] = pa.array([*kept, *parsed_rows, *corrupt_rows], pa.int64())
    return pa.table(arrays)


def _read_balanced(lines: list[str], names: list[str]) -> tuple[pa.Table, set[int]]:
    """Arrow's reading of ``lines`` (one record each); which of them (by position) had another width."""
    invalid: set[int] = set()
    if not lines:
        return pa.table({name: pa.array([], pa.string()) for name in names}), invalid

    def refuse(row: pa_csv.InvalidRow) -> str:
        invalid.add(row.number - 1)  # numbers count from 1, over the lines given
        return "skip"

    table = pa_csv.read_csv(
        io.BytesIO("\n".join(lines).encode("utf-8")),
        read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 26),
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
    return table, invalid


def _parse(line: str) -> list[str]:
    try:
        return next(csv.reader((line,)), [])
    except csv.Error:
        return []

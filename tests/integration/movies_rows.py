"""Hand-made rows of ``movies.csv`` for the transform's tests: one good movie, and changes to it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from shared.schema import GENRES, field_names

GOOD = {
    "title": "Good Movie",
    "year": "1999",
    "length": "100",
    "budget": "NA",
    "rating": "7.5",
    "votes": "1000",
    **{f"r{n}": "4.5" for n in range(1, 11)},
    "mpaa": "",
    **dict.fromkeys(GENRES, "0"),
}


def movie(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


def write_csv(path: Path, rows: list[dict[str, str] | str], header: list[str] | None = None) -> Path:
    """movies.csv with the record's header; a ``str`` row is written as the raw line it is."""
    header = header or field_names()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        if isinstance(row, str):
            buffer.write(row + "\n")
        else:
            writer.writerow([row.get(name, "") for name in header])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path

"""Query results as a person or a program reads them: CSV, and JSON objects keyed by column name."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

FORMATS = ("table", "csv", "json")


def json_value(value: Any) -> Any:
    """A warehouse value as JSON has it: numbers as numbers, times as ISO 8601 text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def as_json(columns: list[str], rows: list[tuple]) -> str:
    """A list of objects, one per row, keyed by the upper-case column names."""
    keys = [column.upper() for column in columns]
    records = [dict(zip(keys, (json_value(value) for value in row), strict=True)) for row in rows]
    return json.dumps(records, indent=2, default=str)


def as_csv(columns: list[str], rows: list[tuple]) -> str:
    """A header row and one record per row; NULL is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow("" if value is None else json_value(value) for value in row)
    return buffer.getvalue()

"""``moviepipe query --format csv|json``: what a program reading the result gets."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal

from moviepipe.output import as_csv, as_json

COLUMNS = ["title", "YEAR", "rating", "budget", "valid_to"]
ROWS = [
    ("Titanic", Decimal("1997"), 6.9, Decimal("200000000"), datetime(9999, 12, 31)),
    ('The "Best", Movie', Decimal("2001"), Decimal("7.25"), None, datetime(2026, 1, 1, 10, 30)),
]


def test_json_is_a_list_of_objects_keyed_by_upper_case_column_names():
    records = json.loads(as_json(COLUMNS, ROWS))
    assert records == [
        {
            "TITLE": "Titanic",
            "YEAR": 1997,
            "RATING": 6.9,
            "BUDGET": 200000000,
            "VALID_TO": "9999-12-31T00:00:00",
        },
        {
            "TITLE": 'The "Best", Movie',
            "YEAR": 2001,
            "RATING": 7.25,
            "BUDGET": None,
            "VALID_TO": "2026-01-01T10:30:00",
        },
    ]


def test_json_of_no_rows_is_an_empty_list():
    assert json.loads(as_json(COLUMNS, [])) == []


def test_csv_has_a_header_quotes_what_needs_it_and_leaves_null_empty():
    header, *records = list(csv.reader(io.StringIO(as_csv(COLUMNS, ROWS))))
    assert header == COLUMNS
    assert records[1] == ['The "Best", Movie', "2001", "7.25", "", "2026-01-01T10:30:00"]
    assert records[0][1] == "1997" and records[0][3] == "200000000"

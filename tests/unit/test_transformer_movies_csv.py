"""``movies.csv`` as the DuckDB engine reads it: one record a line, whatever parser reads the line."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from services.transformer import movies_csv
from services.transformer.movies_csv import read_lines
from shared.schema import field_names
from shared.transform import CORRUPT_RECORD, ROW


def _line(number: int, title: str = "Movie") -> str:
    """A record as the extractor writes it: the title has a comma, so it is quoted."""
    values = dict.fromkeys(field_names(), "")
    values.update(title=f"{title} {number}, the sequel", year="1999", votes=str(number))
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values[name] for name in field_names())
    return out.getvalue()


@pytest.mark.parametrize(
    "bad",
    [
        ["too,few", '"open,1999', _line(0) + ",surplus"],
        # Quotes that pair up but leave a value open: Arrow would read on into the next lines.
        ["too,few", '"open,1999', 'Say "Hi,1999,"R', _line(0) + ",surplus"],
    ],
    ids=["wrong-width-and-open-quote", "and-a-value-left-open"],
)
def test_records_keep_their_place_across_blocks_with_bad_and_blank_lines_among_them(
    tmp_path, monkeypatch, bad
):
    # GIVEN a file of many Arrow blocks (small ones here), with lines of the wrong width, lines left in
    # an open quote, and blank lines scattered; \r\n line ends
    monkeypatch.setattr(movies_csv, "ARROW_BLOCK_BYTES", 4096)
    rng = random.Random(3)
    good = [_line(number) for number in range(3000)]
    body: list[str] = []
    for line in good:
        body.append(line)
        if rng.random() < 0.02:
            body.append(rng.choice(bad))
        if rng.random() < 0.01:
            body.append(rng.choice(["", "   ", "\t"]))
    path = tmp_path / "movies.csv"
    path.write_bytes(("\r\n".join([",".join(field_names()), *body]) + "\r\n").encode())
    # WHEN
    table = read_lines(path)
    # THEN every record is there once, in file order and numbered so; the bad lines are kept whole
    expected = [line for line in body if line.strip()]
    rows = table.to_pylist()
    assert [row[ROW] for row in rows] == list(range(len(expected)))
    for row, line in zip(rows, expected, strict=True):
        if line in bad:
            assert row[CORRUPT_RECORD] == line and row["title"] is None
        else:
            assert row[CORRUPT_RECORD] is None
            assert (row["title"], row["votes"]) == tuple(next(csv.reader([line]))[:6:5])
            assert row["mpaa"] is None  # empty is null


def test_a_file_that_is_not_utf8_is_read_with_replacement_characters(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes(
        (",".join(field_names()) + "\n").encode() + _line(1).replace("Movie", "Caf\xe9").encode("latin-1")
    )
    (row,) = read_lines(path).to_pylist()
    assert row["title"] == "Caf\ufffd 1, the sequel"


def test_a_header_alone_is_no_records(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text(",".join(field_names()) + "\n")
    assert read_lines(path).num_rows == 0


def test_blank_lines_are_skipped_and_do_not_count(tmp_path: Path):
    path = tmp_path / "movies.csv"
    path.write_text("\n".join([",".join(field_names()), "", " \t ", _line(5), "\x0b", _line(6)]) + "\n")
    rows = read_lines(path).to_pylist()
    assert [(row[ROW], row["votes"]) for row in rows] == [(0, "5"), (1, "6")]

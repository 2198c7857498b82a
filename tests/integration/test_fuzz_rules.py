"""Fuzzing the cleansing rules (issue 11): every row of a generated batch ends in exactly one of clean,
rejects and duplicates, on both engines, and the engines agree on the batch row by row.

Batches mix good movies with each field's edge cases (missing markers, whitespace, thousands separators,
other spellings of whole numbers, huge, negative and non-numeric numbers, MPAA spellings, booleans,
Unicode, quotes and commas) and repeat titles and years, so that rejects and duplicates are common.
A Spark run costs a second or more, so each property sees a few batches of up to 40 rows.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.keys import movie_key
from shared.rejects import Reason
from shared.schema import MOVIE_FIELDS, field_names
from tests.integration.conftest import run_engine
from tests.integration.movies_rows import GOOD, movie, write_csv

pytestmark = pytest.mark.integration

EXTRACTED_AT = "2026-06-01T00:00:00+00:00"

# The engine fixture is function-scoped, but each of its runs writes to files of its own (movies-<n>.csv,
# out-<n>/), so one fixture serves every example of a test.
FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- strategies ---------------------------------------------------------------------------------------

UNICODE = st.characters(exclude_categories=("Cs",), exclude_characters="\r\n")
"""Any character a value may hold: UTF-8, and no line break (a line of movies.csv is a record)."""
KEYED_ALIKE = UNICODE.filter(lambda ch: unicodedata.ucd_3_2_0.category(ch) != "Cn")
"""Characters of a title that every engine keys alike: those of Unicode 3.2, whose properties the JVM's,
RE2's, DuckDB's and Python's tables share ("İ" and "Σ", which they lower apart, are settled first by
shared.keys)."""

MISSING = st.sampled_from(["", "NA", " ", "  NA  ", "na", "N/A", "\t", "null"])
NOISE = st.sampled_from(
    ["abc", "1,5", "1.000", "१२३", "٣", 'a "quoted", value', "x,y", "—", "🎬", "NaN", "Infinity", "-1e400"]
) | st.text(UNICODE, max_size=8)
INTEGERS = (
    st.integers(min_value=-(10**4), max_value=10**10).map(str)
    | st.sampled_from(["1,000", "1,000,000", "12,345", "1e3", "1e+03", "1E3", "120.0", "+2500", " 42 "])
    | st.sampled_from(["1,0000", "90.5", ".5", "1.", "0x10", "1_000", "-3", "0"])
    | st.sampled_from(["99999999999999999999", "9223372036854775807", "9223372036854775808", "1e400"])
)
"""Whole numbers: plain, in other spellings, near misses, and at and past the edge of 64 bits."""
# Not a number between 0 and 0.001: the engines write those differently (the xfail test at the end).
NUMBERS = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda number: number == 0 or abs(number) >= 0.001
).map(str) | st.sampled_from(
    ["7.5", "0.5", "1", "10", "11", "1e-3", "1,000.5", "-0.0", "4.50", "1e308", "1e309", "+.5", "5e"]
)
BOOLEANS = st.sampled_from(["1", "0", "true", "FALSE", "Yes", "no", " yes ", "maybe", "t", "y", "2", "-1"])
MPAA = st.sampled_from(
    ["G", "PG", "PG-13", "pg-13", "PG13", "PG 13", " r ", "NC17", "nc-17", "g"]
) | st.sampled_from(["Not Rated", "Unrated", "NR", "Approved", "TV-MA", "X", "M", "Z", "PG-13!", "P G"])
"""Spellings of today's five MPAA ratings, then of none of them (or of nothing known)."""
TITLES = (
    st.sampled_from(["Foo", "foo!", "FOO", "The Big Sleep", "  The   Big\tSleep ", "the big sleep", "Amélie"])
    | st.sampled_from(
        ["Foo 2", "Amelie", 'Foo, "The"', "Pilot #5", "東京物語", "#", '"', "x,y", "NA", "", " "]
    )
    | st.text(KEYED_ALIKE, max_size=12)
)
"""Titles from short lists (so that movies repeat: duplicates, some spelled differently), or any text."""
YEARS = st.sampled_from(["1999", "2000", "2001"])

KIND_VALUES = {"integer": INTEGERS, "number": NUMBERS, "boolean": BOOLEANS, "string": st.text(UNICODE)}
VALUES = {
    field.name: MISSING
    | NOISE
    | (MPAA if field.enum else TITLES if field.name == "title" else KIND_VALUES[field.kind])
    for field in MOVIE_FIELDS
}
"""Each field's values: its missing markers, noise, and values of its kind (valid or nearly so)."""


@st.composite
def movie_rows(draw: st.DrawFn) -> dict[str, str]:
    """A good movie of a repeated title and year, with up to four fields changed to any of their values."""
    row = movie(
        title=draw(TITLES),
        year=draw(YEARS),
        votes=draw(st.sampled_from(["10", "10", "50", "1,000"])),
        rating=draw(st.sampled_from(["5", "6.5", "7.5"])),
    )
    for name in draw(st.lists(st.sampled_from(field_names()), max_size=4, unique=True)):
        row[name] = draw(VALUES[name])
    return row


BLANK = "".join(chr(code) for code in range(33))
"""What a line may hold and still be blank (no row) to the engines' readers."""
MALFORMED_LINES = st.sampled_from(
    ["Short Row,1999,100", ",".join(GOOD.values()) + ",surplus", '"Open,1999', 'x,"y', '"']
) | st.lists(
    st.text(st.characters(codec="utf-8", exclude_characters='\r\n,"'), max_size=6), min_size=1, max_size=30
).filter(lambda values: len(values) != len(MOVIE_FIELDS)).map(",".join).filter(lambda line: line.strip(BLANK))
"""Lines written as they are: too few or too many columns, or a quote left open."""

BATCHES = st.lists(movie_rows() | MALFORMED_LINES, min_size=1, max_size=40).filter(
    lambda rows: any(isinstance(row, dict) for row in rows)
)


def assert_every_row_went_one_way(output, rows: list) -> None:
    """Clean rows, rejects and duplicates account for every row of the batch, each once."""
    counts = output.counts
    assert counts.extracted == len(rows)
    assert counts.clean + counts.rejected + counts.duplicates == counts.extracted
    assert (len(output.clean), len(output.rejects)) == (counts.clean, counts.rejected)
    # Each reject names a reason of its own, the field it failed on, and the row as it arrived.
    arrived = [
        {"_line": row} if isinstance(row, str) else {name: row[name] or None for name in field_names()}
        for row in rows
    ]
    for reject in output.rejects:
        assert reject["reason"] in {reason.value for reason in Reason}
        if reject["reason"] == Reason.MALFORMED_ROW:
            assert reject["field"] == ""
        else:
            assert reject["field"] in field_names()
        assert reject["detail"]
        assert json.loads(reject["record"]) in arrived
    # Clean rows are one per movie, keyed by the shared rule.
    keys = [row["movie_key"] for row in output.clean]
    assert len(set(keys)) == len(keys)
    assert keys == [movie_key(row["title"], int(row["year"])) for row in output.clean]


# -- conservation, per engine ---------------------------------------------------------------------------


@FUZZ
@given(rows=BATCHES)
def test_every_row_of_a_batch_ends_clean_rejected_or_a_duplicate_exactly_once(engine, rows):
    # GIVEN a batch of good, broken and repeated movies, and malformed lines
    # WHEN the engine transforms it
    output = engine(rows, extracted_at=EXTRACTED_AT)
    # THEN every row went exactly one way
    assert_every_row_went_one_way(output, rows)


# -- parity ----------------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=10)
@given(rows=BATCHES)
def test_the_engines_agree_row_by_row_on_any_batch(spark, rows):
    # GIVEN a batch of good, broken and repeated movies, and malformed lines
    with tempfile.TemporaryDirectory(prefix="fuzz-rules-") as directory:
        movies = write_csv(Path(directory) / "movies.csv", rows)
        # WHEN both engines transform it
        spark_output, duckdb_output = (
            run_engine(
                name,
                spark,
                movies,
                Path(directory) / name,
                expected_rows=len(rows),
                extracted_at=EXTRACTED_AT,
            )
            for name in ("spark", "duckdb")
        )
    # THEN they keep the same rows, refuse the same rows for the same reason, and count alike
    assert duckdb_output.clean == spark_output.clean
    assert duckdb_output.rejects == spark_output.rejects
    assert duckdb_output.counts == spark_output.counts
    assert duckdb_output.movies_bytes == spark_output.movies_bytes
    assert duckdb_output.rejects_bytes == spark_output.rejects_bytes


# -- where the engines part: each found by the properties above, left out of them while it stands ---------


@pytest.mark.parametrize(
    "title",
    [
        "İstanbul",  # settled before lower-casing (shared.keys): DuckDB, Java and Python lower it apart
        "ΟΔΥΣΣΕΑΣ",  # a final sigma: DuckDB has no final-sigma rule
        pytest.param(
            "\ua7c0",
            marks=pytest.mark.xfail(
                strict=True,
                reason="Spark (Java 17: Unicode 13) does not know letters added since ('Ꟁ', U+A7C0, and "
                "some 4,900 others) and folds them to a space; DuckDB and Python keep them",
            ),
        ),
        "Amélie",
    ],
)
def test_a_title_gets_the_same_key_from_both_engines_and_the_shared_rule(spark, tmp_path, title):
    # GIVEN a movie whose title is outside ASCII
    movies = write_csv(tmp_path / "movies.csv", [movie(title=title)])
    # WHEN both engines transform it
    keys = {
        name: [
            row["movie_key"]
            for row in run_engine(name, spark, movies, tmp_path / name, expected_rows=1).clean
        ]
        for name in ("spark", "duckdb")
    }
    # THEN both key it as shared.keys does: the same movie has the same key whichever engine ran
    assert keys == {"spark": [movie_key(title, 1999)], "duckdb": [movie_key(title, 1999)]}


@pytest.mark.xfail(
    strict=True,
    reason="Spark writes a double below 0.001 in Java's notation, DuckDB in its own: r1 '0.0001' is "
    "'1.0E-4' in Spark's archive and '0.0001' in DuckDB's ('1e-5': '1.0E-5' and '1e-05')",
)
def test_a_share_below_a_thousandth_is_written_alike_by_both_engines(spark, tmp_path):
    # GIVEN a movie with a tiny share of votes
    movies = write_csv(tmp_path / "movies.csv", [movie(r1="0.0001")])
    # WHEN both engines transform it
    spark_output, duckdb_output = (
        run_engine(name, spark, movies, tmp_path / name, expected_rows=1) for name in ("spark", "duckdb")
    )
    # THEN the archives say the same
    assert duckdb_output.movies_bytes == spark_output.movies_bytes

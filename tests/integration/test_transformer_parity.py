"""Parity: the Spark engine and the DuckDB engine give the same archive, row by row, for the same input.

On the bundled IMDb sample (58,788 real movies) and on a generated corpus of dirty rows that breaks
every rule and needs every normalisation at least once.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from services.transformer.archive import collect_parts, null_counts
from shared.keys import movie_key
from shared.rejects import Reason
from shared.schema import ENRICHED_FIELDS, GENRES, MOVIE_FIELDS, field_names
from tests.integration.conftest import run_engine
from tests.integration.movies_rows import GOOD, movie, write_csv

pytestmark = pytest.mark.integration

EXTRACTED_AT = "2026-06-01T00:00:00+00:00"

# Each change alone breaks one rule or needs one normalisation; the corpus uses every one.
CHANGES: list[dict[str, str]] = [
    {"title": ""},
    {"title": "NA"},
    {"year": ""},
    {"year": "19x5"},
    {"year": "1850"},
    {"year": "2030"},
    {"year": "2029"},
    {"year": "1,999"},
    {"length": "90.5"},
    {"length": "0"},
    {"length": "7000"},
    {"length": "120.0"},
    {"length": ""},
    {"length": "142 min"},
    {"length": "2h 22min"},
    {"budget": "$28,767,189"},
    {"budget": "USD 5"},
    {"rating": "N/A"},
    {"budget": "1,000,000"},
    {"budget": "1,5"},
    {"budget": "-1"},
    {"budget": "99999999999999999999"},
    {"budget": "1e400"},
    {"rating": "11"},
    {"rating": "0.5"},
    {"rating": "NaN"},
    {"rating": "Infinity"},
    {"rating": "NA"},
    {"votes": "-3"},
    {"votes": "1e+03"},
    {"votes": "12,345"},
    {"votes": " "},
    {"r3": "101"},
    {"r4": "abc"},
    {"mpaa": "PG13"},
    {"mpaa": "pg-13"},
    {"mpaa": "Not Rated"},
    {"mpaa": "Unrated"},
    {"mpaa": "NR"},
    {"mpaa": "Approved"},
    {"mpaa": "X"},
    {"mpaa": "Z"},
    {"mpaa": " r "},
    {"action": "maybe"},
    {"comedy": "Yes"},
    {"drama": "FALSE"},
    {"short": "no"},
    {"romance": ""},
    {"title": "  The   Big\tSleep "},
    {"title": "Amélie"},
    {"title": 'Foo, "The"'},
    {"title": "Pilot #5"},
    {"title": "東京物語"},
]
MALFORMED = [
    "Short Row,1999,100",
    ",".join(GOOD[name] for name in field_names()) + ",surplus",
    '"Open,1999',
    # Its quotes pair up, yet one opens a value that the line never closes: the first is a character.
    ",".join({**GOOD, "title": 'Say "Hi', "mpaa": '"R'}[name] for name in field_names()),
]


def dirty_corpus(rows: int = 600, seed: int = 8) -> list[dict[str, str] | str]:
    """Every change once, then random mixes of up to three, with repeated titles (duplicates) and
    malformed lines scattered through."""
    rng = random.Random(seed)
    corpus: list[dict[str, str] | str] = [
        {**movie(title=f"Change {n}"), **change} for n, change in enumerate(CHANGES)
    ]
    corpus += [movie(**change) for change in CHANGES if "title" in change]  # same title, other rules
    titles = [f"Movie {n}" for n in range(rows // 4)]  # about four rows a title: duplicates aplenty
    for _ in range(rows):
        row = movie(
            title=rng.choice(titles) if rng.random() < 0.9 else rng.choice(titles).upper(),
            year=str(rng.choice([1999, 2000, 2001])),
            votes=str(rng.randint(0, 30)),
            rating=str(rng.choice([5, 6.5, 7.5])),
            length=str(rng.choice([90, 100])),
        )
        for change in rng.sample(CHANGES, rng.randint(0, 3)):
            row.update(change)
        corpus.append(row)
        if rng.random() < 0.02:
            corpus.append(rng.choice(MALFORMED))
    return corpus


def both_engines(spark, movies: Path, tmp_path: Path, rows: int):
    return [
        run_engine(name, spark, movies, tmp_path / name, expected_rows=rows, extracted_at=EXTRACTED_AT)
        for name in ("spark", "duckdb")
    ]


def assert_same_archive(spark_output, duckdb_output) -> None:
    # Row by row first, for a readable difference; then byte for byte, which is what the loader sees.
    for got, expected in zip(duckdb_output.clean, spark_output.clean, strict=True):
        assert got == expected
    for got, expected in zip(duckdb_output.rejects, spark_output.rejects, strict=True):
        assert got == expected
    assert duckdb_output.counts == spark_output.counts
    assert duckdb_output.movies_bytes == spark_output.movies_bytes
    assert duckdb_output.rejects_bytes == spark_output.rejects_bytes
    nulls = [null_counts(collect_parts(output.directory)) for output in (spark_output, duckdb_output)]
    assert nulls[0] == nulls[1]


def test_the_engines_agree_row_by_row_on_a_corpus_breaking_every_rule(spark, tmp_path):
    # GIVEN the dirty corpus
    corpus = dirty_corpus()
    movies = write_csv(tmp_path / "movies.csv", corpus)
    # WHEN both engines transform it
    spark_output, duckdb_output = both_engines(spark, movies, tmp_path, len(corpus))
    # THEN they agree on every row, and the corpus did exercise every reason and every outcome
    assert_same_archive(spark_output, duckdb_output)
    assert {r["reason"] for r in spark_output.rejects} == {reason.value for reason in Reason}
    fields = {r["field"] for r in spark_output.rejects}
    assert {"title", "year", "length", "budget", "rating", "votes", "r3", "r4", "mpaa", "action"} <= fields
    counts = spark_output.counts
    assert counts.clean > 0 and counts.duplicates > 0 and counts.conserved
    assert {row["mpaa"] for row in spark_output.clean} >= {"PG-13", "R", ""}


def test_the_engines_agree_row_by_row_on_the_imdb_sample(spark, imdb_movies_csv, tmp_path):
    # GIVEN the bundled 58,788 IMDb movies
    # WHEN both engines transform them
    spark_output, duckdb_output = both_engines(spark, imdb_movies_csv, tmp_path, 58_788)
    # THEN
    assert_same_archive(spark_output, duckdb_output)


def test_the_imdb_sample_is_conserved_and_known_titles_come_out_cleaned(imdb_movies_csv, tmp_path):
    # GIVEN the bundled IMDb movies, WHEN DuckDB transforms them (Spark agrees: the parity test above)
    output = run_engine(
        "duckdb", None, imdb_movies_csv, tmp_path / "out", expected_rows=58_788, extracted_at=EXTRACTED_AT
    )
    # THEN every row went exactly one way
    counts = output.counts
    assert counts.extracted == counts.clean + counts.rejected + counts.duplicates == 58_788
    assert (counts.rejected, counts.duplicates) == (0, 3)
    # AND known movies come out as IMDb lists them, typed and keyed
    by_key = {row["movie_key"]: row for row in output.clean}
    titanic = by_key[movie_key("Titanic", 1997)]
    assert (titanic["title"], titanic["length"], titanic["budget"], titanic["rating"]) == (
        "Titanic",
        "194",
        "200000000",
        "6.9",
    )
    assert (titanic["votes"], titanic["mpaa"], titanic["mpaa_original"]) == ("90195", "PG-13", "PG-13")
    assert (titanic["drama"], titanic["romance"], titanic["action"]) == ("true", "true", "false")
    casablanca = by_key[movie_key("Casablanca", 1942)]
    assert (casablanca["budget"], casablanca["mpaa"], casablanca["mpaa_original"]) == ("950000", "", "")
    star_wars = by_key[movie_key("Star Wars", 1977)]
    assert (star_wars["mpaa"], star_wars["action"], star_wars["votes"]) == ("PG", "true", "134640")
    # AND the clean rows' nulls are counted per column: most IMDb movies have no budget or MPAA rating
    nulls = null_counts(collect_parts(output.directory))
    enriched = {f.name for f in ENRICHED_FIELDS}
    assert set(nulls) == {
        "movie_key",
        *(f.name for f in MOVIE_FIELDS),
        "mpaa_original",
        *enriched,
        "extract_id",
    }
    assert nulls["budget"] == 53_570 and nulls["mpaa"] == nulls["mpaa_original"] == 53_861
    assert all(nulls[name] == 0 for name in ("title", "year", "rating", "votes", *GENRES))
    assert nulls["budget_band"] == nulls["budget"] and nulls["runtime_band"] == nulls["length"] == 0
    assert nulls["decade"] == nulls["weighted_rating"] == 0
    assert (
        nulls["genres"]
        == nulls["primary_genre"]
        == sum(1 for row in output.clean if not any(row[genre] == "true" for genre in GENRES))
    )
    # AND known movies are enriched: genres, decade, bands, and the weighted rating computed here
    # independently, m = 1,000 votes and C the mean rating of the kept movies
    mean = sum(float(row["rating"]) for row in output.clean) / len(output.clean)
    for movie_row, expected in (
        (titanic, ("drama|romance", "romance", "1990", "over 150 min", "$100M or more")),
        (casablanca, ("drama|romance", "romance", "1940", "91-120 min", "under $1M")),
        (star_wars, ("action", "action", "1970", "121-150 min", "$10M-$50M")),
    ):
        enrichment = ("genres", "primary_genre", "decade", "runtime_band", "budget_band")
        assert tuple(movie_row[name] for name in enrichment) == expected
        votes, rating = int(movie_row["votes"]), float(movie_row["rating"])
        weighted = (votes * rating + 1000 * mean) / (votes + 1000)
        assert abs(float(movie_row["weighted_rating"]) - weighted) <= 0.0005 + 1e-9

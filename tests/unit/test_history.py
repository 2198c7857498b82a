"""``moviepipe history``: its SQL as text, how a title is matched, and what a user sees (no warehouse)."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from typer.testing import CliRunner

from moviepipe import cli, history
from moviepipe.history import (
    COLUMNS,
    VERSION_COLUMNS,
    MovieHistory,
    is_movie_key,
    movies_by_key_sql,
    movies_by_title_sql,
    same_title,
    table_view,
    title_pattern,
    versions_sql,
)
from shared.keys import movie_key, normalise_title
from shared.schema import GENRES
from tests.conftest import free_port

OPEN = datetime(9999, 12, 31)
DAY1, DAY2 = datetime(2026, 11, 1, 12), datetime(2026, 11, 2, 12)


def version(number: int, change: str, mpaa: str, valid_from: datetime, valid_to: datetime, **genres) -> tuple:
    """A version as ``versions_sql`` returns it."""
    values = {
        "VERSION": number,
        "VALID_FROM": valid_from,
        "VALID_TO": valid_to,
        "IS_CURRENT": valid_to == OPEN,
        "IS_DELETED": False,
        "CHANGE": change,
        "LENGTH": 194,
        "BUDGET": 200_000_000,
        "MPAA": mpaa,
        **{genre.upper(): genres.get(genre, False) for genre in GENRES},
        "SOURCE": "imdb",
        "OPENED_BY_EXTRACT": f"extract-{number}",
    }
    assert list(values) == list(VERSION_COLUMNS)
    return tuple(values.values())


TITANIC_1997 = MovieHistory(
    movie_key("Titanic", 1997),
    "Titanic",
    1997,
    [
        version(1, "first seen", "PG-13", DAY1, DAY2, drama=True, romance=True),
        version(2, "changed: mpaa", "R", DAY2, OPEN, drama=True, romance=True),
    ],
)
TITANIC_1953 = MovieHistory(
    movie_key("Titanic", 1953), "Titanic", 1953, [version(1, "first seen", None, DAY1, OPEN, drama=True)]
)


def like(pattern: str, text: str) -> bool:
    """SQL ``LIKE`` (only ``%`` is used here), to check patterns without a warehouse."""
    regex = ".*".join(re.escape(part) for part in pattern.split("%"))
    return re.fullmatch(regex, text, re.DOTALL) is not None


# -- the SQL ----------------------------------------------------------------------------------------------
def test_every_version_of_one_movie_is_read_from_the_history_view_by_a_bound_key_oldest_first():
    # WHEN the statement for a database is built
    sql = versions_sql("T_ABC")

    # THEN it is this text: the key is a parameter, never formatted in
    assert sql == (
        "SELECT VERSION, VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED, CHANGE, LENGTH, BUDGET, MPAA, "
        "ACTION, ANIMATION, COMEDY, DRAMA, DOCUMENTARY, ROMANCE, SHORT, SOURCE, OPENED_BY_EXTRACT "
        "FROM T_ABC.ANALYTICS.V_MOVIE_HISTORY\n"
        "WHERE MOVIE_KEY = %(movie_key)s\n"
        "ORDER BY VERSION"
    )


def test_movies_are_found_among_current_versions_by_bound_key_or_title_pattern():
    # WHEN the look-up statements are built
    by_key, by_title = movies_by_key_sql("MOVIES"), movies_by_title_sql("MOVIES")

    # THEN each names the movie from its current version in DIM_MOVIE (one per movie), binding what was typed
    assert by_key == (
        "SELECT MOVIE_KEY, TITLE, YEAR FROM MOVIES.ANALYTICS.DIM_MOVIE\n"
        "WHERE IS_CURRENT AND MOVIE_KEY = %(movie_key)s"
    )
    assert by_title == (
        "SELECT MOVIE_KEY, TITLE, YEAR FROM MOVIES.ANALYTICS.DIM_MOVIE\n"
        "WHERE IS_CURRENT AND LOWER(TITLE) LIKE %(pattern)s\n"
        "ORDER BY YEAR, MOVIE_KEY"
    )


@pytest.mark.parametrize("build", [versions_sql, movies_by_key_sql, movies_by_title_sql])
def test_a_database_name_that_is_not_a_plain_identifier_is_refused(build):
    with pytest.raises(ValueError, match="not a plain Snowflake identifier"):
        build("MOVIES.ANALYTICS.X; DROP TABLE Y --")


# -- matching a title ---------------------------------------------------------------------------------
def test_a_movie_key_is_told_from_a_title():
    assert is_movie_key(movie_key("Titanic", 1997))
    assert not is_movie_key("Titanic")
    assert not is_movie_key(movie_key("Titanic", 1997)[:15])
    assert not is_movie_key(movie_key("Titanic", 1997) + "0")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("star wars", "Star Wars"),
        ("Crouching Tiger Hidden Dragon", "Crouching Tiger, Hidden Dragon"),
        ('the "best" movie!', "The Best Movie"),
        ("am\u00e9lie", "Am\u00e9lie"),
        ("$", "$"),
        ("[Rec]", "[REC]"),
    ],
)
def test_the_title_pattern_lets_through_every_stored_title_that_normalises_the_same(typed, stored):
    # GIVEN a title typed differently from how the warehouse stores it, the same to the movie key
    assert normalise_title(typed) == normalise_title(stored)

    # WHEN the LIKE prefilter is built from what was typed
    pattern = title_pattern(typed)

    # THEN the stored title passes it, and the exact match keeps it
    assert like(pattern, stored.lower())
    assert same_title([("k", stored, 2000)], typed) == [("k", stored, 2000)]


def test_the_exact_match_drops_titles_that_only_contain_the_words():
    # GIVEN candidates the LIKE prefilter let through for "Titanic"
    candidates = [("a", "Titanic", 1997), ("b", "Titanic II", 2010), ("c", "Raise the Titanic", 1980)]
    assert all(like(title_pattern("Titanic"), title.lower()) for _, title, _ in candidates)

    # WHEN the normalised titles are compared
    kept = same_title(candidates, "TITANIC")

    # THEN only the movie titled "Titanic" is kept
    assert kept == [("a", "Titanic", 1997)]


# -- what a user sees ---------------------------------------------------------------------------------
def test_for_a_person_each_version_is_a_column_and_the_genre_flags_one_row_of_names():
    # WHEN the 1997 Titanic's two versions are laid out for a terminal
    columns, rows = table_view(TITANIC_1997)

    # THEN the versions are columns, oldest first, so that what changed reads along one row
    assert columns == ["VERSION", "1", "2"]
    by_name = {row[0]: row[1:] for row in rows}
    assert list(by_name) == [
        "VALID_FROM",
        "VALID_TO",
        "IS_CURRENT",
        "IS_DELETED",
        "CHANGE",
        "LENGTH",
        "BUDGET",
        "MPAA",
        "GENRES",
        "SOURCE",
        "OPENED_BY_EXTRACT",
    ]
    assert by_name["CHANGE"] == ("first seen", "changed: mpaa")
    assert by_name["MPAA"] == ("PG-13", "R")
    assert by_name["VALID_TO"] == (DAY2, OPEN) and by_name["IS_CURRENT"] == (False, True)
    assert by_name["GENRES"] == ("drama, romance", "drama, romance")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def found(monkeypatch):
    """``find_histories`` answers with the given histories, recording what it was asked."""
    asked: list[str] = []

    def answer(*histories: MovieHistory) -> list[str]:
        def find(settings, movie):
            asked.append(movie)
            return list(histories)

        monkeypatch.setattr(history, "find_histories", find)
        return asked

    return answer


def test_two_movies_of_one_title_each_print_under_their_title_and_year(runner, found):
    # GIVEN two movies titled Titanic, the 1997 one with two versions
    asked = found(TITANIC_1953, TITANIC_1997)

    # WHEN a user asks for the history of "titanic"
    result = runner.invoke(cli.app, ["history", "titanic"])

    # THEN each movie is headed by its title, year and key, its versions oldest first
    assert result.exit_code == 0, result.output
    assert asked == ["titanic"]
    out = result.stdout
    assert out.index(f"Titanic (1953) · {TITANIC_1953.movie_key}") < out.index(
        f"Titanic (1997) · {TITANIC_1997.movie_key}"
    )
    titanic_1997 = out[out.index("(1997)") :]
    assert re.search(r"CHANGE +│ first seen +│ changed: mpaa", titanic_1997)
    assert re.search(r"MPAA +│ PG-13 +│ R ", titanic_1997)
    assert out.index("1 version(s)") < out.index("(1997)") < out.index("2 version(s)")


def test_json_and_csv_give_one_record_per_version_naming_its_movie(runner, found):
    # GIVEN the two Titanics
    found(TITANIC_1953, TITANIC_1997)

    # WHEN a program asks for JSON, and for CSV
    as_json = runner.invoke(cli.app, ["history", "Titanic", "--format", "json"])
    as_csv = runner.invoke(cli.app, ["history", "Titanic", "--format", "csv"])

    # THEN JSON is one object per version keyed by the upper-case columns, times as ISO 8601
    records = json.loads(as_json.stdout)
    assert [(r["YEAR"], r["VERSION"], r["MPAA"], r["CHANGE"]) for r in records] == [
        (1953, 1, None, "first seen"),
        (1997, 1, "PG-13", "first seen"),
        (1997, 2, "R", "changed: mpaa"),
    ]
    assert list(records[0]) == list(COLUMNS)
    assert records[2]["VALID_TO"] == "9999-12-31T00:00:00" and records[2]["IS_CURRENT"] is True
    # AND CSV is a header of those columns and the same three records
    lines = as_csv.stdout.splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 4


def test_a_movie_not_found_is_one_clear_line_naming_what_and_where(runner, found, monkeypatch):
    # GIVEN a warehouse holding no such movie
    found()
    monkeypatch.setenv("MOVIEPIPE_WAREHOUSE_DATABASE", "T_HISTORY")

    # WHEN a user asks for a title, and for a key
    by_title = runner.invoke(cli.app, ["history", "[Rec] 5: The Sequel Nobody Made"])
    key = movie_key("Nothing", 2000)
    by_key = runner.invoke(cli.app, ["history", key])

    # THEN each fails with exit code 1 and one line saying what was looked for, where; no traceback
    assert by_title.exit_code == by_key.exit_code == 1
    assert by_title.stderr == (
        "error: no movie titled '[Rec] 5: The Sequel Nobody Made' in "
        "T_HISTORY.ANALYTICS.V_MOVIE_HISTORY at http://127.0.0.1:8090\n"
    )
    assert by_key.stderr.startswith(f"error: no movie with key {key} or titled '{key}' in T_HISTORY.")
    assert "Traceback" not in by_title.output + by_key.output


def test_a_warehouse_that_does_not_answer_gives_the_same_clean_error_as_query(runner, monkeypatch):
    # GIVEN nothing listening where the warehouse should be
    monkeypatch.setenv("MOVIEPIPE_WAREHOUSE_PORT", str(free_port()))

    # WHEN a user asks for a movie's history, and runs a query
    shown = runner.invoke(cli.app, ["history", "Titanic"])
    queried = runner.invoke(cli.app, ["query", "SELECT 1"])

    # THEN both fail with exit code 1 and the same one-line error naming the warehouse's address
    assert shown.exit_code == queried.exit_code == 1
    assert shown.stderr.startswith("error: WarehouseUnavailable: the warehouse at http://127.0.0.1:")
    assert shown.stderr.split(" did not answer")[0] == queried.stderr.split(" did not answer")[0]
    assert shown.stderr.count("\n") == 1 and "Traceback" not in shown.output


def test_an_unknown_format_is_refused_before_the_warehouse_is_asked(runner, found):
    asked = found(TITANIC_1997)
    result = runner.invoke(cli.app, ["history", "Titanic", "--format", "xml"])
    assert result.exit_code == 2 and "expected one of table, csv, json" in result.stderr
    assert asked == []

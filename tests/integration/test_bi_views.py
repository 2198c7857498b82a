"""The BI views as a BI tool reads them: through ``snowflake-sqlalchemy``, the dialect that Superset and other
SQLAlchemy-based tools connect to Snowflake with, against the warehouse stand-in after two real loads.

A tool first reflects (schemas, views, columns and their types), then runs SELECTs it builds itself; both
are checked here, and the values are checked against the loaded rows so that a broken view fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from snowflake.sqlalchemy import URL

from services.loader.star import MINIMUM_VOTES, OPEN_VALID_TO, UNCLASSIFIED, views
from shared.schema import GENRES
from shared.settings import Settings
from shared.warehouse import LOCAL_TIMEOUTS, connection_parameters
from tests.integration import test_star_schema
from tests.integration.test_star_schema import T0, Archive, changed, ok

pytestmark = pytest.mark.integration

# The star schema tests' fixtures: the clean IMDb rows, and the archive that delivers bundles to the loader.
archive = test_star_schema.archive
imdb_clean = test_star_schema.imdb_clean

VIEW_COLUMNS = {
    "v_movie_history": [
        "movie_key",
        "title",
        "year",
        "version",
        "valid_from",
        "valid_to",
        "is_current",
        "is_deleted",
        "change",
        "length",
        "budget",
        "mpaa",
        *GENRES,
        "source",
        "opened_by_extract",
        "movie_sk",
    ],
    "v_ratings_by_genre_decade": [
        "genre",
        "decade",
        "decade_label",
        "movies",
        "avg_rating",
        "vote_weighted_rating",
        "votes",
    ],
    "v_top_movies": ["rank", "movie_key", "title", "year", "mpaa", "rating", "votes", "weighted_rating"],
    "v_budget_vs_rating": ["movie_key", "title", "year", "decade", "budget", "rating", "votes"],
}
"""What a BI tool sees of each view: the dialect shows Snowflake's upper-case names in lower case."""


def bi_engine(settings: Settings) -> sa.Engine:
    """An engine built as a BI tool builds it: a snowflake:// URL naming database and schema ANALYTICS."""
    parameters = connection_parameters(settings)
    url = URL(
        account=settings.warehouse_account,
        user=settings.warehouse_user,
        password=settings.warehouse_password,
        database=settings.warehouse_database,
        schema="ANALYTICS",
        host=settings.warehouse_host,
        port=settings.warehouse_port,
    )
    # The dialect refuses parameters that change where it connects (protocol) in the URL's query string:
    # they go as connect_args. In Snowflake neither is needed (https on <account>.snowflakecomputing.com).
    local = {name: parameters[name] for name in ("protocol", "session_parameters", *LOCAL_TIMEOUTS)}
    return sa.create_engine(url, connect_args=local)


@pytest.fixture
def loaded(archive: Archive, imdb_clean: list[dict[str, Any]]) -> dict[str, Any]:
    """400 IMDb movies, then a full extract a day later: 3 MPAA ratings changed, one movie gone."""
    first = imdb_clean[:400]
    ok(archive.deliver(archive.publish(first, at=T0)))
    rerated = {i: {"mpaa": "R" if first[i]["mpaa"] != "R" else "PG"} for i in (3, 50, 200)}
    gone = first[77]
    second = [row for row in changed(first, rerated) if row["movie_key"] != gone["movie_key"]]
    ok(archive.deliver(archive.publish(second, at=T0 + timedelta(days=1))))
    return {
        "current": second,
        "rerated": {first[i]["movie_key"] for i in rerated},
        "gone": gone["movie_key"],
    }


@pytest.fixture
def engine(archive: Archive) -> Iterator[sa.Engine]:
    engine = bi_engine(archive.settings)
    yield engine
    engine.dispose()


def read(engine: sa.Engine, sql: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(sql))]


def test_every_view_reflects_with_its_columns_and_types(engine, loaded):
    # GIVEN the star schema loaded twice
    inspector = sa.inspect(engine)

    # WHEN a BI tool lists what ANALYTICS holds, as it does when a data set is added
    found_views = inspector.get_view_names(schema="analytics")
    found_tables = inspector.get_table_names(schema="analytics")

    # THEN it sees every view the loader declares (and nothing it does not expect), and the tables
    declared = {name.split(".")[1].lower() for name in views()}
    assert declared == set(VIEW_COLUMNS), "a new view needs its columns listed here"
    assert set(found_views) == declared
    assert {"dim_movie", "dim_genre", "bridge_movie_genre", "dim_year", "fact_movie_rating"} <= set(
        found_tables
    )
    assert "analytics" in inspector.get_schema_names()

    # AND each view's columns, in order, with types a tool can chart: numbers, text, flags, times
    for view, columns in VIEW_COLUMNS.items():
        reflected = {c["name"]: c["type"] for c in inspector.get_columns(view, schema="analytics")}
        assert list(reflected) == columns, view
        table = sa.Table(view, sa.MetaData(), autoload_with=engine, schema="analytics")
        assert list(table.columns.keys()) == columns, view
    history = {c["name"]: c["type"] for c in inspector.get_columns("v_movie_history", schema="analytics")}
    assert isinstance(history["version"], sa.Numeric) and isinstance(history["title"], sa.String)
    assert isinstance(history["is_current"], sa.Boolean) and isinstance(history["drama"], sa.Boolean)
    assert "TIMESTAMP" in str(history["valid_from"]).upper()
    top = {c["name"]: c["type"] for c in inspector.get_columns("v_top_movies", schema="analytics")}
    assert isinstance(top["weighted_rating"], sa.Float) and isinstance(top["rank"], sa.Numeric)


def test_a_query_the_tool_builds_from_a_reflected_view_runs(engine, loaded):
    # GIVEN V_TOP_MOVIES reflected, as a chart's data set
    top = sa.Table("v_top_movies", sa.MetaData(), autoload_with=engine, schema="analytics")

    # WHEN the tool asks for the ten best and for a count, in SQL the dialect compiles
    with engine.connect() as connection:
        best = connection.execute(sa.select(top.c.rank, top.c.title).order_by(top.c.rank).limit(10)).all()
        (count,) = connection.execute(sa.select(sa.func.count()).select_from(top)).one()

    # THEN it gets them: ten rows ranked from 1, one row per current movie
    assert [rank for rank, _ in best][:1] == [1] and len(best) == 10
    assert count == len(loaded["current"])


def test_each_view_holds_what_its_grain_promises(engine, loaded):
    current = loaded["current"]

    # WHEN every view is read with plain SELECTs
    history = read(engine, "SELECT * FROM V_MOVIE_HISTORY ORDER BY MOVIE_KEY, VERSION")
    versions = read(engine, "SELECT MOVIE_KEY, VALID_FROM, VALID_TO, IS_CURRENT FROM DIM_MOVIE")
    top = read(engine, "SELECT * FROM V_TOP_MOVIES ORDER BY RANK, MOVIE_KEY")
    budget = read(engine, "SELECT * FROM V_BUDGET_VS_RATING")
    genres = read(engine, "SELECT * FROM V_RATINGS_BY_GENRE_DECADE")

    # THEN every one has rows, with the columns a BI tool was told about
    for view, rows in {
        "v_movie_history": history,
        "v_top_movies": top,
        "v_budget_vs_rating": budget,
        "v_ratings_by_genre_decade": genres,
    }.items():
        assert rows and list(rows[0]) == VIEW_COLUMNS[view], view

    # AND V_MOVIE_HISTORY has one row per DIM_MOVIE version, numbered 1.. per movie, oldest first
    assert len(history) == len(versions) == 400 + 3 + 1
    by_movie: dict[str, list[dict[str, Any]]] = {}
    for row in history:
        by_movie.setdefault(row["movie_key"], []).append(row)
    assert all([v["version"] for v in found] == list(range(1, len(found) + 1)) for found in by_movie.values())
    for key in loaded["rerated"]:
        assert [v["change"] for v in by_movie[key]] == ["first seen", "changed: mpaa"]
        assert by_movie[key][0]["valid_to"] == by_movie[key][1]["valid_from"]
    assert [(v["change"], v["is_deleted"]) for v in by_movie[loaded["gone"]]] == [
        ("first seen", False),
        ("missing from a full extract", True),
    ]
    open_versions = [v for v in history if v["is_current"]]
    assert len(open_versions) == 400
    assert {v["valid_to"] for v in open_versions} == {datetime.fromisoformat(OPEN_VALID_TO)}
    assert isinstance(history[0]["valid_from"], datetime) and isinstance(history[0]["is_current"], bool)

    # AND V_TOP_MOVIES ranks the current movies by IMDb's weighted rating, m = MINIMUM_VOTES
    assert len(top) == len(current) and loaded["gone"] not in {row["movie_key"] for row in top}
    assert top[0]["rank"] == 1 and top[0]["weighted_rating"] == max(row["weighted_rating"] for row in top)
    weighted = [row["weighted_rating"] for row in top]
    assert weighted == sorted(weighted, reverse=True)
    mean = sum(row["rating"] for row in current) / len(current)
    source = {row["movie_key"]: row for row in current}
    for row in top:
        votes, rating = source[row["movie_key"]]["votes"], source[row["movie_key"]]["rating"]
        expected = votes / (votes + MINIMUM_VOTES) * rating + MINIMUM_VOTES / (votes + MINIMUM_VOTES) * mean
        assert row["weighted_rating"] == pytest.approx(expected, rel=1e-9)
        assert (row["votes"], row["rating"]) == (votes, rating)

    # AND V_BUDGET_VS_RATING holds exactly the current movies with a budget
    assert all(row["budget"] is not None for row in budget)
    with_budget = {row["movie_key"]: row["budget"] for row in current if row["budget"] is not None}
    assert {row["movie_key"]: row["budget"] for row in budget} == with_budget
    assert all(row["decade"] == row["year"] - row["year"] % 10 for row in budget)

    # AND V_RATINGS_BY_GENRE_DECADE counts each current movie once per genre (unclassified if none)
    expected_groups = Counter(
        (genre, row["year"] - row["year"] % 10)
        for row in current
        for genre in ([g for g in GENRES if row[g]] or [UNCLASSIFIED])
    )
    assert {(row["genre"], row["decade"]): row["movies"] for row in genres} == dict(expected_groups)
    assert all(row["decade_label"] == f"{row['decade']}s" for row in genres)
    assert all(1 <= row["avg_rating"] <= 10 and row["votes"] >= 0 for row in genres)

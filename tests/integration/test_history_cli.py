"""``moviepipe history`` against the warehouse stand-in, after the loader merged two extracts of IMDb rows."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from moviepipe.cli import app
from shared.keys import movie_key, normalise_title
from shared.settings import Settings
from tests.integration import test_star_schema
from tests.integration.test_star_schema import T0, Archive, changed, ok

pytestmark = pytest.mark.integration

# The star schema tests' fixtures: the clean IMDb rows, and the archive that delivers bundles to the loader.
archive = test_star_schema.archive
imdb_clean = test_star_schema.imdb_clean


def moviepipe(settings: Settings, *args: str) -> Any:
    """``moviepipe ARGS`` configured, as a user's shell would configure it, through the environment."""
    env = {
        "MOVIEPIPE_WAREHOUSE_HOST": settings.warehouse_host,
        "MOVIEPIPE_WAREHOUSE_PORT": str(settings.warehouse_port),
        "MOVIEPIPE_WAREHOUSE_DATABASE": settings.warehouse_database,
    }
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def titanic_rerated(archive: Archive, imdb_clean: list[dict[str, Any]]) -> dict[str, Any]:
    """200 IMDb movies and the three Titanics loaded, then again a day later with the 1997 one rated R."""
    titanics = [row for row in imdb_clean if normalise_title(row["title"]) == "titanic"]
    assert [row["year"] for row in titanics] == [1943, 1953, 1997] and titanics[2]["mpaa"] == "PG-13"
    rows = imdb_clean[:200] + titanics
    ok(archive.deliver(archive.publish(rows, at=T0)))
    second = T0 + timedelta(days=1)
    ok(archive.deliver(archive.publish(changed(rows, {len(rows) - 1: {"mpaa": "R"}}), at=second)))
    return {"key": movie_key("Titanic", 1997), "changed_at": second.replace(tzinfo=None)}


def test_a_movie_whose_mpaa_rating_changed_shows_two_versions_and_the_change(archive, titanic_rerated):
    # WHEN a program asks for the 1997 Titanic's history by its key
    result = moviepipe(archive.settings, "history", titanic_rerated["key"], "--format", "json")

    # THEN it gets both versions, oldest first: the first closed where the second, rated R, opens
    assert result.exit_code == 0, result.output
    versions = json.loads(result.stdout)
    assert [(v["VERSION"], v["CHANGE"], v["MPAA"]) for v in versions] == [
        (1, "first seen", "PG-13"),
        (2, "changed: mpaa", "R"),
    ]
    changed_at = titanic_rerated["changed_at"].isoformat()
    assert (versions[0]["VALID_TO"], versions[1]["VALID_FROM"]) == (changed_at, changed_at)
    assert versions[1]["VALID_TO"] == "9999-12-31T00:00:00"
    assert [(v["IS_CURRENT"], v["IS_DELETED"]) for v in versions] == [(False, False), (True, False)]
    assert {(v["MOVIE_KEY"], v["TITLE"], v["YEAR"]) for v in versions} == {
        (titanic_rerated["key"], "Titanic", 1997)
    }
    assert versions[0]["OPENED_BY_EXTRACT"] != versions[1]["OPENED_BY_EXTRACT"]


def test_a_title_finds_every_movie_of_that_title_each_under_its_year(archive, titanic_rerated):
    # WHEN a person asks for the title typed their own way
    result = moviepipe(archive.settings, "history", "  TITANIC! ")

    # THEN the three Titanics print by year, each headed by title, year and key; the 1997 one has two versions
    assert result.exit_code == 0, result.output
    out = result.stdout
    headings = [out.index(f"Titanic ({year}) · {movie_key('Titanic', year)}") for year in (1943, 1953, 1997)]
    assert headings == sorted(headings)
    assert [line.strip() for line in out.splitlines() if "version(s)" in line] == [
        "1 version(s)",
        "1 version(s)",
        "2 version(s)",
    ]
    titanic_1997 = out[headings[2] :]
    assert "first seen" in titanic_1997 and "changed: mpaa" in titanic_1997
    assert "changed" not in out[: headings[2]]


def test_a_title_not_in_the_warehouse_is_one_line_and_exit_code_1(archive, titanic_rerated):
    # WHEN a person asks for a movie that was never loaded
    result = moviepipe(archive.settings, "history", "Titanic II")

    # THEN they are told what was searched for, and where, in one line
    assert result.exit_code == 1
    db = archive.settings.warehouse_database
    assert result.stderr.startswith(
        f"error: no movie titled 'Titanic II' in {db}.ANALYTICS.V_MOVIE_HISTORY at "
    )
    assert result.stderr.count("\n") == 1 and not result.stdout

"""Sources declared in the sources file, extracted through the whole running stack."""

from __future__ import annotations

import time

import httpx
import pytest

from moviepipe.client import ExtractorClient
from services.extractor.sources.scaled import register_source
from shared.aws import client
from shared.warehouse import query
from tests.conftest import POSTGRES_URL
from tests.e2e.conftest import run_cli

pytestmark = pytest.mark.e2e

IMDB_MOVIES = 58_788


@pytest.fixture
def films_source(stack_settings, imdb_postgres, postgres_engine) -> str:
    """A PostgreSQL source declared in the running stack's sources file, one row's budget in words."""
    with postgres_engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {imdb_postgres}.movies ALTER COLUMN budget TYPE text")
        connection.exec_driver_sql(
            f"UPDATE {imdb_postgres}.movies SET budget = 'about a million' WHERE id = 7"
        )
    name = f"films_{imdb_postgres}"
    register_source(
        stack_settings.home / "sources.toml",
        name,
        {"kind": "postgres", "url": POSTGRES_URL, "table": f"{imdb_postgres}.movies", "cursor": "updated_at"},
    )
    return name


def reconciliation(settings, extract_id: str) -> dict:
    columns, rows = query(
        settings,
        "SELECT ROWS_EXTRACTED, ROWS_LOADED, ROWS_REJECTED, ROWS_DUPLICATE, STATUS "
        f"FROM MOVIES.AUDIT.BATCHES WHERE EXTRACT_ID = '{extract_id}'",
    )
    return dict(zip(columns, rows[0], strict=True))


def wait_for_record(settings, extract_id: str, timeout: float = 60) -> dict:
    """The extract's record once a stage has written it (a zip dropped by hand has none at first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{settings.service_url('extractor')}/extracts/{extract_id}")
        if response.status_code == 200 and response.json()["status"] != "running":
            return response.json()
        time.sleep(0.25)
    raise TimeoutError(f"extract {extract_id} was not recorded as finished within {timeout}s")


def test_a_postgres_source_loads_with_its_one_bad_row_rejected(stack_settings, films_source):
    # GIVEN a PostgreSQL source declared while the stack runs
    extractor = ExtractorClient(stack_settings)
    assert films_source in [source["name"] for source in extractor.sources()]
    # WHEN a user extracts it with the CLI, following it through every stage
    result = run_cli(stack_settings, "extract", films_source, "--wait")
    # THEN it is loaded; the row whose budget is words is the one reject, every other row loaded
    assert result.returncode == 0, result.stdout + result.stderr
    [record] = [r for r in extractor.recent() if r["source"] == films_source]
    assert record["status"] == "loaded", record
    counts = reconciliation(stack_settings, record["extract_id"])
    assert counts["STATUS"] == "RECONCILED"
    assert counts["ROWS_EXTRACTED"] == IMDB_MOVIES and counts["ROWS_REJECTED"] == 1
    assert counts["ROWS_LOADED"] + counts["ROWS_DUPLICATE"] == IMDB_MOVIES - 1
    _, rejects = query(
        stack_settings,
        f"SELECT REASON, FIELD FROM MOVIES.AUDIT.REJECTS WHERE EXTRACT_ID = '{record['extract_id']}'",
    )
    assert rejects == [("NOT_A_NUMBER", "budget")]
    # AND the source now shows its high-water mark and last extract
    [shown] = [s for s in extractor.sources() if s["name"] == films_source]
    assert shown["high_water_mark"] == "2026-01-01 16:19:48.000000Z"
    assert shown["last_extract"] == record["extract_id"] and shown["last_status"] == "succeeded"

    # WHEN it is extracted again with nothing new but the row tied at the mark
    again = run_cli(stack_settings, "extract", films_source, "--wait")
    assert again.returncode == 0, again.stdout + again.stderr
    newest = next(r for r in extractor.recent() if r["source"] == films_source)
    # THEN it was incremental: one row read, the rest of the pipeline ran on it
    assert newest["stages"]["extractor"]["extract_kind"] == "incremental"
    assert newest["stages"]["extractor"]["counts"] == {"extracted": 1}

    # WHEN it is extracted with --full-refresh THEN everything is read again
    full = run_cli(stack_settings, "extract", films_source, "--full-refresh", "--wait")
    assert full.returncode == 0, full.stdout + full.stderr
    newest = next(r for r in extractor.recent() if r["source"] == films_source)
    assert newest["stages"]["extractor"]["counts"] == {"extracted": IMDB_MOVIES}
    assert newest["stages"]["extractor"]["extract_kind"] == "full"

    # AND `moviepipe sources` lists it with its cursor
    listed = run_cli(stack_settings, "sources", columns=160)
    assert listed.returncode == 0 and films_source in listed.stdout and "updated_at" in listed.stdout


def test_a_second_extract_of_a_running_source_is_refused_with_409(stack_settings, films_source):
    # GIVEN an extract of the source just requested
    url = f"{stack_settings.service_url('extractor')}/extracts"
    first = httpx.post(url, json={"source": films_source})
    assert first.status_code == 202
    # WHEN another is requested while it runs
    second = httpx.post(url, json={"source": films_source})
    # THEN it is refused, naming the one running; the first still completes
    assert second.status_code == 409
    assert first.json()["extract_id"] in second.json()["detail"]
    record = ExtractorClient(stack_settings).follow(first.json()["extract_id"], lambda _: None, timeout=300)
    assert record["status"] == "loaded"
    # AND once it is done the source can be extracted again
    third = httpx.post(url, json={"source": films_source})
    assert third.status_code == 202
    ExtractorClient(stack_settings).follow(third.json()["extract_id"], lambda _: None, timeout=300)


def test_a_zip_dropped_into_landing_by_hand_is_listed_by_get_extracts(stack_settings):
    # GIVEN a bundle that arrived without a request (here: not even a zip)
    extract_id = "20261127T000000Z-0dd0dd00"
    client("s3", stack_settings).put_object(
        Bucket=stack_settings.bucket("landing"), Key=f"byhand/{extract_id}.zip", Body=b"not a zip"
    )
    wait_for_record(stack_settings, extract_id)
    # WHEN the recent extracts are listed, all and by source
    everything = httpx.get(f"{stack_settings.service_url('extractor')}/extracts", params={"limit": 500})
    by_source = httpx.get(f"{stack_settings.service_url('extractor')}/extracts", params={"source": "byhand"})
    # THEN both answer, and it is there, under the source its key names
    assert everything.status_code == 200 and by_source.status_code == 200
    assert extract_id in [e["extract_id"] for e in everything.json()["extracts"]]
    assert [e["extract_id"] for e in by_source.json()["extracts"]] == [extract_id]

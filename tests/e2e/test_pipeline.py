"""The whole pipeline through its public interfaces: HTTP, S3 events, the CLI, the warehouse."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from moviepipe.client import ExtractorClient
from shared.alerts import recent_alerts
from shared.aws import client
from shared.events import s3_notification
from shared.warehouse import query
from tests.e2e.conftest import run_cli
from tests.factories import messages_pending

pytestmark = pytest.mark.e2e

IMDB_MOVIES = 58_788


def scalar(settings, sql):
    _, rows = query(settings, sql)
    return rows[0][0]


def wait_until_queues_drain(settings, stages=("unzipper", "transformer", "loader"), timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if messages_pending(settings, stages) == 0:
            return
        time.sleep(0.5)
    raise TimeoutError("queues did not drain")


def messages(settings, stage: str) -> tuple[float, float]:
    """The stage's consumed messages so far, as its /metrics says: (succeeded, failed)."""
    text = httpx.get(f"{settings.service_url(stage)}/metrics").text

    def value(outcome: str) -> float:
        line = f'moviepipe_{stage}_messages_total{{outcome="{outcome}"}} '
        return next((float(row.removeprefix(line)) for row in text.splitlines() if row.startswith(line)), 0.0)

    return value("succeeded"), value("failed")


def test_extract_is_loaded_and_reconciles_against_the_source(stack_settings, loaded_extract):
    # GIVEN an IMDb extract that went through every stage
    extract_id, record = loaded_extract
    # THEN every stage succeeded, and the counts add up to the source's row count
    assert record["status"] == "loaded", record
    assert all(record["stages"][stage]["status"] == "succeeded" for stage in record["stages"])
    assert record["stages"]["extractor"]["counts"]["extracted"] == IMDB_MOVIES
    _, rows = query(
        stack_settings,
        "SELECT ROWS_EXTRACTED, ROWS_LOADED, ROWS_REJECTED, ROWS_DUPLICATE, STATUS "
        f"FROM MOVIES.AUDIT.BATCHES WHERE EXTRACT_ID = '{extract_id}'",
    )
    (extracted, loaded, rejected, duplicates, status), *_ = rows
    assert status == "RECONCILED"
    assert extracted == IMDB_MOVIES == loaded + rejected + duplicates
    assert (
        scalar(stack_settings, f"SELECT COUNT(*) FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{extract_id}'")
        == loaded
    )
    assert loaded > 58_000


def test_the_loaded_rows_carry_the_transforms_enrichment(stack_settings, loaded_extract):
    # GIVEN the IMDb extract, loaded
    extract_id, _ = loaded_extract
    # WHEN Titanic's row is read from RAW
    _, rows = query(
        stack_settings,
        "SELECT GENRES, PRIMARY_GENRE, DECADE, RUNTIME_BAND, BUDGET_BAND, WEIGHTED_RATING, RATING, VOTES "
        f"FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{extract_id}' AND TITLE = 'Titanic' AND YEAR = 1997",
    )
    # THEN it is enriched, its weighted rating pulled toward the batch's mean by m = 1,000 votes
    ((genres, primary, decade, runtime, budget, weighted, rating, votes),) = rows
    assert (genres, primary, decade, runtime, budget) == (
        "drama|romance",
        "romance",
        1990,
        "over 150 min",
        "$100M or more",
    )
    mean = scalar(
        stack_settings,
        f"SELECT AVG(RATING) FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{extract_id}' AND VOTES IS NOT NULL",
    )
    assert weighted == pytest.approx((votes * rating + 1000 * mean) / (votes + 1000), abs=0.0006)
    # AND every loaded row has a decade and a weighted rating (the IMDb sample rates every movie)
    assert (
        scalar(
            stack_settings,
            f"SELECT COUNT(*) FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{extract_id}' "
            "AND (DECADE IS NULL OR WEIGHTED_RATING IS NULL)",
        )
        == 0
    )


def test_the_extract_is_merged_into_the_star_schema_the_views_read(stack_settings, loaded_extract):
    # GIVEN the IMDb extract, loaded through the running stack
    extract_id, _ = loaded_extract
    loaded = scalar(
        stack_settings, f"SELECT COUNT(*) FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{extract_id}'"
    )

    # THEN each of its movies has one fact on the version in force, and the batch audit says it merged
    facts = scalar(
        stack_settings,
        "SELECT COUNT(*) FROM MOVIES.ANALYTICS.FACT_MOVIE_RATING f JOIN MOVIES.ANALYTICS.DIM_MOVIE d "
        "ON d.MOVIE_SK = f.MOVIE_SK AND d.VALID_FROM <= f.EXTRACTED_AT AND f.EXTRACTED_AT < d.VALID_TO "
        f"WHERE f.EXTRACT_ID = '{extract_id}'",
    )
    assert facts == loaded
    _, rows = query(
        stack_settings,
        f"SELECT ROWS_MERGED, STATUS FROM MOVIES.AUDIT.BATCHES WHERE EXTRACT_ID = '{extract_id}'",
    )
    assert rows == [(loaded, "RECONCILED")]
    # AND every current movie has exactly one current version, and the BI views answer
    assert (
        scalar(
            stack_settings,
            "SELECT COUNT(*) FROM (SELECT MOVIE_KEY FROM MOVIES.ANALYTICS.DIM_MOVIE WHERE IS_CURRENT "
            "GROUP BY MOVIE_KEY HAVING COUNT(*) > 1)",
        )
        == 0
    )
    assert scalar(stack_settings, "SELECT COUNT(*) FROM MOVIES.ANALYTICS.V_TOP_MOVIES") >= loaded - 10
    assert (
        scalar(stack_settings, "SELECT SUM(MOVIES) FROM MOVIES.ANALYTICS.V_RATINGS_BY_GENRE_DECADE") >= loaded
    )


def test_replayed_events_load_nothing_twice(stack_settings, loaded_extract):
    # GIVEN a loaded extract and what the warehouse holds for it
    extract_id, _ = loaded_extract
    counts_sql = (
        f"SELECT (SELECT COUNT(*) FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{extract_id}'), "
        f"(SELECT COUNT(*) FROM MOVIES.AUDIT.REJECTS WHERE EXTRACT_ID = '{extract_id}'), "
        f"(SELECT COUNT(*) FROM MOVIES.AUDIT.LOAD_HISTORY WHERE EXTRACT_ID = '{extract_id}')"
    )
    before = query(stack_settings, counts_sql)[1][0]
    consumed_before = {
        stage: messages(stack_settings, stage) for stage in ("unzipper", "transformer", "loader")
    }
    # WHEN every stage's S3 event is delivered again
    sqs = client("sqs", stack_settings)
    replays = {
        "unzipper": ("landing", f"imdb/{extract_id}.zip"),
        "transformer": ("processed", f"imdb/{extract_id}/manifest.json"),
        "loader": ("archive", f"imdb/{extract_id}/manifest.json"),
    }
    for stage, (role, key) in replays.items():
        url = sqs.get_queue_url(QueueName=stack_settings.queue(stage))["QueueUrl"]
        body = json.dumps(s3_notification(stack_settings.bucket(role), key))
        sqs.send_message(QueueUrl=url, MessageBody=body)
        sqs.send_message(QueueUrl=url, MessageBody=body)
    wait_until_queues_drain(stack_settings)
    # THEN each replayed message was consumed successfully: none failed, none is in a DLQ, none alerted
    for stage, (succeeded, failed) in consumed_before.items():
        deadline = time.monotonic() + 10  # a message is counted just after it is deleted from the queue
        while messages(stack_settings, stage)[0] < succeeded + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert messages(stack_settings, stage) == (succeeded + 2, failed), stage
        dlq = sqs.get_queue_url(QueueName=stack_settings.dead_letter_queue(stage))["QueueUrl"]
        depth = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0", stage
    assert [a for a in recent_alerts(stack_settings) if a.get("extract_id") == extract_id] == []
    # AND nothing was loaded twice, and the extract still reconciles
    assert query(stack_settings, counts_sql)[1][0] == before
    assert (
        scalar(
            stack_settings,
            f"SELECT STATUS FROM MOVIES.AUDIT.BATCHES WHERE EXTRACT_ID = '{extract_id}'",
        )
        == "RECONCILED"
    )


def test_status_command_shows_every_stage(stack_settings, loaded_extract):
    # WHEN
    extract_id, _ = loaded_extract
    result = run_cli(stack_settings, "status", extract_id)
    # THEN
    assert result.returncode == 0, result.stderr
    for stage in ("extractor", "unzipper", "transformer", "loader"):
        assert stage in result.stdout
    assert "loaded" in result.stdout and "58,788" in result.stdout


def test_query_prints_json_and_csv_for_programs(stack_settings, loaded_extract):
    # GIVEN a loaded extract
    extract_id, _ = loaded_extract
    sql = (
        "SELECT EXTRACT_ID, COUNT(*) AS ROWS_LOADED FROM MOVIES.RAW.MOVIES "
        f"WHERE EXTRACT_ID = '{extract_id}' GROUP BY 1"
    )
    # WHEN a program asks for JSON, and for CSV
    as_json = run_cli(stack_settings, "query", sql, "--format", "json")
    as_csv = run_cli(stack_settings, "query", sql, "--format", "csv")
    # THEN JSON is a list of objects keyed by upper-case column names, CSV a header and a record
    assert as_json.returncode == 0, as_json.stderr
    [record] = json.loads(as_json.stdout)
    assert record["EXTRACT_ID"] == extract_id and record["ROWS_LOADED"] > 58_000
    assert as_csv.stdout.splitlines() == ["EXTRACT_ID,ROWS_LOADED", f"{extract_id},{record['ROWS_LOADED']}"]


def test_corrupt_bundle_is_quarantined_and_shown(stack_settings):
    # GIVEN a zip that is not a zip lands for an extract
    extract_id = "20261126T000000Z-0badbad0"
    client("s3", stack_settings).put_object(
        Bucket=stack_settings.bucket("landing"), Key=f"imdb/{extract_id}.zip", Body=b"this is not a zip"
    )
    # WHEN we follow it (it has no record until the unzipper picks the bundle up)
    record = ExtractorClient(stack_settings).follow(extract_id, lambda _: None, timeout=60, appear_within=30)
    # THEN it is quarantined with a reason, both over HTTP and in the CLI
    assert record["status"] == "quarantined"
    assert record["stages"]["unzipper"]["error"]["code"] == "CORRUPT_ZIP"
    keys = [
        o["Key"]
        for o in client("s3", stack_settings)
        .list_objects_v2(Bucket=stack_settings.bucket("quarantine"))
        .get("Contents", [])
    ]
    assert any(key.endswith("reason.json") and extract_id in key for key in keys)
    result = run_cli(stack_settings, "status", extract_id)
    assert "quarantined" in result.stdout and "CORRUPT_ZIP" in result.stdout

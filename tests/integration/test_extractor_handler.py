"""The extractor's queue handler: replays, poison pills and retries, against a real moto server."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from services.extractor.handler import make_handler
from services.extractor.sources import SourceRegistry, SqliteSource
from services.extractor.sources.sqlite import insert_movies, movies_table_ddl
from shared.aws import client
from shared.progress import ExtractProgress
from shared.schema import field_names
from shared.settings import Settings
from tests.factories import (
    alerts,
    extract_request_event,
    keys,
    movies,
    new_extract_id,
    sqs_event,
    sqs_record,
    the_email_of,
)

pytestmark = pytest.mark.integration


def small_database(path: Path, n: int = 4) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute(movies_table_ddl())
        connection.executemany(
            insert_movies(), [(i, *(row[name] for name in field_names())) for i, row in enumerate(movies(n))]
        )
    return path


@pytest.fixture
def sources(tmp_path: Path) -> SourceRegistry:
    """A small source, and one whose database is broken."""
    database = small_database(tmp_path / "small.sqlite")
    broken = tmp_path / "broken.sqlite"
    broken.write_text("not a database")
    return SourceRegistry(
        {
            "small": lambda settings: SqliteSource("small", database),
            "broken": lambda settings: SqliteSource("broken", broken),
        }
    )


@pytest.fixture
def progress(provisioned: Settings) -> ExtractProgress:
    return ExtractProgress(provisioned)


def landed(settings: Settings, key: str) -> tuple[str, object]:
    head = client("s3", settings).head_object(Bucket=settings.bucket("landing"), Key=key)
    return head["ETag"], head["LastModified"]


def test_a_request_lands_its_bundle(provisioned, sources, progress):
    extract_id = new_extract_id()
    progress.begin(extract_id, "small")
    result = make_handler(provisioned, sources=sources)(extract_request_event(extract_id, "small"), None)
    assert result == {"batchItemFailures": []}
    assert keys(provisioned, "landing") == [f"small/{extract_id}.zip"]
    assert progress.get(extract_id)["stages"]["extractor"]["counts"] == {"extracted": 4}


def test_a_replayed_request_for_a_finished_extract_does_nothing(provisioned, sources, progress):
    # GIVEN an extract that has landed
    handler = make_handler(provisioned, sources=sources)
    extract_id = new_extract_id()
    progress.begin(extract_id, "small")
    handler(extract_request_event(extract_id, "small"), None)
    before = landed(provisioned, f"small/{extract_id}.zip")
    recorded = progress.get(extract_id)
    time.sleep(1.1)  # so a rewrite would show in LastModified
    # WHEN its request message is delivered again
    assert handler(extract_request_event(extract_id, "small"), None) == {"batchItemFailures": []}
    # THEN the bundle is not rewritten and the progress record is untouched
    assert landed(provisioned, f"small/{extract_id}.zip") == before
    assert progress.get(extract_id) == recorded


def test_a_request_whose_bundle_landed_before_a_crash_is_completed_without_re_extracting(
    provisioned, sources, progress
):
    # GIVEN an extract that landed, but whose extractor died before recording success
    handler = make_handler(provisioned, sources=sources)
    extract_id = new_extract_id()
    progress.begin(extract_id, "small")
    handler(extract_request_event(extract_id, "small"), None)
    before = landed(provisioned, f"small/{extract_id}.zip")
    progress.record(extract_id, "extractor", "running")
    # WHEN the request comes back
    handler(extract_request_event(extract_id, "small", receive_count=2), None)
    # THEN the extract is recorded as succeeded with its rows, and the bundle is the one that landed
    stage = progress.get(extract_id)["stages"]["extractor"]
    assert stage["status"] == "succeeded" and stage["counts"] == {"extracted": 4}
    assert landed(provisioned, f"small/{extract_id}.zip") == before


def test_an_unknown_source_fails_the_extract_once_without_retry(provisioned, sources, progress):
    # GIVEN a queued request naming a source the extractor does not know
    extract_id = new_extract_id()
    progress.begin(extract_id, "netflix")
    # WHEN handled
    result = make_handler(provisioned, sources=sources)(extract_request_event(extract_id, "netflix"), None)
    # THEN it is not retried, the extract is failed with a clear error, and one alert is raised
    assert result == {"batchItemFailures": []}
    stage = progress.get(extract_id)["stages"]["extractor"]
    assert stage["status"] == "failed"
    assert stage["error"] == {
        "code": "UNKNOWN_SOURCE",
        "message": "unknown source 'netflix'; known sources: broken, small",
    }
    [alert] = alerts(provisioned)
    assert alert["stage"] == "extractor" and alert["extract_id"] == extract_id
    assert "unknown source 'netflix'" in alert["message"]
    the_email_of(provisioned, alert)


def test_an_unreadable_source_fails_the_extract_with_nothing_landed(provisioned, sources, progress):
    extract_id = new_extract_id()
    progress.begin(extract_id, "broken")
    result = make_handler(provisioned, sources=sources)(extract_request_event(extract_id, "broken"), None)
    assert result == {"batchItemFailures": []}
    stage = progress.get(extract_id)["stages"]["extractor"]
    assert stage["status"] == "failed" and stage["error"]["code"] == "SOURCE_UNREADABLE"
    assert "broken.sqlite" in stage["error"]["message"]
    assert progress.get(extract_id)["status"] == "failed"
    assert keys(provisioned, "landing") == []
    assert len(alerts(provisioned)) == 1


def test_a_message_that_is_no_request_is_alerted_and_dropped_from_the_queue(provisioned, sources):
    result = make_handler(provisioned, sources=sources)(sqs_event(sqs_record("hello", message_id="m1")), None)
    assert result == {"batchItemFailures": []}
    [alert] = alerts(provisioned)
    assert alert["event"] == "request_refused" and "not an extract request" in alert["message"]


def test_an_infrastructure_failure_is_retried_and_failed_on_the_last_attempt(provisioned, sources, progress):
    # GIVEN the landing bucket is unreachable (gone)
    client("s3", provisioned).delete_bucket(Bucket=provisioned.bucket("landing"))
    extract_id = new_extract_id()
    progress.begin(extract_id, "small")
    handler = make_handler(provisioned, sources=sources)
    # WHEN the request is tried THEN it is reported back for retry, with nobody alerted yet
    first = handler(extract_request_event(extract_id, "small", receive_count=1), None)
    assert len(first["batchItemFailures"]) == 1
    assert progress.get(extract_id)["stages"]["extractor"]["status"] == "running"
    assert alerts(provisioned) == []
    # WHEN its last attempt fails too THEN the extract is failed with the error; the one alert is the
    # queue consumer's, raised as it leaves the message to the DLQ (tests/integration/test_provisioning.py)
    last = handler(
        extract_request_event(extract_id, "small", receive_count=provisioned.max_receive_count), None
    )
    assert len(last["batchItemFailures"]) == 1
    stage = progress.get(extract_id)["stages"]["extractor"]
    assert stage["status"] == "failed" and "NoSuchBucket" in stage["error"]["message"]
    assert alerts(provisioned) == []

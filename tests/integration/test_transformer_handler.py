"""The transformer's handler on a real moto server and local Spark: archive, replay, quarantine, retry."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from pathlib import Path

import pytest

from deploy.resources import alerts_inbox
from services.transformer.handler import make_handler
from services.transformer.runner import LocalSparkRunner
from services.transformer.settings import transformer_settings
from shared.aws import client
from shared.events import s3_notification
from shared.manifest import Manifest, describe_file, new_manifest
from shared.progress import ExtractProgress
from shared.quarantine import REASON_KEYS
from shared.schema import MOVIE_FIELDS, field_names
from tests.factories import the_email_of

pytestmark = pytest.mark.integration

SOURCE = "imdb"
ROW = [
    "4.5" if name.startswith("r") and name[1:].isdigit() else value
    for name, value in zip(
        field_names(),
        ["A Movie", "1999", "100", "NA", "7.5", "1000", *[""] * 10, "", *["0"] * 7],
        strict=True,
    )
]


def movies_csv(titles: list[str], *, header: list[str] | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header or field_names())
    for title in titles:
        writer.writerow([title, *ROW[1:]])
    return buffer.getvalue()


def put_processed(settings, tmp_path: Path, text: str | None, *, extracted: int | None = None) -> str:
    """A processed extract (movies.csv, then manifest.json) in the processed bucket; its extract id.

    With ``text=None`` the manifest vouches for a movies.csv that is not uploaded.
    """
    extract_id = f"20260101T000000Z-{uuid.uuid4().hex[:8]}"
    local = tmp_path / extract_id / "movies.csv"
    local.parent.mkdir(parents=True)
    local.write_text(text if text is not None else movies_csv(["Lost"]), encoding="utf-8")
    rows = extracted if extracted is not None else len(local.read_text().splitlines()) - 1
    manifest = new_manifest(
        extract_id=extract_id,
        source=SOURCE,
        stage="unzip",
        row_counts={"extracted": rows},
        resources=[describe_file(local, name="movies", rows=rows, fields=MOVIE_FIELDS)],
        extracted_at="2026-01-01T00:00:00+00:00",
    )
    s3 = client("s3", settings)
    bucket = settings.bucket("processed")
    if text is not None:
        s3.upload_file(str(local), bucket, f"{SOURCE}/{extract_id}/movies.csv")
    s3.put_object(Bucket=bucket, Key=f"{SOURCE}/{extract_id}/manifest.json", Body=manifest.to_json().encode())
    return extract_id


def sqs_event(settings, extract_id: str, message_id: str = "message-1") -> dict:
    """The SQS event Lambda would deliver for the processed manifest's S3 notification."""
    notification = s3_notification(settings.bucket("processed"), f"{SOURCE}/{extract_id}/manifest.json")
    queue_arn = f"arn:aws:sqs:{settings.region}:000000000000:{settings.queue('transformer')}"
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": "handle",
                "body": json.dumps(notification),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": settings.region,
            }
        ]
    }


def archive_objects(settings, extract_id: str) -> dict[str, tuple[str, object]]:
    listing = client("s3", settings).list_objects_v2(
        Bucket=settings.bucket("archive"), Prefix=f"{SOURCE}/{extract_id}/"
    )
    return {
        item["Key"].split("/", 2)[2]: (item["ETag"], item["LastModified"])
        for item in listing.get("Contents", [])
    }


def read_text(settings, bucket_role: str, key: str) -> str:
    return (
        client("s3", settings)
        .get_object(Bucket=settings.bucket(bucket_role), Key=key)["Body"]
        .read()
        .decode()
    )


def alerts(settings, wait: float = 3) -> list[dict]:
    sqs = client("sqs", settings)
    url = sqs.get_queue_url(QueueName=alerts_inbox(settings))["QueueUrl"]
    found, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def stage_record(settings, extract_id: str) -> dict:
    return ExtractProgress(settings).get(extract_id)["stages"]["transformer"]


@pytest.fixture
def handler(provisioned, spark):
    """The transformer's handler on the test's resources, sharing the session's warm Spark."""
    own = transformer_settings(provisioned)
    return make_handler(own, LocalSparkRunner(own, spark=spark))


def test_a_processed_extract_is_archived_and_committed_by_its_manifest(provisioned, handler, tmp_path):
    # GIVEN a processed extract with two good rows, a duplicate and a bad one
    extract_id = put_processed(provisioned, tmp_path, movies_csv(["Alpha", "Beta", "beta!", ""]))
    # WHEN
    response = handler(sqs_event(provisioned, extract_id), None)
    # THEN
    assert response == {"batchItemFailures": []}
    objects = archive_objects(provisioned, extract_id)
    assert set(objects) == {"movies/part-00000.csv", "rejects/part-00000.csv", "manifest.json"}
    assert all(objects["manifest.json"][1] >= modified for _, modified in objects.values())
    manifest = Manifest.from_json(read_text(provisioned, "archive", f"{SOURCE}/{extract_id}/manifest.json"))
    assert manifest.row_counts == {"extracted": 4, "clean": 2, "rejected": 1, "duplicates": 1}
    assert (manifest.extract_id, manifest.source, manifest.stage) == (extract_id, SOURCE, "transform")
    assert manifest.extracted_at == "2026-01-01T00:00:00+00:00"
    assert [(r.name, r.path, r.role, r.rows) for r in manifest.resources] == [
        ("movies", "movies/part-00000.csv", "movies", 2),
        ("rejects", "rejects/part-00000.csv", "rejects", 1),
    ]
    movies = list(
        csv.DictReader(
            io.StringIO(read_text(provisioned, "archive", f"{SOURCE}/{extract_id}/movies/part-00000.csv"))
        )
    )
    assert [row["title"] for row in movies] == ["Alpha", "Beta"]
    assert {row["extract_id"] for row in movies} == {extract_id}
    record = stage_record(provisioned, extract_id)
    assert record["status"] == "succeeded"
    assert record["counts"] == manifest.row_counts
    assert record["archive"].endswith(f"{SOURCE}/{extract_id}/manifest.json")


def test_a_replayed_event_changes_nothing(provisioned, handler, tmp_path):
    # GIVEN an extract already transformed
    extract_id = put_processed(provisioned, tmp_path, movies_csv(["Alpha"]))
    handler(sqs_event(provisioned, extract_id), None)
    before = archive_objects(provisioned, extract_id)
    recorded = stage_record(provisioned, extract_id)
    # WHEN the same notification arrives again
    response = handler(sqs_event(provisioned, extract_id, message_id="message-2"), None)
    # THEN
    assert response == {"batchItemFailures": []}
    assert archive_objects(provisioned, extract_id) == before
    assert stage_record(provisioned, extract_id) == recorded


def test_a_replay_after_a_crash_between_commit_and_record_records_the_success(provisioned, handler, tmp_path):
    # GIVEN an archive committed by a run that crashed before recording its success
    extract_id = put_processed(provisioned, tmp_path, movies_csv(["Alpha", "Beta"]))
    handler(sqs_event(provisioned, extract_id), None)
    before = archive_objects(provisioned, extract_id)
    ExtractProgress(provisioned).record(extract_id, "transformer", "running")
    # WHEN the message comes back
    handler(sqs_event(provisioned, extract_id, message_id="message-2"), None)
    # THEN the success is recorded from the archive manifest, which is left as it was
    record = stage_record(provisioned, extract_id)
    assert record["status"] == "succeeded"
    assert record["counts"] == {"extracted": 2, "clean": 2, "rejected": 0, "duplicates": 0}
    assert archive_objects(provisioned, extract_id) == before


def test_a_manifest_vouching_for_a_missing_file_is_quarantined_and_alerted_once(
    provisioned, handler, tmp_path
):
    # GIVEN a processed manifest whose movies.csv never arrived
    extract_id = put_processed(provisioned, tmp_path, None)
    alerts(provisioned, wait=1)  # drain anything earlier tests raised
    # WHEN delivered twice
    first = handler(sqs_event(provisioned, extract_id), None)
    second = handler(sqs_event(provisioned, extract_id), None)
    # THEN the message is not retried, the extract is kept with its reason, and one alert went out
    assert first == second == {"batchItemFailures": []}
    prefix = f"transform/{SOURCE}/{extract_id}"
    reason = json.loads(read_text(provisioned, "quarantine", f"{prefix}/reason.json"))
    assert reason["reason"] == "INPUT_MISSING" and "movies.csv" in reason["message"]
    assert (reason["stage"], reason["extract_id"], reason["source"], reason["files"]) == (
        "transformer",
        extract_id,
        SOURCE,
        ["manifest.json"],
    )
    assert reason["origin"] == f"s3://{provisioned.bucket('processed')}/{SOURCE}/{extract_id}/"
    assert list(reason)[: len(REASON_KEYS)] == list(REASON_KEYS)
    assert read_text(provisioned, "quarantine", f"{prefix}/manifest.json")
    record = stage_record(provisioned, extract_id)
    assert record["status"] == "quarantined" and record["error"]["code"] == "INPUT_MISSING"
    raised = [a for a in alerts(provisioned) if a.get("extract_id") == extract_id]
    assert [(a["stage"], a["event"]) for a in raised] == [("transformer", "quarantined")]
    the_email_of(provisioned, raised[0])
    assert archive_objects(provisioned, extract_id) == {}


@pytest.mark.parametrize(
    ("text", "extracted", "code", "words"),
    [
        (movies_csv(["A"], header=[n for n in field_names() if n != "year"]), None, "INVALID_HEADER", "year"),
        ("", 0, "INVALID_HEADER", "no header"),
        (movies_csv(["A", "B"]), 3, "ROW_COUNT_MISMATCH", "3 were extracted"),
    ],
    ids=["header-lacks-year", "empty-file", "row-count-mismatch"],
)
def test_whole_file_problems_are_quarantined_with_their_reason(
    provisioned, handler, tmp_path, text, extracted, code, words
):
    # GIVEN
    extract_id = put_processed(provisioned, tmp_path, text, extracted=extracted)
    # WHEN
    response = handler(sqs_event(provisioned, extract_id), None)
    # THEN
    assert response == {"batchItemFailures": []}
    reason = json.loads(read_text(provisioned, "quarantine", f"transform/{SOURCE}/{extract_id}/reason.json"))
    assert reason["reason"] == code and words in reason["message"]
    assert sorted(reason["files"]) == ["manifest.json", "movies.csv"]
    assert stage_record(provisioned, extract_id)["error"] == {"code": code, "message": reason["message"]}
    assert archive_objects(provisioned, extract_id) == {}


def test_an_unreadable_manifest_is_quarantined(provisioned, handler):
    # GIVEN a manifest.json that is not JSON
    extract_id = f"20260101T000000Z-{uuid.uuid4().hex[:8]}"
    client("s3", provisioned).put_object(
        Bucket=provisioned.bucket("processed"), Key=f"{SOURCE}/{extract_id}/manifest.json", Body=b"{not json"
    )
    # WHEN
    response = handler(sqs_event(provisioned, extract_id), None)
    # THEN
    assert response == {"batchItemFailures": []}
    reason = json.loads(read_text(provisioned, "quarantine", f"transform/{SOURCE}/{extract_id}/reason.json"))
    assert reason["reason"] == "MANIFEST_UNREADABLE"
    assert stage_record(provisioned, extract_id)["status"] == "quarantined"


def test_a_manifest_dropped_outside_any_extract_is_quarantined_and_alerted_once(provisioned, handler):
    # GIVEN a manifest put by hand in the processed bucket under a key no extract has
    key = f"{SOURCE}/by-hand-{uuid.uuid4().hex[:8]}/deeper/manifest.json"
    client("s3", provisioned).put_object(Bucket=provisioned.bucket("processed"), Key=key, Body=b"{}")
    event = sqs_event(provisioned, "unused")
    event["Records"][0]["body"] = json.dumps(s3_notification(provisioned.bucket("processed"), key))
    # WHEN its notification is delivered twice
    responses = [handler(event, None), handler(event, None)]
    # THEN both messages are consumed, and a copy is kept beside a reason.json naming the key
    assert responses == [{"batchItemFailures": []}] * 2
    folder = f"transform/{key.removesuffix('/manifest.json')}/"
    reason = json.loads(read_text(provisioned, "quarantine", f"{folder}reason.json"))
    assert (reason["stage"], reason["reason"], reason["extract_id"]) == (
        "transformer",
        "UNEXPECTED_KEY",
        None,
    )
    assert key in reason["message"] and reason["files"] == ["manifest.json"]
    # AND one alert was raised, pointing at the quarantine; nothing was archived
    raised = alerts(provisioned)
    assert [(a["stage"], a["code"]) for a in raised] == [("transformer", "UNEXPECTED_KEY")]
    assert raised[0]["evidence"] == f"s3://{provisioned.bucket('quarantine')}/{folder}"
    archived = client("s3", provisioned).list_objects_v2(Bucket=provisioned.bucket("archive"))
    assert archived.get("KeyCount") == 0


def test_an_infrastructure_failure_fails_the_message_for_a_retry(provisioned, handler, tmp_path):
    # GIVEN a good extract, but the archive bucket is gone
    extract_id = put_processed(provisioned, tmp_path, movies_csv(["Alpha"]))
    client("s3", provisioned).delete_bucket(Bucket=provisioned.bucket("archive"))
    # WHEN
    response = handler(sqs_event(provisioned, extract_id), None)
    # THEN the message is reported failed (to be retried, then dead-lettered) and nothing is quarantined
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
    assert stage_record(provisioned, extract_id)["status"] == "running"
    listing = client("s3", provisioned).list_objects_v2(Bucket=provisioned.bucket("quarantine"))
    assert listing.get("KeyCount", 0) == 0


def test_the_real_imdb_extract_is_conserved_through_s3(provisioned, spark, imdb_movies_csv, tmp_path):
    # GIVEN the bundled 58,788 IMDb movies as a processed extract, and a warm runner
    own = transformer_settings(provisioned)
    runner = LocalSparkRunner(own, spark=spark)
    extract_id = put_processed(provisioned, tmp_path, imdb_movies_csv.read_text(encoding="utf-8"))
    # WHEN
    started = time.monotonic()
    response = make_handler(own, runner)(sqs_event(provisioned, extract_id), None)
    seconds = time.monotonic() - started
    # THEN
    assert response == {"batchItemFailures": []}
    counts = stage_record(provisioned, extract_id)["counts"]
    assert counts["extracted"] == 58_788 == counts["clean"] + counts["rejected"] + counts["duplicates"]
    assert counts["clean"] > 58_000
    print(f"IMDb transform through S3 took {seconds:.1f}s: {counts}")

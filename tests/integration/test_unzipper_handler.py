"""The unzipper's Lambda handler against a real moto server: publish, quarantine, idempotency, batches."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.unzipper.handler import make_handler
from shared import quarantine as shared_quarantine
from shared.aws import client
from shared.progress import ExtractProgress
from shared.quarantine import REASON_KEYS
from shared.settings import Settings
from tests.factories import (
    CSV_NAME,
    PARQUET_NAME,
    alerts,
    bundle_files,
    keys,
    land,
    landed_event,
    movies,
    new_extract_id,
    s3_event,
    sqs_event,
    sqs_record,
    the_email_of,
    transformer_triggers,
    valid_bundle,
    zip_bundle,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def unzip(provisioned: Settings):
    return make_handler(provisioned)


@pytest.fixture
def progress(provisioned: Settings) -> ExtractProgress:
    return ExtractProgress(provisioned)


@pytest.fixture
def puts(provisioned: Settings) -> Iterator[list[str]]:
    """Keys of every PutObject the process makes, in order."""
    calls: list[str] = []
    events = client("s3", provisioned).meta.events

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(f"{params['Bucket']}/{params['Key']}")

    events.register("before-parameter-build.s3.PutObject", record, unique_id="test-puts")
    yield calls
    events.unregister("before-parameter-build.s3.PutObject", unique_id="test-puts")


def object_state(settings: Settings, role: str, prefix: str) -> dict[str, tuple[str, Any]]:
    s3 = client("s3", settings)
    listed = s3.list_objects_v2(Bucket=settings.bucket(role), Prefix=prefix).get("Contents", [])
    return {item["Key"]: (item["ETag"], item["LastModified"]) for item in listed}


def read_json(settings: Settings, role: str, key: str) -> dict[str, Any]:
    return json.loads(client("s3", settings).get_object(Bucket=settings.bucket(role), Key=key)["Body"].read())


def test_a_good_bundle_is_published_with_its_manifest_last(provisioned, unzip, progress, puts):
    # GIVEN a requested extract whose bundle landed
    extract_id = new_extract_id()
    progress.begin(extract_id, "imdb")
    files = bundle_files(movies(4), extract_id=extract_id)
    data = zip_bundle(files)
    key = land(provisioned, data, extract_id=extract_id)
    puts.clear()
    # WHEN the unzipper handles its S3 event through SQS
    result = unzip(landed_event(provisioned.bucket("landing"), key), None)
    # THEN the data files, then the manifest, are in processed, as they were in the bundle
    assert result == {"batchItemFailures": []}
    prefix = f"imdb/{extract_id}/"
    assert keys(provisioned, "processed", prefix) == [
        prefix + n for n in ("manifest.json", CSV_NAME, PARQUET_NAME)
    ]
    assert puts[-1] == f"{provisioned.bucket('processed')}/{prefix}manifest.json"
    s3 = client("s3", provisioned)
    body = s3.get_object(Bucket=provisioned.bucket("processed"), Key=prefix + CSV_NAME)["Body"].read()
    assert body == files[CSV_NAME]
    # AND the manifest is the extractor's, plus where the bundle came from and its hash
    manifest = read_json(provisioned, "processed", prefix + "manifest.json")
    assert manifest["stage"] == "extract" and manifest["row_counts"] == {"extracted": 4}
    assert manifest["bundle_hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert manifest["bundle"] == f"s3://{provisioned.bucket('landing')}/{key}"
    assert "unzipped_at" in manifest
    # AND the extract's progress says so, the transformer is triggered once, and nobody is alerted
    stage = progress.get(extract_id)["stages"]["unzipper"]
    assert stage["status"] == "succeeded"
    assert stage["counts"] == {"extracted": 4, "files": 2}
    assert stage["processed"] == f"s3://{provisioned.bucket('processed')}/{prefix}"
    assert transformer_triggers(provisioned) == [prefix + "manifest.json"]
    assert alerts(provisioned) == []


def test_a_direct_s3_notification_is_handled_too(provisioned, unzip):
    extract_id = new_extract_id()
    key = land(provisioned, valid_bundle(extract_id=extract_id), extract_id=extract_id)
    assert unzip(s3_event(provisioned.bucket("landing"), key), None) == {"batchItemFailures": []}
    assert f"imdb/{extract_id}/manifest.json" in keys(provisioned, "processed")


def corrupt(extract_id: str) -> bytes:
    return b"PK\x03\x04 definitely not a zip " * 10


def tampered(extract_id: str) -> bytes:
    files = bundle_files(extract_id=extract_id)
    files[CSV_NAME] = files[CSV_NAME].replace(b"Crouching", b"Crouchinh")
    return zip_bundle(files)


def without_manifest(extract_id: str) -> bytes:
    files = bundle_files(extract_id=extract_id)
    del files["manifest.json"]
    return zip_bundle(files)


@pytest.mark.parametrize(
    ("make_bundle", "reason", "says"),
    [
        (corrupt, "CORRUPT_ZIP", "not a readable zip"),
        (tampered, "HASH_MISMATCH", "movies.csv: sha256 is sha256:"),
        (without_manifest, "MISSING_MANIFEST", "the bundle has no manifest.json"),
    ],
    ids=["corrupt zip", "hash mismatch", "missing manifest"],
)
def test_a_bad_bundle_is_quarantined_with_its_reason_and_one_alert(
    provisioned, unzip, progress, make_bundle, reason, says
):
    # GIVEN a requested extract whose landed bundle is bad
    extract_id = new_extract_id()
    progress.begin(extract_id, "imdb")
    data = make_bundle(extract_id)
    key = land(provisioned, data, extract_id=extract_id)
    # WHEN the unzipper handles it
    result = unzip(landed_event(provisioned.bucket("landing"), key), None)
    # THEN the message is handled (a poison pill is not retried) ...
    assert result == {"batchItemFailures": []}
    # ... the bundle is kept in quarantine, byte for byte, with reason.json beside it
    folder = f"unzip/imdb/{extract_id}/"
    assert keys(provisioned, "quarantine") == [folder + f"{extract_id}.zip", folder + "reason.json"]
    kept = client("s3", provisioned).get_object(
        Bucket=provisioned.bucket("quarantine"), Key=folder + f"{extract_id}.zip"
    )
    assert kept["Body"].read() == data
    why = read_json(provisioned, "quarantine", folder + "reason.json")
    assert why["stage"] == "unzipper" and why["reason"] == reason and says in why["message"]
    assert why["extract_id"] == extract_id and why["source"] == "imdb"
    assert why["origin"] == f"s3://{provisioned.bucket('landing')}/{key}" and why["quarantined_at"]
    assert why["files"] == [f"{extract_id}.zip"]
    assert why["bundle_hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert list(why)[: len(REASON_KEYS)] == list(REASON_KEYS)
    # ... exactly one alert says what happened
    [alert] = alerts(provisioned)
    assert alert["stage"] == "unzipper" and alert["extract_id"] == extract_id
    assert alert["code"] == reason and says in alert["message"]
    assert alert["evidence"] == f"s3://{provisioned.bucket('quarantine')}/{folder}"
    assert alert["replay"] == f"moviepipe replay {extract_id} --from-stage unzipper"
    # ... and one email says the same
    the_email_of(provisioned, alert)
    # ... the extract's progress shows it quarantined with the error, and nothing reached processed
    stage = progress.get(extract_id)["stages"]["unzipper"]
    assert stage["status"] == "quarantined"
    assert stage["error"]["code"] == reason and says in stage["error"]["message"]
    assert progress.get(extract_id)["status"] == "quarantined"
    assert keys(provisioned, "processed") == []


def forget_idempotency(settings: Settings) -> None:
    """What the idempotency records' expiry does: later replays find no record."""
    dynamodb = client("dynamodb", settings)
    for item in dynamodb.scan(TableName=settings.idempotency_table)["Items"]:
        dynamodb.delete_item(TableName=settings.idempotency_table, Key={"id": item["id"]})


@pytest.mark.parametrize("expired", [False, True], ids=["idempotency-record", "published-manifest"])
def test_a_replayed_event_changes_nothing(provisioned, unzip, progress, expired):
    # GIVEN a bundle already unzipped (and, in the second case, its idempotency record since expired)
    extract_id = new_extract_id()
    progress.begin(extract_id, "imdb")
    key = land(provisioned, valid_bundle(extract_id=extract_id), extract_id=extract_id)
    event = landed_event(provisioned.bucket("landing"), key)
    unzip(event, None)
    before = object_state(provisioned, "processed", "")
    recorded = progress.get(extract_id)
    transformer_triggers(provisioned)
    if expired:
        forget_idempotency(provisioned)
    time.sleep(1.1)  # so a rewrite would show in LastModified
    # WHEN the same event arrives again
    assert unzip(event, None) == {"batchItemFailures": []}
    # THEN no object is rewritten, the progress record is untouched, and the transformer hears nothing
    assert object_state(provisioned, "processed", "") == before
    assert progress.get(extract_id) == recorded
    assert transformer_triggers(provisioned) == []


def test_the_two_events_of_a_multipart_upload_publish_once(provisioned, unzip, puts):
    # GIVEN one landed bundle announced twice in one batch (as a multipart upload is)
    extract_id = new_extract_id()
    key = land(provisioned, valid_bundle(extract_id=extract_id), extract_id=extract_id)
    puts.clear()
    # WHEN the batch is handled
    result = unzip(landed_event(provisioned.bucket("landing"), key, key), None)
    # THEN both messages are done, and the manifest was written once
    assert result == {"batchItemFailures": []}
    assert [put for put in puts if put.endswith("manifest.json")] == [
        f"{provisioned.bucket('processed')}/imdb/{extract_id}/manifest.json"
    ]


@pytest.mark.parametrize("expired", [False, True], ids=["idempotency-record", "reason-json"])
def test_a_replayed_bad_bundle_is_alerted_once(provisioned, unzip, expired):
    extract_id = new_extract_id()
    key = land(provisioned, without_manifest(extract_id), extract_id=extract_id)
    event = landed_event(provisioned.bucket("landing"), key)
    unzip(event, None)
    reason = object_state(provisioned, "quarantine", "")
    if expired:
        forget_idempotency(provisioned)
    # WHEN the event is replayed
    unzip(event, None)
    # THEN there was still one alert (and one email), and the quarantine is as it was
    (alert,) = alerts(provisioned)
    the_email_of(provisioned, alert)
    assert object_state(provisioned, "quarantine", "") == reason


def test_a_quarantined_extract_reads_quarantined_only_once_its_reason_is_kept(
    provisioned, unzip, progress, monkeypatch
):
    # GIVEN a bad bundle whose first delivery crashed after reason.json, before the extract was marked
    extract_id = new_extract_id()
    key = land(provisioned, corrupt(extract_id), extract_id=extract_id)
    event = landed_event(provisioned.bucket("landing"), key)
    progress.begin(extract_id, "imdb")

    def crash(*args, **kwargs):
        raise ConnectionError("the worker died here")

    monkeypatch.setattr(shared_quarantine, "announce", crash)
    assert unzip(event, None)["batchItemFailures"]
    monkeypatch.undo()
    assert any(k.endswith("reason.json") for k in keys(provisioned, "quarantine"))
    assert progress.get(extract_id)["stages"]["unzipper"]["status"] == "running"
    # WHEN the event is delivered again
    assert unzip(event, None) == {"batchItemFailures": []}
    # THEN the extract reads quarantined, with the reason that reason.json keeps, and no second alert
    stage = progress.get(extract_id)["stages"]["unzipper"]
    assert stage["status"] == "quarantined"
    assert stage["error"]["code"] == "CORRUPT_ZIP"
    assert any(k.endswith("reason.json") for k in keys(provisioned, "quarantine"))
    assert len(alerts(provisioned)) == 1


def test_only_the_record_that_failed_on_infrastructure_is_reported_for_retry(provisioned, unzip):
    # GIVEN a batch of a good bundle and one whose bucket does not exist (S3 answers with an error)
    extract_id = new_extract_id()
    key = land(provisioned, valid_bundle(extract_id=extract_id), extract_id=extract_id)
    good = sqs_record(s3_event(provisioned.bucket("landing"), key), message_id="good")
    broken = sqs_record(s3_event(f"{provisioned.prefix}-no-such-bucket", key), message_id="broken")
    # WHEN handled
    result = unzip(sqs_event(good, broken), None)
    # THEN only the broken one comes back for retry, the good one is published, and nothing is quarantined
    assert result == {"batchItemFailures": [{"itemIdentifier": "broken"}]}
    assert f"imdb/{extract_id}/manifest.json" in keys(provisioned, "processed")
    assert keys(provisioned, "quarantine") == []


def test_a_junk_key_is_quarantined_under_its_own_name(provisioned, unzip):
    # GIVEN a zip dropped in landing under a key that names no extract
    land(provisioned, b"whatever", extract_id="", key="stray/upload/file.zip")
    # WHEN handled
    unzip(landed_event(provisioned.bucket("landing"), "stray/upload/file.zip"), None)
    # THEN it is kept under its own name with the reason, and alerted
    assert keys(provisioned, "quarantine") == [
        "unzip/stray/upload/file/file.zip",
        "unzip/stray/upload/file/reason.json",
    ]
    why = read_json(provisioned, "quarantine", "unzip/stray/upload/file/reason.json")
    assert why["reason"] == "UNRECOGNISED_KEY" and why["extract_id"] is None
    assert "stray/upload/file.zip" in why["message"]
    assert [alert["code"] for alert in alerts(provisioned)] == ["UNRECOGNISED_KEY"]


def test_objects_that_are_not_zips_are_ignored(provisioned, unzip):
    land(provisioned, b"notes", extract_id="", key="imdb/readme.txt")
    assert unzip(landed_event(provisioned.bucket("landing"), "imdb/readme.txt"), None) == {
        "batchItemFailures": []
    }
    assert keys(provisioned, "quarantine") == [] and keys(provisioned, "processed") == []


def test_the_extract_status_shows_the_quarantined_unzipper_stage(provisioned, unzip, progress):
    # GIVEN an extract whose bundle was quarantined for a hash mismatch
    from services.extractor.app import create_app

    extract_id = new_extract_id()
    progress.begin(extract_id, "imdb")
    key = land(provisioned, tampered(extract_id), extract_id=extract_id)
    unzip(landed_event(provisioned.bucket("landing"), key), None)
    # WHEN a user asks the extractor about it
    response = TestClient(create_app(provisioned)).get(f"/extracts/{extract_id}")
    # THEN the unzipper stage says quarantined, with the reason code and what was wrong
    assert response.status_code == 200
    extract = response.json()
    assert extract["status"] == "quarantined"
    stage = extract["stages"]["unzipper"]
    assert stage["status"] == "quarantined"
    assert stage["error"]["code"] == "HASH_MISMATCH"
    assert "movies.csv" in stage["error"]["message"]
    assert stage["quarantine"].endswith(f"unzip/imdb/{extract_id}/")


def test_the_lambda_entry_point_reads_its_deployment_from_the_environment(provisioned, monkeypatch):
    # GIVEN a Lambda environment naming this deployment (and the handler module imported beforehand)
    from services.unzipper import handler as lambda_module

    lambda_module._lambda_handler.cache_clear()
    monkeypatch.setenv("MOVIEPIPE_PREFIX", provisioned.prefix)
    monkeypatch.setenv("MOVIEPIPE_AWS_ENDPOINT_URL", provisioned.aws_endpoint_url)
    extract_id = new_extract_id()
    key = land(provisioned, valid_bundle(extract_id=extract_id), extract_id=extract_id)
    # WHEN Lambda invokes ``handler(event, context)``
    try:
        result = lambda_module.handler(landed_event(provisioned.bucket("landing"), key), None)
    finally:
        lambda_module._lambda_handler.cache_clear()
    # THEN the bundle is unzipped into that deployment
    assert result == {"batchItemFailures": []}
    assert f"imdb/{extract_id}/manifest.json" in keys(provisioned, "processed")

"""The unzipper on bundles larger than memory, on zip bombs, on one event handled twice at once, and killed
mid-bundle: each run in its own process where memory or a kill is what is tested."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from moviepipe import stack
from moviepipe.bench_unzip import RSS_LIMIT_BYTES, imdb_csv, unzip_in_child, write_large_bundle
from services.unzipper.app import create_app
from services.unzipper.handler import make_handler
from shared.aws import client, queue_url
from shared.events import s3_notification
from shared.progress import ExtractProgress
from shared.s3stream import S3ObjectWriter
from shared.settings import Settings
from tests.factories import (
    CSV_NAME,
    alerts,
    bundle_files,
    keys,
    land,
    landed_event,
    lying_about_size,
    movies,
    new_extract_id,
    stamp,
    transformer_triggers,
    zip_bundle,
)

pytestmark = pytest.mark.integration

GIB = 1 << 30


def land_file(settings: Settings, path: Path, key: str) -> None:
    client("s3", settings).upload_file(str(path), settings.bucket("landing"), key)


def open_uploads(settings: Settings, role: str) -> list[dict]:
    return client("s3", settings).list_multipart_uploads(Bucket=settings.bucket(role)).get("Uploads", [])


def drop_large_objects(settings: Settings) -> None:
    """The moto server keeps objects in memory: free the gigabytes a test put there."""
    s3 = client("s3", settings)
    for role in ("landing", "processed", "quarantine"):
        for key in keys(settings, role):
            s3.delete_object(Bucket=settings.bucket(role), Key=key)
        for upload in open_uploads(settings, role):
            s3.abort_multipart_upload(
                Bucket=settings.bucket(role), Key=upload["Key"], UploadId=upload["UploadId"]
            )


def test_a_1_gb_bundle_streams_through_with_flat_memory_and_no_tmp(provisioned: Settings, tmp_path: Path):
    # GIVEN a valid bundle whose CSV is 1 GiB (the IMDb rows repeated; it compresses about 3.7 times)
    extract_id = new_extract_id()
    bundle = tmp_path / "large.zip"
    sizes = write_large_bundle(bundle, extract_id=extract_id, source="imdb", target_bytes=GIB)
    assert sizes["inflated_bytes"] >= GIB
    land_file(provisioned, bundle, f"imdb/{extract_id}.zip")
    bundle.unlink()
    try:
        # WHEN a separate unzipper process (tempfile disabled in it) handles its landing
        child = unzip_in_child(provisioned, provisioned.bucket("landing"), f"imdb/{extract_id}.zip")
        # THEN it is published whole, with the process's peak RSS under 200 MiB
        assert child["outcome"] == "unzipped", child
        assert child["rows"] == sizes["rows"]
        assert child["max_rss_bytes"] < RSS_LIMIT_BYTES, child
        s3 = client("s3", provisioned)
        csv_head = s3.head_object(Bucket=provisioned.bucket("processed"), Key=f"imdb/{extract_id}/{CSV_NAME}")
        assert csv_head["ContentLength"] == sizes["inflated_bytes"]
        manifest = json.loads(
            s3.get_object(Bucket=provisioned.bucket("processed"), Key=f"imdb/{extract_id}/manifest.json")[
                "Body"
            ].read()
        )
        assert manifest["row_counts"]["extracted"] == sizes["rows"]
        assert open_uploads(provisioned, "processed") == []
        assert transformer_triggers(provisioned) == [f"imdb/{extract_id}/manifest.json"]
    finally:
        drop_large_objects(provisioned)


def test_a_bomb_lying_about_its_size_is_stopped_while_inflating_with_flat_memory(provisioned: Settings):
    # GIVEN a bundle whose CSV declares 10,000 bytes but inflates to 2 GiB (deflate's ~1,000:1 on one byte)
    extract_id = new_extract_id()
    header = b"title,year\n"
    honest = zip_bundle(stamp({CSV_NAME: header + b"\n" * (2 * GIB)}, extract_id=extract_id, rows=0))
    assert len(honest) < 4 << 20
    land(provisioned, lying_about_size(honest, CSV_NAME, 10_000), extract_id=extract_id)
    # WHEN an unzipper process handles it
    child = unzip_in_child(provisioned, provisioned.bucket("landing"), f"imdb/{extract_id}.zip")
    # THEN it is quarantined as a zip bomb, its memory stayed flat, and nothing reached processed
    assert child["outcome"] == "quarantined" and child["reason"] == "BUNDLE_TOO_LARGE", child
    assert child["max_rss_bytes"] < RSS_LIMIT_BYTES, child
    quarantined = client("s3", provisioned).get_object(
        Bucket=provisioned.bucket("quarantine"), Key=f"unzip/imdb/{extract_id}/reason.json"
    )
    reason = json.loads(quarantined["Body"].read())
    assert "inflates past the 10000 bytes its zip entry declares" in reason["message"]
    assert keys(provisioned, "processed") == [] and open_uploads(provisioned, "processed") == []
    (alert,) = alerts(provisioned)
    assert alert["code"] == "BUNDLE_TOO_LARGE"


def test_two_unzippers_handed_the_same_bundle_at_once_publish_it_once(provisioned: Settings, monkeypatch):
    # GIVEN two unzippers (two replicas), the first paused in the middle of streaming a landed bundle
    extract_id = new_extract_id()
    data = zip_bundle(bundle_files(movies(40), extract_id=extract_id))
    key = land(provisioned, data, extract_id=extract_id)
    event = landed_event(provisioned.bucket("landing"), key)
    first, second = make_handler(provisioned), make_handler(provisioned)
    paused, resume = threading.Event(), threading.Event()
    write = S3ObjectWriter.write

    def pausing_write(self, data):
        if threading.current_thread().name == "first" and not resume.is_set():
            paused.set()
            resume.wait(30)
        return write(self, data)

    monkeypatch.setattr(S3ObjectWriter, "write", pausing_write)
    results: dict[str, dict] = {}

    def handle(name: str, handler) -> None:
        results[name] = handler(event, None)

    threads = {
        name: threading.Thread(target=handle, args=(name, handler), name=name)
        for name, handler in (("first", first), ("second", second))
    }
    threads["first"].start()
    assert paused.wait(30)
    # WHEN the second gets the same event while the first holds the bundle
    threads["second"].start()
    time.sleep(2)
    # THEN the second waits for the first rather than unzipping too (or failing its message)
    assert threads["second"].is_alive() and "second" not in results
    resume.set()
    for thread in threads.values():
        thread.join(60)
    # AND both messages are done, the bundle was published once, the transformer heard once, no alert
    assert results == {"first": {"batchItemFailures": []}, "second": {"batchItemFailures": []}}
    assert transformer_triggers(provisioned) == [f"imdb/{extract_id}/manifest.json"]
    assert alerts(provisioned) == []


def test_two_unzipper_services_receiving_one_bundle_twice_publish_it_once(provisioned: Settings):
    # GIVEN two unzipper services consuming the same queue
    progress = ExtractProgress(provisioned)
    extract_id = new_extract_id()
    progress.begin(extract_id, "imdb")
    header, body = imdb_csv()  # the real IMDb movies: a bundle that takes a moment to stream
    data = zip_bundle(stamp({CSV_NAME: header + body}, extract_id=extract_id))
    with TestClient(create_app(provisioned)), TestClient(create_app(provisioned)):
        transformer_triggers(provisioned)  # S3's test event
        # WHEN the bundle lands and its event is delivered twice at once (a duplicate delivery)
        key = land(provisioned, data, extract_id=extract_id)
        sqs = client("sqs", provisioned)
        notification = json.dumps(s3_notification(provisioned.bucket("landing"), key))
        sqs.send_message(QueueUrl=queue_url(provisioned, "unzipper"), MessageBody=notification)
        triggers = wait_for_triggers(provisioned, 1)
        time.sleep(3)  # time for a second, wrong publication to show
        triggers += transformer_triggers(provisioned)
        queue_left = queue_depth(provisioned, "unzipper")
    # THEN one publication, one downstream event, no alert, no message left or dead-lettered
    assert triggers == [f"imdb/{extract_id}/manifest.json"]
    assert progress.get(extract_id)["stages"]["unzipper"]["status"] == "succeeded"
    assert alerts(provisioned) == []
    assert queue_left == 0
    assert queue_depth(provisioned, "unzipper", dead_letter=True) == 0


def test_an_unzipper_killed_mid_bundle_and_restarted_publishes_it_exactly_once(
    provisioned: Settings, tmp_path: Path
):
    # GIVEN a bundle of 400 MB landed, and an unzipper process (Lambda's handler) streaming it
    extract_id = new_extract_id()
    bundle = tmp_path / "large.zip"
    sizes = write_large_bundle(bundle, extract_id=extract_id, source="imdb", target_bytes=400 << 20)
    key = f"imdb/{extract_id}.zip"
    land_file(provisioned, bundle, key)
    transformer_triggers(provisioned)  # S3's test event
    env = {**stack.child_environment(provisioned), "MOVIEPIPE_LEASE_SECONDS": "3"}
    event = json.dumps(s3_notification(provisioned.bucket("landing"), key))
    run = [sys.executable, "-c", LAMBDA_INVOCATION, event]
    try:
        worker = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not open_uploads(provisioned, "processed"):
            assert worker.poll() is None and time.monotonic() < deadline, "the unzipper never began uploading"
            time.sleep(0.05)
        # WHEN it is killed in the middle of the bundle
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        # THEN nothing of the bundle is visible downstream: no object in processed, no event
        assert keys(provisioned, "processed") == []
        assert transformer_triggers(provisioned) == []
        # WHEN the event is delivered again to a new process (its lease lapses in 3 s)
        again = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert again.returncode == 0, again.stderr[-3000:]
        # THEN the bundle is published exactly once, whole
        assert json.loads(again.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
        assert transformer_triggers(provisioned) == [f"imdb/{extract_id}/manifest.json"]
        s3 = client("s3", provisioned)
        head = s3.head_object(Bucket=provisioned.bucket("processed"), Key=f"imdb/{extract_id}/{CSV_NAME}")
        assert head["ContentLength"] == sizes["inflated_bytes"]
        assert sorted(keys(provisioned, "processed")) == [
            f"imdb/{extract_id}/manifest.json",
            f"imdb/{extract_id}/{CSV_NAME}",
        ]
        assert alerts(provisioned) == []
    finally:
        drop_large_objects(provisioned)


LAMBDA_INVOCATION = """
import json, sys
from services.unzipper.handler import handler
print(json.dumps(handler(json.loads(sys.argv[1]), None)))
"""


def wait_for_triggers(settings: Settings, count: int, timeout: float = 60) -> list[str]:
    found: list[str] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += transformer_triggers(settings)
        time.sleep(0.2)
    return found


def queue_depth(settings: Settings, stage: str, *, dead_letter: bool = False) -> int:
    name = settings.dead_letter_queue(stage) if dead_letter else settings.queue(stage)
    sqs = client("sqs", settings)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    counts = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counts)["Attributes"]
    return sum(int(attributes[count]) for count in counts)

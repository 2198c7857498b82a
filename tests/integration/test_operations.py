"""An operator's tools after a failure, end to end through the real stage handlers, queues and warehouse:
``moviepipe dlq redrive`` and ``moviepipe replay`` (as a user runs them), each ending reconciled, loading
no row twice, and the failure alerted once (SNS → SQS inbox and email)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

from deploy.provision import provision
from services.loader.handler import make_handler as loader_handler
from services.transformer.handler import make_handler as transformer_handler
from services.transformer.runner import LocalSparkRunner
from services.transformer.settings import transformer_settings
from services.unzipper.handler import make_handler as unzipper_handler
from shared.aws import aws_environment, client
from shared.consumer import QueueConsumer
from shared.events import s3_notification
from shared.metrics import StageMetrics
from shared.progress import ExtractProgress
from shared.warehouse import query
from tests.conftest import free_port
from tests.factories import (
    CSV_NAME,
    alerts,
    bundle_files,
    drain_queue,
    keys,
    land,
    manifest_bytes,
    movie,
    new_extract_id,
    sqs_event,
    sqs_record,
    the_email_of,
    zip_bundle,
)

SOURCE = "ops"


def some_movies(n: int) -> list[dict]:
    return [movie(title=f"Operations {i}", year=1990 + i) for i in range(n)]


def moviepipe(settings, *args: str) -> subprocess.CompletedProcess:
    """``moviepipe ARGS`` as an operator runs it, configured for the test's deployment."""
    env = {
        **os.environ,
        **aws_environment(settings),
        "MOVIEPIPE_PREFIX": settings.prefix,
        "MOVIEPIPE_HOME": str(settings.home),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "moviepipe.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def run_consumer(settings, stage, handler, until, timeout=40.0) -> None:
    """Run the stage's real queue consumer until ``until()`` holds."""
    metrics = StageMetrics(f"ops_{uuid.uuid4().hex[:8]}_{stage}")
    consumer = QueueConsumer(settings, stage, handler, metrics)

    async def run():
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        await task

    asyncio.run(run())
    assert until(), f"the {stage} consumer did not get there in {timeout}s"


def depth(settings, queue: str) -> int:
    sqs = client("sqs", settings)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def deliver(settings, stage: str, handler) -> int:
    """Hand every message now on the stage's queue to its handler (as Lambda would); how many."""
    bodies = drain_queue(settings, settings.queue(stage))
    for body in bodies:
        assert handler(sqs_event(sqs_record(body)), None) == {"batchItemFailures": []}
    return len(bodies)


def loaded_rows(settings, extract_id: str) -> tuple[int, str | None]:
    database = settings.warehouse_database
    _, rows = query(settings, f"SELECT COUNT(*) FROM {database}.RAW.MOVIES WHERE EXTRACT_ID = '{extract_id}'")
    _, batches = query(
        settings, f"SELECT STATUS FROM {database}.AUDIT.BATCHES WHERE EXTRACT_ID = '{extract_id}'"
    )
    return rows[0][0], batches[0][0] if batches else None


def test_dlq_redrive_of_a_poisoned_then_fixed_message_ends_reconciled(warehouse_settings, spark):
    settings = warehouse_settings
    transform = transformer_handler(
        transformer_settings(settings), LocalSparkRunner(transformer_settings(settings), spark=spark)
    )
    load = loader_handler(settings)
    drain_queue(settings, settings.queue("unzipper"))  # S3's test event
    # GIVEN the processed bucket is gone, so every attempt to unzip a landed bundle fails
    client("s3", settings).delete_bucket(Bucket=settings.bucket("processed"))
    extract_id = new_extract_id()
    land(
        settings,
        zip_bundle(bundle_files(some_movies(5), extract_id=extract_id, source=SOURCE)),
        source=SOURCE,
        extract_id=extract_id,
    )
    unzip = unzipper_handler(settings)
    run_consumer(
        settings, "unzipper", unzip, lambda: depth(settings, settings.dead_letter_queue("unzipper")) == 1
    )

    # THEN the message is dead-lettered with exactly one alert, sent as one email, naming the way back
    (alert,) = alerts(settings)
    assert (alert["event"], alert["extract_id"], alert["source"]) == ("dead_lettered", extract_id, SOURCE)
    assert alert["replay"] == "moviepipe dlq redrive unzipper"
    the_email_of(settings, alert)
    listed = moviepipe(settings, "dlq", "list", "unzipper", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    (letter,) = json.loads(listed.stdout)
    assert letter["OBJECTS"] == f"s3://{settings.bucket('landing')}/{SOURCE}/{extract_id}.zip"

    # WHEN the cause is fixed (the bucket and its notifications are back) and the DLQ redriven
    provision(settings)
    redriven = moviepipe(settings, "dlq", "redrive", "unzipper")
    assert redriven.returncode == 0, redriven.stderr
    assert "moved 1 message(s)" in redriven.stdout
    processed = f"{SOURCE}/{extract_id}/manifest.json"
    run_consumer(settings, "unzipper", unzip, lambda: processed in keys(settings, "processed", SOURCE))
    assert deliver(settings, "transformer", transform) >= 1
    assert deliver(settings, "loader", load) >= 1

    # THEN the extract is loaded and reconciled, the DLQ is empty, and nothing more was alerted
    assert loaded_rows(settings, extract_id) == (5, "RECONCILED")
    assert ExtractProgress(settings).get(extract_id)["status"] == "loaded"
    assert depth(settings, settings.dead_letter_queue("unzipper")) == 0
    assert alerts(settings) == []

    # AND redelivering everything again loads no row twice
    land(
        settings,
        zip_bundle(bundle_files(some_movies(5), extract_id=extract_id, source=SOURCE)),
        source=SOURCE,
        extract_id=extract_id,
    )
    client("sqs", settings).send_message(
        QueueUrl=client("sqs", settings).get_queue_url(QueueName=settings.queue("loader"))["QueueUrl"],
        MessageBody=json.dumps(
            s3_notification(settings.bucket("archive"), f"{SOURCE}/{extract_id}/manifest.json")
        ),
    )
    deliver(settings, "loader", load)
    assert loaded_rows(settings, extract_id) == (5, "RECONCILED")


def test_replay_of_a_quarantined_extract_whose_cause_was_fixed_ends_reconciled(warehouse_settings, spark):
    settings = warehouse_settings
    transform = transformer_handler(
        transformer_settings(settings), LocalSparkRunner(transformer_settings(settings), spark=spark)
    )
    load = loader_handler(settings)
    s3 = client("s3", settings)
    processed = settings.bucket("processed")
    # GIVEN a processed extract whose movies.csv had not arrived: the transformer quarantined it
    extract_id = new_extract_id()
    files = bundle_files(some_movies(6), extract_id=extract_id, source=SOURCE)
    data = {name: content for name, content in files.items() if name != "manifest.json"}
    manifest = manifest_bytes(data, extract_id=extract_id, source=SOURCE, extract_kind="incremental")
    s3.put_object(Bucket=processed, Key=f"{SOURCE}/{extract_id}/manifest.json", Body=manifest)
    drain_queue(settings, settings.queue("transformer"))
    notification = s3_notification(processed, f"{SOURCE}/{extract_id}/manifest.json")
    assert transform(sqs_event(sqs_record(notification)), None) == {"batchItemFailures": []}
    record = ExtractProgress(settings).get(extract_id)
    assert record["status"] == "quarantined"
    assert record["stages"]["transformer"]["error"]["code"] == "INPUT_MISSING"
    (alert,) = alerts(settings)
    assert alert["replay"] == f"moviepipe replay {extract_id} --from-stage transformer"
    the_email_of(settings, alert)

    # WHEN the missing file is put in place and the extract replayed (from the stage that stopped it)
    for name, content in data.items():
        s3.put_object(Bucket=processed, Key=f"{SOURCE}/{extract_id}/{name}", Body=content)
    replayed = moviepipe(settings, "replay", extract_id)
    assert replayed.returncode == 0, replayed.stderr
    assert "handed to the transformer again" in replayed.stdout
    assert deliver(settings, "transformer", transform) >= 1
    assert deliver(settings, "loader", load) >= 1

    # THEN it is loaded and reconciled; the evidence and the earlier reason are kept; no new alert
    assert loaded_rows(settings, extract_id) == (6, "RECONCILED")
    assert ExtractProgress(settings).get(extract_id)["status"] == "loaded"
    kept = keys(settings, "quarantine", f"transform/{SOURCE}/{extract_id}/")
    assert f"transform/{SOURCE}/{extract_id}/manifest.json" in kept
    assert f"transform/{SOURCE}/{extract_id}/reason.json" not in kept
    assert any("/reason.replayed-" in key for key in kept)
    assert alerts(settings) == []

    # AND replaying it again, from either stage, loads no row twice
    for stage in ("transformer", "loader"):
        again = moviepipe(settings, "replay", extract_id, "--from-stage", stage)
        assert again.returncode == 0, again.stderr
    deliver(settings, "transformer", transform)
    deliver(settings, "loader", load)
    assert loaded_rows(settings, extract_id) == (6, "RECONCILED")
    assert alerts(settings) == []
    # (the csv the manifest vouches for is the one loaded)
    assert CSV_NAME in data


def test_replay_says_what_it_cannot_do(provisioned):
    unknown = moviepipe(provisioned, "replay", "20260101T000000Z-00000000")
    assert unknown.returncode == 2 and "no extract '20260101T000000Z-00000000'" in unknown.stderr
    extract_id = new_extract_id()
    ExtractProgress(provisioned).begin(extract_id, SOURCE)
    nothing = moviepipe(provisioned, "replay", extract_id)
    assert nothing.returncode == 2 and "--from-stage" in nothing.stderr
    missing = moviepipe(provisioned, "replay", extract_id, "--from-stage", "loader")
    assert missing.returncode == 2 and "is not there: replay from an earlier stage" in missing.stderr
    stage = moviepipe(provisioned, "dlq", "list", "nowhere")
    assert stage.returncode == 2 and "unknown stage 'nowhere'" in stage.stderr
    # AND with S3 and SQS not answering (the stack down), each command says so in a line, no traceback
    down = provisioned.model_copy(update={"aws_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    # (each waits out boto's retries, 10 s: two commands stand for the three)
    for command in (["replay", extract_id], ["dlq", "redrive", "loader"]):
        result = moviepipe(down, *command)
        assert result.returncode == 1 and "is the stack up?" in result.stderr, command
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, command

"""The declared resources, applied to a real moto server: events reach the right queue, failures the DLQ."""

import asyncio
import contextlib
import json
import threading
import time

import pytest

from deploy.provision import provision
from deploy.resources import alerts_inbox, resources
from shared.alerts import raise_alert
from shared.aws import client
from shared.consumer import QueueConsumer
from shared.events import objects_in_sqs_body
from shared.metrics import StageMetrics
from tests.factories import the_email_of

pytestmark = pytest.mark.integration


def receive_all(settings, queue_name, wait=2):
    sqs = client("sqs", settings)
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    found = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def created_keys(messages):
    return [created.key for message in messages for created in objects_in_sqs_body(message["Body"])]


def test_provisioning_is_idempotent(provisioned):
    # WHEN applied a second time
    declared = provision(provisioned)
    # THEN every bucket and queue exists once
    buckets = {b["Name"] for b in client("s3", provisioned).list_buckets()["Buckets"]}
    assert {b.name for b in declared.buckets} <= buckets
    queues = client("sqs", provisioned).list_queues(QueueNamePrefix=provisioned.prefix)["QueueUrls"]
    assert len(queues) == len(resources(provisioned).queues)


def test_each_bucket_notifies_its_stage_by_suffix(provisioned):
    # GIVEN
    s3 = client("s3", provisioned)
    # WHEN objects land in each bucket, some matching the stage's suffix and some not
    s3.put_object(Bucket=provisioned.bucket("landing"), Key="imdb/e1.zip", Body=b"zip")
    s3.put_object(Bucket=provisioned.bucket("landing"), Key="imdb/e1.txt", Body=b"no")
    s3.put_object(Bucket=provisioned.bucket("processed"), Key="imdb/e1/movies.csv", Body=b"no")
    s3.put_object(Bucket=provisioned.bucket("processed"), Key="imdb/e1/manifest.json", Body=b"{}")
    s3.put_object(Bucket=provisioned.bucket("archive"), Key="imdb/e1/manifest.json", Body=b"{}")
    # THEN only the matching objects reach each stage's queue
    assert created_keys(receive_all(provisioned, provisioned.queue("unzipper"))) == ["imdb/e1.zip"]
    assert created_keys(receive_all(provisioned, provisioned.queue("transformer"))) == [
        "imdb/e1/manifest.json"
    ]
    assert created_keys(receive_all(provisioned, provisioned.queue("loader"))) == ["imdb/e1/manifest.json"]


def test_alerts_reach_the_inbox(provisioned):
    # WHEN
    raise_alert(provisioned, stage="unzipper", event="bundle_quarantined", message="bad zip", extract_id="e9")
    # THEN
    (message,) = receive_all(provisioned, alerts_inbox(provisioned))
    alert = json.loads(message["Body"])
    assert alert["stage"] == "unzipper" and alert["extract_id"] == "e9" and alert["message"] == "bad zip"


def test_consumer_deletes_successes_and_dead_letters_repeated_failures(provisioned):
    # GIVEN a handler that always fails one key and succeeds on the other
    handled = []

    def handler(event, context):
        failures = []
        for record in event["Records"]:
            keys = [created.key for created in objects_in_sqs_body(record["body"])]
            if any("poison" in key for key in keys):
                failures.append({"itemIdentifier": record["messageId"]})
            handled.extend(keys)
        return {"batchItemFailures": failures}

    s3 = client("s3", provisioned)
    s3.put_object(Bucket=provisioned.bucket("landing"), Key="imdb/good.zip", Body=b"1")
    s3.put_object(Bucket=provisioned.bucket("landing"), Key="imdb/poison.zip", Body=b"2")
    consumer = QueueConsumer(provisioned, "unzipper", handler, StageMetrics(f"test_{provisioned.prefix}"))

    # WHEN the consumer runs long enough for the poison message to be received max_receive_count times
    async def run():
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        deadline = time.monotonic() + 30
        while (
            handled.count("imdb/poison.zip") < provisioned.max_receive_count and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        stop.set()
        await task

    asyncio.run(run())

    # THEN the good message was handled once and deleted; the poison one sits in the DLQ, with one alert
    assert handled.count("imdb/good.zip") == 1
    assert handled.count("imdb/poison.zip") == provisioned.max_receive_count
    # (receiving past the retry delay is what lets the redrive move the poison message to the DLQ)
    assert receive_all(provisioned, provisioned.queue("unzipper"), wait=4) == []
    dead = receive_all(provisioned, provisioned.dead_letter_queue("unzipper"))
    assert created_keys(dead) == ["imdb/poison.zip"]
    (alert,) = [json.loads(m["Body"]) for m in receive_all(provisioned, alerts_inbox(provisioned))]
    assert alert["event"] == "dead_lettered" and alert["stage"] == "unzipper"
    assert alert["details"]["objects"] == [f"s3://{provisioned.bucket('landing')}/imdb/poison.zip"]
    assert (alert["extract_id"], alert["source"]) == ("poison", "imdb")
    assert alert["replay"] == "moviepipe dlq redrive unzipper"
    the_email_of(provisioned, alert)


def test_a_message_dead_lettered_without_its_alert_is_alerted_once_by_the_replicas(provisioned):
    # GIVEN a message that reached the DLQ while no consumer alerted (its consumer was killed holding its
    # last receive, and the redrive moved it), as the queue's redrive would leave it
    sqs = client("sqs", provisioned)
    dlq = sqs.get_queue_url(QueueName=provisioned.dead_letter_queue("unzipper"))["QueueUrl"]
    body = "a message whose consumer died on its last receive"
    sqs.send_message(QueueUrl=dlq, MessageBody=body)

    def handler(event, context):
        return {"batchItemFailures": []}

    # WHEN two replicas of the stage's consumer run for a moment
    async def run():
        stop = asyncio.Event()
        replicas = [
            QueueConsumer(provisioned, "unzipper", handler, StageMetrics(f"test_{provisioned.prefix}_{n}"))
            for n in range(2)
        ]
        tasks = [asyncio.create_task(replica.run(stop)) for replica in replicas]
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(run())

    # THEN one alert says the message went to the DLQ, and the message is still there for a person
    alerts = [json.loads(m["Body"]) for m in receive_all(provisioned, alerts_inbox(provisioned))]
    assert [(a["stage"], a["event"]) for a in alerts] == [("unzipper", "dead_lettered")]
    assert alerts[0]["details"]["body"] == body
    assert [m["Body"] for m in receive_all(provisioned, provisioned.dead_letter_queue("unzipper"))] == [body]


def test_a_consumer_stopped_mid_batch_lets_its_messages_go_at_once(provisioned):
    # GIVEN a consumer whose handler is still working on a batch
    started = threading.Event()
    finish = threading.Event()

    def handler(event, context):
        started.set()
        finish.wait(30)
        return {"batchItemFailures": []}

    s3 = client("s3", provisioned)
    s3.put_object(Bucket=provisioned.bucket("landing"), Key="imdb/slow.zip", Body=b"1")
    consumer = QueueConsumer(provisioned, "unzipper", handler, StageMetrics(f"test_{provisioned.prefix}"))

    # WHEN the service stops before the batch is done (its task cancelled, as a shutdown does)
    async def run():
        task = asyncio.create_task(consumer.run(asyncio.Event()))
        while not started.is_set():
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        finish.set()  # the handler's thread ends too (a stopping process would just exit)

    asyncio.run(run())

    # THEN its message is visible again at once, not after the visibility timeout
    assert created_keys(receive_all(provisioned, provisioned.queue("unzipper"), wait=2)) == ["imdb/slow.zip"]

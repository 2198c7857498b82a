"""What a stage's ``/metrics`` says after real work: messages, lag, rows, bytes, queue and DLQ depth."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import shared.consumer
from services.unzipper.app import create_app
from shared.aws import client
from shared.consumer import QueueConsumer
from shared.events import objects_in_sqs_body
from shared.metrics import StageMetrics
from shared.progress import ExtractProgress
from shared.settings import Settings
from tests.factories import land, movies, new_extract_id, valid_bundle
from tests.integration.test_unzipper_service import wait_for_stage

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_the_unzippers_metrics_follow_a_bundle_through_its_queue(provisioned: Settings, monkeypatch):
    # GIVEN the unzipper service, refreshing its queue depths often; its long polls last 5 s, so the
    # lag of the batch that carried the bundle is still on /metrics when the stage reports success
    monkeypatch.setattr(shared.consumer, "DEPTH_REFRESH_SECONDS", 0.2)
    settings = provisioned.model_copy(update={"poll_wait_seconds": 5})
    progress = ExtractProgress(settings)
    before = samples(generate_latest(REGISTRY).decode())
    with TestClient(create_app(settings)) as service:
        # WHEN a bundle of 5 movies lands (S3 notifies the unzipper's queue)
        extract_id = new_extract_id()
        progress.begin(extract_id, "imdb")
        bundle = valid_bundle(movies(5), extract_id=extract_id)
        land(settings, bundle, extract_id=extract_id)
        assert wait_for_stage(progress, extract_id, "unzipper")["status"] == "succeeded"
        messages = "moviepipe_unzipper_messages_total"

        def settled() -> bool:
            # A message is counted once it is deleted from the queue, just after the stage records success.
            scraped = samples(service.get("/metrics").text)
            handled = sum(value(scraped, messages, outcome=o) for o in ("succeeded", "failed"))
            earlier = sum(value(before, messages, outcome=o) for o in ("succeeded", "failed"))
            return handled - earlier >= value(scraped, messages, outcome="received") - value(
                before, messages, outcome="received"
            )

        assert wait_until(settled)
        after = samples(service.get("/metrics").text)

        # THEN its message was received and succeeded, nothing failed, and it had waited in the queue
        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        received = delta("moviepipe_unzipper_messages_total", outcome="received")
        assert received >= 1
        assert delta("moviepipe_unzipper_messages_total", outcome="succeeded") == received
        assert delta("moviepipe_unzipper_messages_total", outcome="failed") == 0
        assert value(after, "moviepipe_unzipper_queue_lag_seconds") > 0
        assert delta("moviepipe_unzipper_queue_wait_seconds_count") >= 1
        assert delta("moviepipe_unzipper_batch_duration_seconds_count") >= 1
        # ... and the bundle's rows and bytes are counted, read and written
        assert delta("moviepipe_unzipper_rows_total", kind="unzipped") == 5
        assert delta("moviepipe_unzipper_bytes_total", direction="in") == len(bundle)
        assert delta("moviepipe_unzipper_bytes_total", direction="out") > 0
        assert value(after, "moviepipe_unzipper_consumer_up") == 1
        assert value(after, "process_cpu_seconds_total") > 0

        # WHEN a message sits in the unzipper's dead-letter queue
        sqs = client("sqs", settings)
        dlq = sqs.get_queue_url(QueueName=settings.dead_letter_queue("unzipper"))["QueueUrl"]
        sqs.send_message(QueueUrl=dlq, MessageBody='{"dead": "letter"}')

        # THEN the DLQ depth says so at the next refresh
        def dlq_depth() -> float:
            return value(samples(service.get("/metrics").text), "moviepipe_unzipper_dlq_messages")

        assert wait_until(lambda: dlq_depth() == 1), dlq_depth()


def test_the_consumer_counts_retries_and_dead_letters(provisioned: Settings):
    # GIVEN a consumer whose handler always fails the one message on its queue
    def handler(event, context):
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record in event["Records"]
                if any("poison" in created.key for created in objects_in_sqs_body(record["body"]))
            ]
        }

    name = f"test_{provisioned.prefix}"
    consumer = QueueConsumer(provisioned, "unzipper", handler, StageMetrics(name))
    client("s3", provisioned).put_object(
        Bucket=provisioned.bucket("landing"), Key="imdb/poison.zip", Body=b"not a zip"
    )

    # WHEN it runs until the message was received max_receive_count times
    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        failed = (f"moviepipe_{name}_messages_total", {"outcome": "dead_lettered"})
        deadline = time.monotonic() + 30
        while not REGISTRY.get_sample_value(*failed) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        await task

    asyncio.run(run())

    # THEN every receive after the first counts as a retry, every attempt as a failure, the last as
    # dead-lettered
    def outcome(label: str) -> float:
        return REGISTRY.get_sample_value(f"moviepipe_{name}_messages_total", {"outcome": label})

    retries = provisioned.max_receive_count - 1
    assert outcome("dead_lettered") == 1
    assert outcome("failed") == provisioned.max_receive_count
    assert outcome("retried") == retries
    # (the queue's first message is S3's test event, which succeeds)
    assert outcome("received") == outcome("succeeded") + outcome("failed")
    assert REGISTRY.get_sample_value(f"moviepipe_{name}_consumer_up") == 0  # stopped

"""The SQS consumer loop: what Lambda's event source mapping does, for a long-running service.

Long-polls the stage's queue, hands each batch to the stage's Lambda-style handler in a worker thread,
deletes only the messages that succeeded, and leaves failed ones to come back (and, after
``maxReceiveCount`` receives, to go to the queue's DLQ through its redrive policy, with one alert).
While a batch runs, its messages' visibility is extended so a slow batch is not handed to a second
worker; a killed worker stops extending, and the messages return.

It also keeps the stage's queue metrics (``shared.metrics``): messages by outcome, batch durations, how
long messages waited, and, every ``DEPTH_REFRESH_SECONDS``, the depth of the queue and of its DLQ; a
message found in the DLQ that no consumer alerted (one was killed on its last receive) is alerted then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from aiobotocore.session import get_session

from shared.alerts import Alert, raise_alert
from shared.aws import LOCAL_CREDENTIALS
from shared.batch import Handler
from shared.events import named_extract, objects_in_sqs_body
from shared.logs import log_event
from shared.metrics import StageMetrics
from shared.settings import Settings

logger = logging.getLogger(__name__)

VISIBILITY_SECONDS = 60
RETRY_DELAY_SECONDS = 2
DEPTH_REFRESH_SECONDS = 30


class QueueConsumer:
    """Feed one stage's queue to its handler until stopped."""

    def __init__(self, settings: Settings, stage: str, handler: Handler, metrics: StageMetrics):
        self.settings = settings
        self.stage = stage
        self.handler = handler
        self.metrics = metrics
        self.polling = False
        self.last_error: str | None = None
        self._dead_letters_alerted: set[str] = set()

    @property
    def polling(self) -> bool:
        """Whether the last attempt to poll the queue worked (``/ready`` and the ``consumer_up`` gauge)."""
        return self._polling

    @polling.setter
    def polling(self, value: bool) -> None:
        self._polling = value
        self.metrics.consumer_up.set(1 if value else 0)

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"region_name": self.settings.region}
        if self.settings.aws_endpoint_url:
            kwargs["endpoint_url"] = self.settings.aws_endpoint_url
        if self.settings.environment == "local" and not os.environ.get("AWS_ACCESS_KEY_ID"):
            kwargs["aws_access_key_id"] = LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]
            kwargs["aws_secret_access_key"] = LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        return kwargs

    async def run(self, stop: asyncio.Event) -> None:
        async with get_session().create_client("sqs", **self._client_kwargs()) as sqs:
            depths = asyncio.create_task(self._watch_depths(sqs, stop))
            try:
                await self._consume(sqs, stop)
            finally:
                depths.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await depths
        self.polling = False

    async def _consume(self, sqs: Any, stop: asyncio.Event) -> None:
        queue_url = None
        while not stop.is_set():
            try:
                if queue_url is None:
                    queue_url = (await sqs.get_queue_url(QueueName=self.settings.queue(self.stage)))[
                        "QueueUrl"
                    ]
                    self.queue_arn = (
                        await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
                    )["Attributes"]["QueueArn"]
                self.polling = True
                await self._poll_once(sqs, queue_url, stop)
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.polling = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                log_event(logger, "queue_poll_failed", self.last_error, level=logging.ERROR)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=2)

    async def _poll_once(self, sqs: Any, queue_url: str, stop: asyncio.Event) -> None:
        response = await sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self.settings.poll_wait_seconds,
            VisibilityTimeout=VISIBILITY_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        self._count_received(messages)
        if not messages:
            return
        event = {"Records": [self._record(message) for message in messages]}
        heartbeat = asyncio.create_task(self._keep_invisible(sqs, queue_url, messages))
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(self.handler, event, None)
        except asyncio.CancelledError:
            # The service is stopping before the batch finished: let its messages go at once, for the
            # next worker (or this one, started again) rather than after the visibility timeout.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(sqs, queue_url, messages))
            raise
        except Exception:
            # Nothing is deleted: every message of the batch comes back after its visibility timeout.
            self.metrics.messages.labels("failed").inc(len(messages))
            raise
        finally:
            heartbeat.cancel()
            self.metrics.batch_duration.observe(time.monotonic() - started)
        failed = {failure["itemIdentifier"] for failure in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        if done:
            await sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if retry:
            # Come back soon, not after the full visibility timeout; the redrive policy counts receives.
            await sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": RETRY_DELAY_SECONDS,
                    }
                    for i, m in enumerate(retry)
                ],
            )
            for message in retry:
                receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
                log_event(
                    logger,
                    "message_failed",
                    level=logging.WARNING,
                    message_id=message["MessageId"],
                    receive_count=receive_count,
                )
                if receive_count >= self.settings.max_receive_count:
                    self.metrics.messages.labels("dead_lettered").inc()
                    await asyncio.to_thread(self._alert_dead_lettered, message, receive_count)
        self.metrics.messages.labels("succeeded").inc(len(done))
        self.metrics.messages.labels("failed").inc(len(retry))

    async def _release(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
        await sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        )
        log_event(logger, "batch_released", "stopping mid-batch: messages released", count=len(messages))

    def _alert_dead_lettered(self, message: dict[str, Any], receive_count: int) -> None:
        """The message failed its last allowed receive: the queue's redrive moves it to the DLQ next."""
        dlq = self.settings.dead_letter_queue(self.stage)
        objects = _created_objects(message["Body"])
        extract_id, source = named_extract(message["Body"])
        raise_alert(
            self.settings,
            Alert(
                stage=self.stage,
                event="dead_lettered",
                code="RETRIES_EXHAUSTED",
                message=(
                    f"a {self.stage} message failed {receive_count} times and goes to the dead-letter "
                    f"queue {dlq}" + (f" ({', '.join(objects)})" if objects else "")
                ),
                extract_id=extract_id,
                source=source,
                evidence=f"dead-letter queue {dlq} (moviepipe dlq list {self.stage}); the stage's logs",
                replay=f"moviepipe dlq redrive {self.stage}",
                details={
                    "message_id": message["MessageId"],
                    "objects": objects,
                    "body": message["Body"][:4000],
                },
                dedupe=None if extract_id else message["MessageId"],
            ),
        )

    def _count_received(self, messages: list[dict[str, Any]]) -> None:
        """Count one receive's messages and how long they had waited; the lag is 0 when it found none."""
        now = time.time()
        ages = []
        for message in messages:
            attributes = message.get("Attributes", {})
            first_receive = int(attributes.get("ApproximateReceiveCount", 1)) <= 1
            if not first_receive:
                self.metrics.messages.labels("retried").inc()
            if "SentTimestamp" in attributes:
                age = max(0.0, now - int(attributes["SentTimestamp"]) / 1000)
                ages.append(age)
                if first_receive:
                    self.metrics.queue_wait.observe(age)
                    # One line per message: what the bench reads pickup latency from.
                    log_event(
                        logger,
                        "message_received",
                        message_id=message.get("MessageId"),
                        waited_ms=round(age * 1000, 1),
                    )
        self.metrics.messages.labels("received").inc(len(messages))
        self.metrics.queue_lag.set(max(ages, default=0.0))

    async def _watch_depths(self, sqs: Any, stop: asyncio.Event) -> None:
        """Refresh the queue and DLQ depth gauges periodically, also while a long batch runs."""
        gauges = {
            self.settings.queue(self.stage): self.metrics.queue_messages,
            self.settings.dead_letter_queue(self.stage): self.metrics.dlq_messages,
        }
        urls: dict[str, str] = {}
        unreadable: set[str] = set()
        while not stop.is_set():
            for name, gauge in gauges.items():
                try:
                    if name not in urls:
                        urls[name] = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
                    attributes = await sqs.get_queue_attributes(
                        QueueUrl=urls[name], AttributeNames=["ApproximateNumberOfMessages"]
                    )
                    depth = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
                    gauge.set(depth)
                    unreadable.discard(name)
                except Exception as exc:
                    if name not in unreadable:  # once until it answers again, not at every refresh
                        unreadable.add(name)
                        log_event(
                            logger,
                            "queue_depth_unknown",
                            f"could not read the depth of {name}: {type(exc).__name__}: {exc}",
                            level=logging.WARNING,
                            queue=name,
                        )
                    continue
                if depth and name == self.settings.dead_letter_queue(self.stage):
                    await self._alert_dead_letters(sqs, urls[name])
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=DEPTH_REFRESH_SECONDS)

    async def _alert_dead_letters(self, sqs: Any, dlq_url: str) -> None:
        """Alert for what the DLQ holds that no consumer alerted as it went there.

        A consumer alerts as a message fails its last allowed receive; one killed holding that receive,
        or stopping mid-batch and releasing it, alerts nothing, and the queue's redrive moves the message
        at its next receive. Looking (without taking: visibility 0) at what the DLQ holds catches those.
        The alert is the one the consumer would have raised, so the store keeps it to one per message.
        """
        try:
            answer = await sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            )
        except Exception as exc:  # the next refresh looks again
            log_event(logger, "dead_letters_unread", f"{type(exc).__name__}: {exc}", level=logging.WARNING)
            return
        for message in answer.get("Messages", []):
            if message["MessageId"] in self._dead_letters_alerted:
                continue
            await asyncio.to_thread(self._alert_dead_lettered, message, self.settings.max_receive_count)
            self._dead_letters_alerted.add(message["MessageId"])

    async def _keep_invisible(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
        while True:
            await asyncio.sleep(VISIBILITY_SECONDS / 3)
            with contextlib.suppress(Exception):
                await sqs.change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": m["ReceiptHandle"],
                            "VisibilityTimeout": VISIBILITY_SECONDS,
                        }
                        for i, m in enumerate(messages)
                    ],
                )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """The SQS record as Lambda would deliver it."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": getattr(self, "queue_arn", ""),
            "awsRegion": self.settings.region,
        }


def _created_objects(body: str) -> list[str]:
    """The S3 objects a message names, decoded, for a person reading the alert; none if it names none."""
    try:
        return [created.uri for created in objects_in_sqs_body(body)]
    except (ValueError, KeyError, TypeError):
        return []

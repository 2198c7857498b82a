"""The SQS consumer loop: what Lambda's event source mapping does, for a long-running service.

Long-polls the stage's queue, hands each batch to the stage's Lambda-style handler in a worker thread,
deletes only the messages that succeeded, and leaves failed ones to come back (and, after
``maxReceiveCount`` receives, to go to the queue's DLQ through its redrive policy, with one alert).
While a batch runs, its messages' visibility is extended so a slow batch is not handed to a second
worker; a killed worker stops extending, and the messages return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from aiobotocore.session import get_session

from shared.alerts import raise_alert
from shared.aws import LOCAL_CREDENTIALS
from shared.batch import Handler
from shared.events import objects_in_sqs_body
from shared.logs import log_event
from shared.metrics import StageMetrics
from shared.settings import Settings

logger = logging.getLogger(__name__)

VISIBILITY_SECONDS = 60
RETRY_DELAY_SECONDS = 2


class QueueConsumer:
    """Feed one stage's queue to its handler until stopped."""

    def __init__(self, settings: Settings, stage: str, handler: Handler, metrics: StageMetrics):
        self.settings = settings
        self.stage = stage
        self.handler = handler
        self.metrics = metrics
        self.polling = False
        self.last_error: str | None = None

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
        self.polling = False

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
        if not messages:
            return
        event = {"Records": [self._record(message) for message in messages]}
        heartbeat = asyncio.create_task(self._keep_invisible(sqs, queue_url, messages))
        try:
            result = await asyncio.to_thread(self.handler, event, None)
        finally:
            heartbeat.cancel()
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
                    await asyncio.to_thread(self._alert_dead_lettered, message, receive_count)
        self.metrics.messages.labels("succeeded").inc(len(done))
        self.metrics.messages.labels("failed").inc(len(retry))

    def _alert_dead_lettered(self, message: dict[str, Any], receive_count: int) -> None:
        """The message failed its last allowed receive: the queue's redrive moves it to the DLQ next."""
        raise_alert(
            self.settings,
            stage=self.stage,
            event="message_dead_lettered",
            message=(
                f"a {self.stage} message failed {receive_count} times and goes to "
                f"{self.settings.dead_letter_queue(self.stage)}"
            ),
            details={
                "message_id": message["MessageId"],
                "objects": _created_objects(message["Body"]),
                "body": message["Body"][:4000],
            },
        )

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

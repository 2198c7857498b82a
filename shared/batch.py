"""The Lambda-style entry point every event-driven stage shares.

A stage supplies ``process(ObjectCreated)``; the handler accepts an S3 notification or an SQS event
wrapping S3 notifications, processes record by record, and for SQS reports only the failed message ids
back (``batchItemFailures``) so that only those are retried and, after repeated failure, dead-lettered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from shared.events import ObjectCreated, objects_in_notification, objects_in_sqs_body

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def is_sqs_event(event: dict[str, Any]) -> bool:
    records = event.get("Records") or []
    return bool(records) and records[0].get("eventSource") == "aws:sqs"


def s3_event_handler(process: Callable[[ObjectCreated], None]) -> Handler:
    """Build ``handler(event, context)`` around a function that processes one created object."""

    def record_handler(record: SQSRecord) -> None:
        for created in objects_in_sqs_body(record.body):
            process(created)

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if is_sqs_event(event):
            processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
            return process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        # A direct S3 notification has no partial-failure protocol: any failure fails the invocation.
        for created in objects_in_notification(event):
            process(created)
        return {"batchItemFailures": []}

    return handler

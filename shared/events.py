"""S3 ObjectCreated notifications, as delivered directly or wrapped in SQS messages.

Keys arrive URL-encoded (``/`` as ``%2F``, space as ``+``) and are decoded here; the
``s3:TestEvent`` S3 sends when a notification is configured carries no records and yields nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event


@dataclass(frozen=True)
class ObjectCreated:
    """One object that landed in a bucket."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    event_name: str = "ObjectCreated:Put"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def objects_in_notification(notification: dict[str, Any]) -> list[ObjectCreated]:
    """Objects named by one S3 notification; none for a test event or a non-creation event.

    Anything else is not a notification this pipeline can act on: ``ValueError`` naming why, so the
    message fails, is retried and ends in the dead-letter queue with an alert, never silently dropped.
    """
    if not isinstance(notification, dict):
        raise ValueError(f"not an S3 event notification but a JSON {type(notification).__name__}")
    if "Records" not in notification:
        if notification.get("Event") == "s3:TestEvent":
            return []
        raise ValueError("not an S3 event notification: it has no Records and is no s3:TestEvent")
    found = []
    try:
        for record in S3Event(notification).records:
            if record.event_source != "aws:s3" or not record.event_name.startswith("ObjectCreated"):
                continue
            s3_object = record.s3.get_object
            found.append(
                ObjectCreated(
                    bucket=record.s3.bucket.name,
                    key=unquote_plus(s3_object.key),
                    size=s3_object.raw_event.get("size"),
                    etag=s3_object.raw_event.get("eTag"),
                    event_name=record.event_name,
                )
            )
    except (AttributeError, TypeError, KeyError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise ValueError(f"an S3 event record this pipeline cannot read ({reason})") from exc
    return found


def objects_in_sqs_body(body: str) -> list[ObjectCreated]:
    """Objects named by the S3 notification an SQS message carries."""
    return objects_in_notification(json.loads(body))


def s3_notification(bucket: str, key: str, *, size: int = 0, etag: str = "") -> dict[str, Any]:
    """An S3 ObjectCreated notification as S3 sends it (key URL-encoded), for replays and tests."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe=""), "size": size, "eTag": etag},
                },
            }
        ]
    }


def named_extract(body: str) -> tuple[str | None, str | None]:
    """The extract and source a queue message is about: an extract request's, or those of the first object
    it names (every bucket's keys start ``{source}/{extract_id}``: ``.zip`` in landing, ``/…`` elsewhere).
    """
    try:
        named = json.loads(body)
    except ValueError:
        return None, None
    if isinstance(named, dict) and isinstance(named.get("extract_id"), str):
        source = named.get("source")
        return named["extract_id"], source if isinstance(source, str) else None
    try:
        keys = [created.key for created in objects_in_notification(named)] if isinstance(named, dict) else []
    except (ValueError, KeyError, TypeError):
        return None, None
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 2 and parts[0] and parts[1]:
            return parts[1].removesuffix(".zip"), parts[0]
    return None, None

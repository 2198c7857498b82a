"""What an operator does after a failure: read the alerts, look into a dead-letter queue, move its
messages back, and replay an extract from a stage once its cause is fixed.

Both replays are safe because every stage is idempotent: a stage handed an input it already finished
does nothing, so replaying too much changes nothing, and replaying twice loads nothing twice.

- ``replay(extract_id, from_stage)`` retires the stage's ``reason.json`` (renamed beside the evidence,
  which stays), lets the extract's alerts from that stage on be raised again, and hands the stage its
  input again as the event S3 sends (or, for the extractor, the extract request).
- ``redrive(stage)`` moves every message of the stage's DLQ back to its queue, body and attributes
  unchanged, and lets the alerts of the extracts they name be raised again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from deploy.resources import TRIGGERS
from shared.alerts import forget_alerts
from shared.aws import client, object_exists
from shared.events import named_extract, objects_in_sqs_body, s3_notification
from shared.progress import FAILED, QUARANTINED, ExtractProgress
from shared.quarantine import REASON_NAME
from shared.settings import STAGES, Settings

PEEK_VISIBILITY_SECONDS = 0


class OperationError(Exception):
    """The operation cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class DeadLetter:
    """One message in a dead-letter queue."""

    message_id: str
    sent_at: str | None
    receive_count: int
    objects: list[str]
    body: str

    @classmethod
    def of(cls, message: dict[str, Any]) -> DeadLetter:
        attributes = message.get("Attributes", {})
        sent = attributes.get("SentTimestamp")
        return cls(
            message_id=message["MessageId"],
            sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat(timespec="seconds")
            if sent
            else None,
            receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
            objects=_objects(message["Body"]),
            body=message["Body"],
        )


@dataclass
class Replayed:
    """What a replay did."""

    extract_id: str
    stage: str
    input: str
    retired: list[str] = field(default_factory=list)
    alerts_reopened: int = 0


def _stage(stage: str) -> str:
    if stage not in STAGES:
        raise OperationError(f"unknown stage {stage!r}; the stages are {', '.join(STAGES)}")
    return stage


def _queue_url(settings: Settings, name: str) -> str:
    sqs = client("sqs", settings)
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise OperationError(f"queue {name} does not exist (is the stack up and provisioned?)") from exc


def dead_letters(settings: Settings, stage: str, limit: int = 100) -> list[DeadLetter]:
    """The messages in the stage's DLQ (up to ``limit``), left where they are."""
    sqs = client("sqs", settings)
    url = _queue_url(settings, settings.dead_letter_queue(_stage(stage)))
    seen: dict[str, DeadLetter] = {}
    for _ in range(max(1, limit // 10) * 3):
        # Peeking: received and at once visible again (so a redrive right after finds them all).
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen[message["MessageId"]] = DeadLetter.of(message)
        if len(seen) >= limit:
            break
    return sorted(seen.values(), key=lambda letter: letter.sent_at or "")[:limit]


def dlq_depth(settings: Settings, stage: str) -> int:
    url = _queue_url(settings, settings.dead_letter_queue(_stage(stage)))
    attributes = client("sqs", settings).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def redrive(settings: Settings, stage: str, limit: int | None = None) -> list[DeadLetter]:
    """Move the stage's dead-lettered messages back to its queue; the messages moved.

    Each is sent to the queue before it is deleted from the DLQ, so a crash in between leaves a copy in
    both (harmless: the stage is idempotent) and never none.
    """
    sqs = client("sqs", settings)
    dlq = _queue_url(settings, settings.dead_letter_queue(_stage(stage)))
    queue = _queue_url(settings, settings.queue(stage))
    moved: list[DeadLetter] = []
    while limit is None or len(moved) < limit:
        messages = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=10 if limit is None else min(10, limit - len(moved)),
            VisibilityTimeout=60,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            letter = DeadLetter.of(message)
            extract_id, _ = named_extract(message["Body"])
            if extract_id:
                # A redriven message that fails again is a failure someone must hear of again.
                forget_alerts(settings, extract_id, stage)
            sqs.send_message(
                QueueUrl=queue,
                MessageBody=message["Body"],
                MessageAttributes=message.get("MessageAttributes", {}),
            )
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved.append(letter)
    return moved


def replay(settings: Settings, extract_id: str, from_stage: str | None = None) -> Replayed:
    """Hand the extract to ``from_stage`` again (by default the stage that stopped it)."""
    progress = ExtractProgress(settings)
    record = progress.get(extract_id)
    if record is None:
        raise OperationError(f"no extract {extract_id!r} in {settings.extracts_table}")
    stages = record["stages"]
    stopped = [stage for stage in STAGES if stages.get(stage, {}).get("status") in (QUARANTINED, FAILED)]
    stage = _stage(from_stage) if from_stage else (stopped[0] if stopped else None)
    if stage is None:
        raise OperationError(
            f"extract {extract_id} is {record['status']}: no stage quarantined or failed it; "
            "name one with --from-stage to replay anyway"
        )
    source = record.get("source")
    if not source:
        raise OperationError(f"extract {extract_id} names no source; replay its input by hand")
    replayed = Replayed(extract_id, stage, "")
    for later in STAGES[STAGES.index(stage) :]:
        where = stages.get(later, {}).get("quarantine")
        if where:
            replayed.retired += _retire_reason(settings, where)
        replayed.alerts_reopened += forget_alerts(settings, extract_id, later)
    sqs = client("sqs", settings)
    queue = _queue_url(settings, settings.queue(stage))
    if stage == "extractor":
        replayed.input = f"extract request of {source}"
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"extract_id": extract_id, "source": source}))
        return replayed
    bucket, key = stage_input(settings, stage, source, extract_id)
    if not object_exists(settings, bucket, key):
        raise OperationError(
            f"the {stage}'s input s3://{bucket}/{key} is not there: replay from an earlier stage"
        )
    replayed.input = f"s3://{bucket}/{key}"
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(s3_notification(bucket, key)))
    return replayed


def stage_input(settings: Settings, stage: str, source: str, extract_id: str) -> tuple[str, str]:
    """The bucket and key of the object whose creation triggers ``stage`` for the extract: the bundle
    ``{source}/{extract_id}.zip`` in landing, else ``{source}/{extract_id}/manifest.json``."""
    role, suffix = TRIGGERS[stage]
    joined = suffix if suffix.startswith(".") else f"/{suffix}"
    return settings.bucket(role), f"{source}/{extract_id}{joined}"


def _retire_reason(settings: Settings, folder_uri: str) -> list[str]:
    """Rename the folder's ``reason.json`` so the stage judges its input again; the evidence stays."""
    parts = urlsplit(folder_uri)
    bucket, folder = parts.netloc, parts.path.lstrip("/")
    folder = folder if folder.endswith("/") else f"{folder}/"
    s3 = client("s3", settings)
    key = f"{folder}{REASON_NAME}"
    if not object_exists(settings, bucket, key):
        return []
    retired = f"{folder}reason.replayed-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    s3.copy({"Bucket": bucket, "Key": key}, bucket, retired)
    s3.delete_object(Bucket=bucket, Key=key)
    return [f"s3://{bucket}/{retired}"]


def _objects(body: str) -> list[str]:
    try:
        return [created.uri for created in objects_in_sqs_body(body)]
    except (ValueError, KeyError, TypeError):
        return []

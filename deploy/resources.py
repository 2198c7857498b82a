"""Every AWS resource the pipeline needs, declared once.

Local provisioning applies this list through API calls (moto's CloudFormation ignores notifications,
lifecycle rules, queue policies and subscriptions); the CloudFormation template for AWS is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.progress import BY_SOURCE_INDEX, RECENT_INDEX
from shared.settings import STAGES, Settings

# What each event-driven stage listens to: the bucket whose new objects trigger it, and the key suffix.
TRIGGERS = {
    "unzipper": ("landing", ".zip"),
    "transformer": ("processed", "manifest.json"),
    "loader": ("archive", "manifest.json"),
}
VISIBILITY_SECONDS = {"extractor": 300, "unzipper": 120, "transformer": 600, "loader": 300}
ARCHIVE_TO_GLACIER_DAYS = 90
ABANDONED_UPLOAD_DAYS = 1
"""Incomplete multipart uploads (a worker died mid-file) are removed from every bucket after this."""


@dataclass(frozen=True)
class Bucket:
    name: str
    glacier_after_days: int | None = None


@dataclass(frozen=True)
class Queue:
    name: str
    dead_letter_queue: str | None = None
    max_receive_count: int = 3
    visibility_seconds: int = 60


@dataclass(frozen=True)
class Notification:
    bucket: str
    queue: str
    suffix: str


@dataclass(frozen=True)
class Topic:
    name: str
    queue_subscribers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Index:
    """A global secondary index: items by ``partition``, ordered by ``sort`` (both string attributes)."""

    name: str
    partition: str
    sort: str


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    indexes: tuple[Index, ...] = ()
    expires_attribute: str | None = None
    """The attribute holding each item's expiry (epoch seconds) for DynamoDB's time to live."""


@dataclass(frozen=True)
class Resources:
    buckets: list[Bucket] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def alerts_inbox(settings: Settings) -> str:
    """A queue subscribed to the alerts topic, so alerts can be read back locally and in tests."""
    return f"{settings.alerts_topic}-inbox"


def resources(settings: Settings) -> Resources:
    """The whole pipeline's resources, named from the settings' prefix."""
    declared = Resources()
    for role in ("landing", "processed", "archive", "quarantine"):
        glacier = ARCHIVE_TO_GLACIER_DAYS if role in ("archive", "quarantine") else None
        declared.buckets.append(Bucket(settings.bucket(role), glacier_after_days=glacier))
    for stage in STAGES:
        dlq = settings.dead_letter_queue(stage)
        declared.queues.append(Queue(dlq, visibility_seconds=VISIBILITY_SECONDS[stage]))
        declared.queues.append(
            Queue(
                settings.queue(stage),
                dead_letter_queue=dlq,
                max_receive_count=settings.max_receive_count,
                visibility_seconds=VISIBILITY_SECONDS[stage],
            )
        )
    for stage, (role, suffix) in TRIGGERS.items():
        declared.notifications.append(Notification(settings.bucket(role), settings.queue(stage), suffix))
    declared.queues.append(Queue(alerts_inbox(settings)))
    declared.topics.append(Topic(settings.alerts_topic, queue_subscribers=(alerts_inbox(settings),)))
    declared.tables.append(
        Table(
            settings.extracts_table,
            key="extract_id",
            indexes=(
                Index(RECENT_INDEX, partition="feed", sort="placed_at"),
                Index(BY_SOURCE_INDEX, partition="source", sort="placed_at"),
            ),
        )
    )
    declared.tables.append(Table(settings.sources_table, key="source"))
    declared.tables.append(
        Table(
            settings.alerts_table,
            key="alert_id",
            indexes=(Index(RECENT_INDEX, partition="feed", sort="raised_at"),),
            expires_attribute="expires_at",
        )
    )
    # Powertools' idempotency records: key and expiry attribute are its DynamoDBPersistenceLayer defaults.
    declared.tables.append(Table(settings.idempotency_table, key="id", expires_attribute="expiration"))
    return declared

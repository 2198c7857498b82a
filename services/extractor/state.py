"""Each source's state in the progress store: its high-water mark, and the extract running now.

One DynamoDB item per source (``{prefix}-sources``). Every write is one conditional update, so two
extractors (or two API replicas) never both believe they own a source:

- ``claim`` takes the source for one extract (``POST /extracts`` → 409 while another one runs); a claim
  older than ``lock_seconds`` is taken as abandoned.
- ``advance`` moves the mark forward only after the bundle is in the landing bucket, and only forward.
- ``release`` gives the source back when the extract stage ends, however it ended.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from services.extractor.exceptions import ExtractAlreadyRunning
from shared.aws import client
from shared.progress import now
from shared.settings import Settings

_CONDITION_FAILED = "ConditionalCheckFailedException"


class SourceState:
    """Read and write the state of sources."""

    def __init__(self, settings: Settings, *, lock_seconds: int | None = None):
        self.table = settings.sources_table
        self.dynamodb = client("dynamodb", settings)
        self.lock_seconds = lock_seconds or getattr(settings, "extract_lock_seconds", 3600)

    def get(self, source: str) -> dict[str, Any]:
        """The source's state: high-water mark, running extract, last extract (each may be None)."""
        item = (
            self.dynamodb.get_item(
                TableName=self.table, Key={"source": {"S": source}}, ConsistentRead=True
            ).get("Item")
            or {}
        )
        return {
            "high_water_mark": _text(item, "high_water_mark"),
            "high_water_extract": _text(item, "high_water_extract"),
            "running_extract": _text(item, "running_extract"),
            "running_since": _text(item, "running_since"),
            "last_extract": _text(item, "last_extract"),
            "last_status": _text(item, "last_status"),
            "last_at": _text(item, "last_at"),
            "missing_fields": json.loads(_text(item, "missing_fields") or "null"),
        }

    def claim(self, source: str, extract_id: str) -> None:
        """Take the source for ``extract_id``; ``ExtractAlreadyRunning`` if another extract holds it."""
        stale = (datetime.now(UTC) - timedelta(seconds=self.lock_seconds)).isoformat(timespec="milliseconds")
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"source": {"S": source}},
                UpdateExpression="SET running_extract = :id, running_since = :at",
                ConditionExpression=(
                    "attribute_not_exists(running_extract) OR running_extract = :id OR running_since < :stale"
                ),
                ExpressionAttributeValues={
                    ":id": {"S": extract_id},
                    ":at": {"S": now()},
                    ":stale": {"S": stale},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != _CONDITION_FAILED:
                raise
            raise ExtractAlreadyRunning(source, self.get(source)["running_extract"] or "unknown") from None

    def release(
        self, source: str, extract_id: str, status: str, *, missing_fields: list[str] | None = None
    ) -> None:
        """Give the source back (if ``extract_id`` still holds it) and record how the extract ended, and
        (given) which fields of the movie record it did not give."""
        values = {":id": {"S": extract_id}, ":status": {"S": status}, ":at": {"S": now()}}
        also = ""
        if missing_fields is not None:
            values[":fields"] = {"S": json.dumps(sorted(missing_fields))}
            also = ", missing_fields = :fields"
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"source": {"S": source}},
                UpdateExpression=(
                    "REMOVE running_extract, running_since "
                    "SET last_extract = :id, last_status = :status, last_at = :at" + also
                ),
                ConditionExpression="attribute_not_exists(running_extract) OR running_extract = :id",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != _CONDITION_FAILED:
                raise
            # Another extract holds the source now (this one's claim had gone stale): leave it be.

    def advance(self, source: str, extract_id: str, mark: str) -> None:
        """Set the high-water mark to ``mark``, as reached by ``extract_id`` (once landed).

        Extract ids sort by the time they were requested, so a late replay of an older extract never
        moves the mark back.
        """
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"source": {"S": source}},
                UpdateExpression="SET high_water_mark = :mark, high_water_extract = :id, mark_at = :at",
                ConditionExpression="attribute_not_exists(high_water_extract) OR high_water_extract <= :id",
                ExpressionAttributeValues={
                    ":mark": {"S": mark},
                    ":id": {"S": extract_id},
                    ":at": {"S": now()},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != _CONDITION_FAILED:
                raise

    def forget_mark(self, source: str) -> None:
        """Drop the high-water mark (the next extract reads everything)."""
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"source": {"S": source}},
            UpdateExpression="REMOVE high_water_mark, high_water_extract, mark_at",
        )


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if value else None

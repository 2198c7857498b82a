"""Each extract's progress through the stages: one record per extract that every stage writes.

Kept in a DynamoDB table (``{prefix}-extracts``); each stage owns one attribute holding its own JSON
status (and one holding when it last started), so stages never overwrite each other's word, and every
write is one update, never a read then a write. ``GET /extracts/{id}`` and ``moviepipe status`` read it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.aws import client
from shared.settings import STAGES, Settings

RUNNING = "running"
SUCCEEDED = "succeeded"
SKIPPED = "skipped"
QUARANTINED = "quarantined"
FAILED = "failed"
EMPTY = "empty"
"""An extract that found no rows (an incremental one with nothing new): it succeeded, nothing landed."""
FINISHED = (SUCCEEDED, QUARANTINED, FAILED)

FEED = "extracts"
"""The one partition of the ``recent`` index: every extract, ordered by ``placed_at``."""
RECENT_INDEX = "recent"
"""The index listing a table's items newest first (extracts here, alerts in ``shared.alerts``)."""
BY_SOURCE_INDEX = "by-source"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ExtractProgress:
    """Read and write the progress record of extracts."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.table = settings.extracts_table
        self.dynamodb = client("dynamodb", settings)

    def begin(self, extract_id: str, source: str) -> None:
        """Create the record when an extract is requested (once: a repeated request changes nothing)."""
        at = now()
        try:
            self._put_new(extract_id, source, at)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return

    def _put_new(self, extract_id: str, source: str, at: str) -> None:
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "extract_id": {"S": extract_id},
                "source": {"S": source},
                "requested_at": {"S": at},
                "updated_at": {"S": at},
                "placed_at": {"S": at},
                "feed": {"S": FEED},
            },
            ConditionExpression="attribute_not_exists(extract_id)",
        )

    def record(
        self,
        extract_id: str,
        stage: str,
        status: str,
        *,
        counts: dict[str, int] | None = None,
        error: dict[str, Any] | None = None,
        source: str | None = None,
        begins: bool = True,
        **details: Any,
    ) -> bool:
        """Set one stage's status (and counts, error, locations) on the extract's record; whether it did.

        A ``running`` record marks when the stage started, unless ``begins`` is false: news of a stage
        already going (rows read so far), which must not move its start.

        One conditional update: a stage's word is replaced only by a later one (by its time), so a slow
        attempt that finishes after a newer one (a redelivery, a replay) cannot overwrite it. ``source``
        names the extract's source on a record that has none yet (an extract that began with a bundle
        dropped into landing, not with a request).
        """
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        entry: dict[str, Any] = {"status": status, "at": now(), **details}
        if counts is not None:
            entry["counts"] = counts
        if error is not None:
            entry["error"] = error
        # feed and placed_at put the record in the recent index, even one that began without a request.
        update = (
            "SET #stage = :entry, #stage_at = :at, updated_at = :at, "
            "feed = if_not_exists(feed, :feed), placed_at = if_not_exists(placed_at, :at)"
        )
        names = {"#stage": stage, "#stage_at": f"{stage}_at"}
        values = {":entry": {"S": json.dumps(entry)}, ":at": {"S": entry["at"]}, ":feed": {"S": FEED}}
        if status == RUNNING and begins:
            # When the stage (last) started lives beside its status, so that finishing needs no read.
            update += ", #started = :at"
            names["#started"] = _started_attribute(stage)
        if source is not None:
            update += ", #source = if_not_exists(#source, :source)"
            names["#source"] = "source"
            values[":source"] = {"S": source}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"extract_id": {"S": extract_id}},
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(#stage_at) OR #stage_at <= :at",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, extract_id: str) -> dict[str, Any] | None:
        """The extract's record with every stage's status, and an overall status; None if unknown."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"extract_id": {"S": extract_id}}, ConsistentRead=True
        ).get("Item")
        return _from_item(item) if item else None

    def recent(self, limit: int = 20, source: str | None = None) -> list[dict[str, Any]]:
        """The most recent extracts (of ``source``, if given), newest first, from an index query.

        Placed by when they were requested; an extract that a stage recorded without a request (a zip
        dropped into landing by hand) is placed by when a stage first wrote it.
        """
        query: dict[str, Any] = {"TableName": self.table, "ScanIndexForward": False, "Limit": max(1, limit)}
        if source is None:
            query |= {
                "IndexName": RECENT_INDEX,
                "KeyConditionExpression": "feed = :feed",
                "ExpressionAttributeValues": {":feed": {"S": FEED}},
            }
        else:
            query |= {
                "IndexName": BY_SOURCE_INDEX,
                "KeyConditionExpression": "#source = :source",
                "ExpressionAttributeNames": {"#source": "source"},
                "ExpressionAttributeValues": {":source": {"S": source}},
            }
        return [_from_item(item) for item in self.dynamodb.query(**query).get("Items", [])]


def overall_status(stages: dict[str, dict[str, Any]]) -> str:
    """One word for where the extract stands: the first stage that stopped it, or how far it got."""
    for stage in STAGES:
        status = stages.get(stage, {}).get("status")
        if status in (QUARANTINED, FAILED):
            return status
    if stages.get("loader", {}).get("status") == SUCCEEDED:
        return "loaded"
    extractor = stages.get("extractor", {})
    if extractor.get("status") == SUCCEEDED and not (extractor.get("counts") or {}).get("extracted"):
        return EMPTY
    return RUNNING


def _started_attribute(stage: str) -> str:
    return f"{stage}_started_at"


def _stage_entry(item: dict[str, Any], stage: str) -> dict[str, Any]:
    entry = json.loads(item[stage]["S"])
    started = item.get(_started_attribute(stage), {}).get("S")
    # An entry written before this attribute existed carries its own started_at.
    entry["started_at"] = started or entry.get("started_at")
    return entry


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    stages = {stage: _stage_entry(item, stage) for stage in STAGES if stage in item}
    return {
        "extract_id": item["extract_id"]["S"],
        "source": item.get("source", {}).get("S"),
        "requested_at": item.get("requested_at", {}).get("S"),
        "updated_at": item.get("updated_at", {}).get("S"),
        "status": overall_status(stages),
        "stages": stages,
    }

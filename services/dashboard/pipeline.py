"""The pipeline page: recent extracts stage by stage, rejects, quarantine, alerts, DLQs, reconciliation.

Extracts come from the progress table (what ``GET /extracts`` lists), quarantined bundles from their
``reason.json`` in the quarantine bucket, alerts from the alerts table, DLQ depths from SQS, rejects and
batch audits from the warehouse; each is a section of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.dashboard import charts
from services.dashboard.queries import pipeline_queries, warehouse_reader
from services.dashboard.sections import PageData, Reader, Section, read_all, single
from services.dashboard.settings import DashboardSettings
from shared.aws import client, read_json_object
from shared.progress import FAILED, QUARANTINED, ExtractProgress
from shared.quarantine import REASON_NAME
from shared.rejects import Reason
from shared.settings import STAGES
from shared.warehouse import ConnectionPool

PAGE = "pipeline"
COUNTS = ("extracted", "clean", "rejected", "duplicates", "loaded")
"""The counts shown per extract, each as the last stage that reported it says."""


def recent_extracts(settings: DashboardSettings) -> list[dict[str, Any]]:
    return ExtractProgress(settings).recent(limit=settings.dashboard_recent)


REASON_FIELDS = ("quarantined_at", "stage", "reason", "extract_id", "source", "message")
"""What the page shows of each ``reason.json``."""


def quarantined_bundles(settings: DashboardSettings) -> dict[str, Any]:
    """The newest ``reason.json`` documents in the quarantine bucket (with their keys); how many in all."""
    s3 = client("s3", settings)
    bucket = settings.bucket("quarantine")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [o for o in page.get("Contents", []) if o["Key"].rsplit("/", 1)[-1] == REASON_NAME]
    found.sort(key=lambda o: o["LastModified"], reverse=True)
    bundles = []
    for item in found[: settings.dashboard_recent]:
        reason = read_json_object(s3, bucket, item["Key"]) or {"message": "reason.json is not a JSON object"}
        # A reason.json dropped by hand may lack any of them: the page shows what there is.
        shown = {field: reason.get(field) for field in REASON_FIELDS}
        bundles.append({**shown, "key": f"s3://{bucket}/{item['Key']}"})
    return {"total": len(found), "bundles": bundles}


def recent_alerts(settings: DashboardSettings) -> list[dict[str, Any]]:
    from shared import alerts

    return alerts.recent_alerts(settings, limit=50)


def dead_letter_depths(settings: DashboardSettings) -> dict[str, int]:
    """Messages waiting in each stage's dead-letter queue."""
    sqs = client("sqs", settings)
    depths = {}
    for stage in STAGES:
        url = sqs.get_queue_url(QueueName=settings.dead_letter_queue(stage))["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        depths[stage] = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return depths


def readers(settings: DashboardSettings, pool: ConnectionPool | None = None) -> list[Reader]:
    queries = pipeline_queries(settings.warehouse_database, recent=settings.dashboard_recent)
    return [
        warehouse_reader(settings, queries, pool),
        single(
            "extracts", f"the progress table ({settings.extracts_table})", lambda: recent_extracts(settings)
        ),
        single(
            "quarantine",
            f"the quarantine bucket ({settings.bucket('quarantine')})",
            lambda: quarantined_bundles(settings),
        ),
        single("alerts", f"alerts unavailable ({settings.alerts_table})", lambda: recent_alerts(settings)),
        single("dead_letters", "the dead-letter queues (SQS)", lambda: dead_letter_depths(settings)),
    ]


def read_pipeline(settings: DashboardSettings, pool: ConnectionPool | None = None) -> PageData:
    """Every section of the pipeline page, read now."""
    return PageData(read_all(readers(settings, pool), timeout=settings.dashboard_section_timeout_seconds))


# --- what the template shows ----------------------------------------------------------------------------


def _at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def extract_lane(extract: dict[str, Any], now: datetime) -> charts.Lane:
    """An extract's stages as spans, in seconds from when it was requested (or first seen)."""
    stages = extract.get("stages", {})
    starts = [_at(entry.get("started_at") or entry.get("at")) for entry in stages.values()]
    origin = _at(extract.get("requested_at")) or min((s for s in starts if s), default=now)
    spans = []
    for stage in STAGES:
        entry = stages.get(stage)
        if not entry:
            continue
        started = _at(entry.get("started_at")) or _at(entry.get("at")) or origin
        ended = now if entry.get("status") == "running" else _at(entry.get("at")) or started
        spans.append(
            charts.Span(
                stage,
                (started - origin).total_seconds(),
                (ended - origin).total_seconds(),
                entry.get("status", ""),
            )
        )
    return charts.Lane(extract["extract_id"], tuple(spans))


def extract_row(extract: dict[str, Any]) -> dict[str, Any]:
    """One row of the extracts table: status per stage, counts, the first error."""
    stages = extract.get("stages", {})
    counts: dict[str, Any] = {}
    error = None
    for stage in STAGES:
        entry = stages.get(stage) or {}
        counts.update(entry.get("counts") or {})
        if error is None and entry.get("error"):
            error = {"stage": stage, **entry["error"]} if isinstance(entry["error"], dict) else None
    return {
        "extract_id": extract["extract_id"],
        "source": extract.get("source"),
        "status": extract.get("status"),
        "requested_at": extract.get("requested_at"),
        "stages": {stage: (stages.get(stage) or {}).get("status") for stage in STAGES},
        "counts": {name: counts.get(name) for name in COUNTS},
        "error": error,
    }


def rejects_chart(rows: list[dict[str, Any]]) -> charts.Markup:
    """Rejected rows by reason code: every code, so that none rejected shows as zeros."""
    by_reason = {reason.value: 0 for reason in Reason}
    for row in rows:
        by_reason[row["REASON"]] = by_reason.get(row["REASON"], 0) + int(row["ROWS_REJECTED"])
    return charts.bar_chart(
        [charts.Bar(reason, count) for reason, count in by_reason.items()],
        name="rejects-by-reason",
        title="Rejected rows by reason (MOVIES.AUDIT.REJECTS)",
    )


def dead_letter_chart(depths: dict[str, int]) -> charts.Markup:
    return charts.bar_chart(
        [charts.Bar(stage, depth) for stage, depth in depths.items()],
        name="dead-letter-depths",
        title="Messages waiting in each stage's dead-letter queue",
        colours={stage: "#c62828" for stage, depth in depths.items() if depth},
    )


def alerts_chart(alerts: list[dict[str, Any]]) -> charts.Markup:
    by_code: dict[str, int] = {}
    for alert in alerts:
        label = f"{alert.get('stage')}: {alert.get('code')}"
        by_code[label] = by_code.get(label, 0) + 1
    return charts.bar_chart(
        [
            charts.Bar(label, count)
            for label, count in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        name="alerts-by-code",
        title="Recent alerts by stage and code",
        empty="no alerts raised",
        width=charts.WIDE,
    )


def pipeline_view(data: PageData, now: datetime | None = None) -> dict[str, Any]:
    """What the template shows: key numbers, charts and tables, and each section's failure if any."""
    now = now or datetime.now(UTC)

    def value(name: str, default: Any) -> Any:
        section: Section = data[name]
        return default if section.failed or section.value is None else section.value

    extracts = value("extracts", [])
    rejects = value("rejects", [])
    quarantine = value("quarantine", {"total": 0, "bundles": []})
    alerts = value("alerts", [])
    depths = value("dead_letters", {})
    batches = value("batches", [])
    batch_status = {row["STATUS"]: int(row["BATCHES"]) for row in value("batch_status", [])}

    def known(name: str, number: Any) -> Any:
        return None if data[name].failed else number

    return {
        "page": PAGE,
        "data": data,
        "metrics": [
            ("extracts-shown", "extracts shown", known("extracts", len(extracts))),
            (
                "extracts-loaded",
                "of them loaded",
                known("extracts", sum(1 for e in extracts if e.get("status") == "loaded")),
            ),
            (
                "extracts-stopped",
                "of them quarantined or failed",
                known("extracts", sum(1 for e in extracts if e.get("status") in (QUARANTINED, FAILED))),
            ),
            (
                "rows-rejected",
                "rows rejected",
                known("rejects", sum(int(r["ROWS_REJECTED"]) for r in rejects)),
            ),
            ("bundles-quarantined", "quarantined bundles", known("quarantine", quarantine["total"])),
            ("alerts-shown", "recent alerts", known("alerts", len(alerts))),
            ("dead-letters", "messages in DLQs", known("dead_letters", sum(depths.values()))),
            (
                "batches-reconciled",
                "batches reconciled",
                known("batch_status", batch_status.get("RECONCILED", 0)),
            ),
            (
                "batches-failed",
                "batches not reconciled",
                known("batch_status", batch_status.get("FAILED", 0)),
            ),
        ],
        "timeline": charts.timeline(
            [extract_lane(extract, now) for extract in extracts],
            name="extract-timeline",
            title="Recent extracts: each stage from request to load (seconds)",
            empty="no data yet: no extract has been requested (POST /extracts or moviepipe extract imdb)",
            width=charts.WIDE,
        ),
        "extracts": [extract_row(extract) for extract in extracts],
        "stages": STAGES,
        "counts": COUNTS,
        "rejects": rejects,
        "rejects_chart": rejects_chart(rejects),
        "quarantine": quarantine,
        "alerts": alerts,
        "alerts_chart": alerts_chart(alerts),
        "dead_letter_chart": dead_letter_chart(depths) if depths else charts.no_data("dead-letter-depths"),
        "batches": batches,
    }

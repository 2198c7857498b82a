"""Alerts: one SNS message per failure, to the ``{prefix}-alerts`` topic (email subscribers in AWS)."""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.aws import client
from shared.logs import log_event
from shared.progress import now
from shared.settings import Settings

logger = logging.getLogger(__name__)


_topic_arns: dict[tuple[str, str, str | None], str] = {}


def _topic_arn(settings: Settings) -> str:
    cache_key = (settings.alerts_topic, settings.region, settings.aws_endpoint_url)
    if cache_key not in _topic_arns:
        # CreateTopic is idempotent and answers with the ARN, which saves configuring it per environment.
        _topic_arns[cache_key] = client("sns", settings).create_topic(Name=settings.alerts_topic)["TopicArn"]
    return _topic_arns[cache_key]


def raise_alert(
    settings: Settings,
    *,
    stage: str,
    event: str,
    message: str,
    extract_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Publish one alert; a failure to alert is logged, never allowed to hide the original failure."""
    alert = {
        "stage": stage,
        "event": event,
        "extract_id": extract_id,
        "message": message,
        "details": details or {},
        "at": now(),
    }
    try:
        arn = _topic_arn(settings)
        client("sns", settings).publish(
            TopicArn=arn,
            Subject=f"moviepipe {stage}: {event}"[:100],
            Message=json.dumps(alert, default=str),
            MessageAttributes={"stage": {"DataType": "String", "StringValue": stage}},
        )
    except Exception:
        log_event(logger, "alert_not_sent", level=logging.ERROR, extract_id=extract_id, alert=alert)
        return
    log_event(
        logger, "alert_raised", message, level=logging.WARNING, extract_id=extract_id, alert_event=event
    )

"""Alerts: one message per failure to the ``{prefix}-alerts`` SNS topic, and one email with ``smtp_url``.

Every failure path (a quarantine at any stage, a message dead-lettered, a Glue run failing, an extract
that does not reconcile) raises one ``Alert``, which says what failed, which extract and source, where
the evidence is and how to replay. Alerts are de-duplicated per extract and failure: ``alert_id`` is a
hash of stage, event, code and extract (or evidence), claimed with a conditional write in the
``{prefix}-alerts`` table before anything is sent, so a replayed event or a retried message does not
alert again. The same table lists recent alerts (``moviepipe alerts``, the dashboard).

Order: claim, publish, then mark the claim sent. A publish that fails gives the claim back, so the retry
alerts; a crash between claim and publish leaves an unsent claim that a retry may take over once it is
older than ``CLAIM_STALE_SECONDS``. If the table itself cannot be reached the alert is published anyway:
a duplicate is better than silence.

In SNS the message has one body per protocol: email subscribers get the text a person reads, the queue
subscribers (the local inbox, tests) get the alert as JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
import time
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from shared.aws import client
from shared.logs import log_event
from shared.progress import RECENT_INDEX, now
from shared.settings import Settings

logger = logging.getLogger(__name__)

FEED = "alerts"
"""The one partition of the table's ``recent`` index: every alert, ordered by ``raised_at``."""
CLAIM_STALE_SECONDS = 60
SUBJECT_LIMIT = 100
"""SNS refuses a longer subject."""


@dataclass(frozen=True)
class Alert:
    """One failure, said so a person can act on it."""

    stage: str
    event: str
    """What happened, as a word: ``quarantined``, ``dead_lettered``, ``glue_run_failed``, …"""
    code: str
    """The reason code (``HASH_MISMATCH``, ``NOT_RECONCILED``, …)."""
    message: str
    """What failed, in words."""
    extract_id: str | None = None
    source: str | None = None
    evidence: str | None = None
    """Where to look: the quarantine folder, the dead-letter queue, the audit table."""
    replay: str | None = None
    """The command that replays the extract once its cause is fixed."""
    details: dict[str, Any] = field(default_factory=dict)
    dedupe: str | None = None
    """What else tells this failure from an earlier one of the same extract (a bundle's hash)."""

    @property
    def alert_id(self) -> str:
        """The same for the same failure of the same extract, however often it is raised."""
        subject = self.extract_id or self.evidence or self.message
        text = "|".join([self.stage, self.event, self.code, subject, self.dedupe or ""])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    @property
    def subject(self) -> str:
        what = f"{self.event.replace('_', ' ')} ({self.code})"
        of = f" extract {self.extract_id}" if self.extract_id else ""
        return f"moviepipe {self.stage}: {what}{of}"[:SUBJECT_LIMIT]

    def body(self) -> str:
        """The text a person reads: what failed, which extract, where the evidence is, how to replay."""
        lines = [
            self.message,
            "",
            f"Stage:    {self.stage}",
            f"Failure:  {self.event} ({self.code})",
            f"Extract:  {self.extract_id or 'unknown'}",
            f"Source:   {self.source or 'unknown'}",
        ]
        if self.evidence:
            lines.append(f"Evidence: {self.evidence}")
        if self.replay:
            lines += ["", "Once the cause is fixed, replay with:", f"    {self.replay}"]
        if self.details:
            lines += ["", "Details:", json.dumps(self.details, indent=2, default=str)]
        return "\n".join(lines) + "\n"

    def as_dict(self, raised_at: str) -> dict[str, Any]:
        """The alert as its JSON body and its row in the table carry it."""
        document = asdict(self)
        document.pop("dedupe")
        return {"alert_id": self.alert_id, **document, "subject": self.subject, "raised_at": raised_at}


def raise_alert(
    settings: Settings,
    alert: Alert | None = None,
    *,
    stage: str | None = None,
    event: str | None = None,
    message: str | None = None,
    extract_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Publish ``alert`` once (or an alert built from the keywords); whether it was sent now.

    False when the same failure was alerted before, or the alert could not be sent; a failure to alert is
    logged, never allowed to hide the original failure.
    """
    if alert is None:
        if stage is None or event is None or message is None:
            raise TypeError("raise_alert needs an Alert, or stage, event and message")
        alert = Alert(stage, event, event.upper(), message, extract_id=extract_id, details=details or {})
    raised_at = now()
    document = alert.as_dict(raised_at)
    store = _AlertStore(settings)
    claimed = store.claim(document)
    if claimed is False:
        log_event(
            logger,
            "alert_deduplicated",
            f"{alert.subject}: alerted before",
            extract_id=alert.extract_id,
            alert_id=alert.alert_id,
        )
        return False
    try:
        _publish(settings, alert, document)
    except Exception as exc:
        if claimed:
            store.release(alert.alert_id)
        log_event(
            logger,
            "alert_not_sent",
            f"{alert.subject}: {type(exc).__name__}: {exc}",
            level=logging.ERROR,
            extract_id=alert.extract_id,
            alert=document,
        )
        return False
    if claimed:
        store.mark_sent(alert.alert_id)
    log_event(
        logger,
        "alert_raised",
        alert.message,
        level=logging.WARNING,
        extract_id=alert.extract_id,
        error_code=alert.code,
        alert_event=alert.event,
        alert_id=alert.alert_id,
    )
    if settings.smtp_url:
        _email(settings, alert)
    return True


def recent_alerts(settings: Settings, limit: int = 50) -> list[dict[str, Any]]:
    """The alerts raised most recently, newest first (each as ``Alert.as_dict`` made it)."""
    response = client("dynamodb", settings).query(
        TableName=settings.alerts_table,
        IndexName=RECENT_INDEX,
        KeyConditionExpression="feed = :feed",
        ExpressionAttributeValues={":feed": {"S": FEED}},
        ScanIndexForward=False,
        Limit=max(1, limit),
    )
    return [json.loads(item["document"]["S"]) for item in response.get("Items", [])]


def forget_alerts(settings: Settings, extract_id: str, stage: str | None = None) -> int:
    """Let the extract's alerts (of one stage) be raised again: a replay that fails again alerts anew.

    Each alert stays listed, under a key of its own; only its claim on the failure goes. How many.
    """
    dynamodb = client("dynamodb", settings)
    dropped = 0
    for item in _items_of(settings, extract_id):
        if stage is not None and item["stage"]["S"] != stage:
            continue
        alert_id = item["alert_id"]["S"]
        kept = {**item, "alert_id": {"S": f"{alert_id}:{time.time_ns()}"}, "sent_at": {"S": now()}}
        dynamodb.put_item(TableName=settings.alerts_table, Item=kept)
        dynamodb.delete_item(TableName=settings.alerts_table, Key={"alert_id": {"S": alert_id}})
        dropped += 1
    return dropped


def _items_of(settings: Settings, extract_id: str) -> list[dict[str, Any]]:
    """The extract's alert claims (a scan: replays are rare, and the table expires its items)."""
    scan: dict[str, Any] = {
        "TableName": settings.alerts_table,
        "FilterExpression": "extract_id = :extract AND NOT contains(alert_id, :kept)",
        "ExpressionAttributeValues": {":extract": {"S": extract_id}, ":kept": {"S": ":"}},
    }
    pages = client("dynamodb", settings).get_paginator("scan").paginate(**scan)
    return [item for page in pages for item in page["Items"]]


class _AlertStore:
    """The claims in the ``{prefix}-alerts`` table that make each failure alert once."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.table = settings.alerts_table

    def claim(self, document: dict[str, Any]) -> bool | None:
        """True if this alert is ours to send; False if it was sent (or is being sent) already; None if
        the table could not be reached (send anyway)."""
        claimed_at = time.time()
        item = {
            "alert_id": {"S": document["alert_id"]},
            "feed": {"S": FEED},
            "raised_at": {"S": document["raised_at"]},
            "stage": {"S": document["stage"]},
            "event": {"S": document["event"]},
            "code": {"S": document["code"]},
            "document": {"S": json.dumps(document, default=str)},
            "claimed_at": {"N": str(claimed_at)},
            "expires_at": {"N": str(int(claimed_at) + self.settings.alert_retention_days * 86400)},
        }
        if document.get("extract_id"):
            item["extract_id"] = {"S": document["extract_id"]}
        try:
            client("dynamodb", self.settings).put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(alert_id) OR "
                    "(attribute_not_exists(sent_at) AND claimed_at < :stale)"
                ),
                ExpressionAttributeValues={":stale": {"N": str(claimed_at - CLAIM_STALE_SECONDS)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            log_event(logger, "alert_store_unavailable", str(exc), level=logging.ERROR)
            return None
        except BotoCoreError as exc:
            log_event(logger, "alert_store_unavailable", str(exc), level=logging.ERROR)
            return None
        return True

    def mark_sent(self, alert_id: str) -> None:
        try:
            client("dynamodb", self.settings).update_item(
                TableName=self.table,
                Key={"alert_id": {"S": alert_id}},
                UpdateExpression="SET sent_at = :at",
                ExpressionAttributeValues={":at": {"S": now()}},
            )
        except (ClientError, BotoCoreError) as exc:
            # The claim stays unsent: a retry after CLAIM_STALE_SECONDS may alert once more, no worse.
            log_event(logger, "alert_store_unavailable", str(exc), level=logging.ERROR)

    def release(self, alert_id: str) -> None:
        try:
            client("dynamodb", self.settings).delete_item(
                TableName=self.table,
                Key={"alert_id": {"S": alert_id}},
                ConditionExpression="attribute_not_exists(sent_at)",
            )
        except (ClientError, BotoCoreError) as exc:
            log_event(logger, "alert_store_unavailable", str(exc), level=logging.ERROR)


_topic_arns: dict[tuple[str, str, str | None], str] = {}


def _topic_arn(settings: Settings) -> str:
    """The alerts topic's ARN, from its name and the account the credentials belong to.

    ``GetCallerIdentity`` needs no permission, so a service is granted ``sns:Publish`` on the topic and
    nothing more; the topic itself is made by provisioning (locally) or the stack (in AWS).
    """
    cache_key = (settings.alerts_topic, settings.region, settings.aws_endpoint_url)
    if cache_key not in _topic_arns:
        sts = client("sts", settings)
        account = sts.get_caller_identity()["Account"]
        arn = f"arn:{sts.meta.partition}:sns:{settings.region}:{account}:{settings.alerts_topic}"
        _topic_arns[cache_key] = arn
    return _topic_arns[cache_key]


def _publish(settings: Settings, alert: Alert, document: dict[str, Any]) -> None:
    as_json = json.dumps(document, default=str)
    client("sns", settings).publish(
        TopicArn=_topic_arn(settings),
        Subject=alert.subject,
        MessageStructure="json",
        Message=json.dumps({"default": as_json, "sqs": as_json, "email": alert.body()}),
        MessageAttributes={
            "stage": {"DataType": "String", "StringValue": alert.stage},
            "event": {"DataType": "String", "StringValue": alert.event},
        },
    )


@dataclass(frozen=True)
class SmtpTarget:
    """Where ``smtp_url`` points."""

    host: str
    port: int
    ssl: bool
    starttls: bool
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"MOVIEPIPE_SMTP_URL must be smtp://host[:port] or smtps://…, not {url!r}")
        query = parse_qs(parts.query)
        ssl = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if ssl else 25),
            ssl=ssl,
            starttls=query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def _email(settings: Settings, alert: Alert) -> None:
    """Send the alert as an email; a failure is logged (SNS has the alert already)."""
    recipients = [address.strip() for address in settings.alert_email_to.split(",") if address.strip()]
    email = EmailMessage()
    email["Subject"] = alert.subject
    email["From"] = settings.alert_email_from
    email["To"] = ", ".join(recipients)
    email["X-Moviepipe-Alert-Id"] = alert.alert_id
    email["X-Moviepipe-Deployment"] = settings.prefix
    email.set_content(alert.body())
    try:
        target = SmtpTarget.parse(settings.smtp_url or "")
        connection = smtplib.SMTP_SSL if target.ssl else smtplib.SMTP
        with connection(target.host, target.port, timeout=10) as smtp:
            if target.starttls:
                smtp.starttls()
            if target.user:
                smtp.login(target.user, target.password or "")
            smtp.send_message(email, to_addrs=recipients)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        log_event(
            logger,
            "alert_email_not_sent",
            f"{alert.subject}: {type(exc).__name__}: {exc}",
            level=logging.ERROR,
            extract_id=alert.extract_id,
            alert_id=alert.alert_id,
        )
        return
    log_event(logger, "alert_emailed", extract_id=alert.extract_id, alert_id=alert.alert_id, to=recipients)

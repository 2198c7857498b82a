"""Factories for tests: movie rows, bundles (valid, or tampered with on purpose), Lambda-shaped events.

Bundles here are built from the shared contract (``shared.manifest``, ``shared.schema``) with the csv
module and pyarrow, independently of the extractor's own writer, so they test the unzipper against the
contract rather than against the extractor's code.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shared.aws import client
from shared.events import s3_notification
from shared.manifest import MANIFEST_NAME, MEDIA_TYPES, Resource, new_manifest
from shared.schema import GENRES, MOVIE_FIELDS, arrow_schema, field_names, table_schema
from shared.settings import Settings

CSV_NAME = "movies.csv"
PARQUET_NAME = "movies.parquet"


# -- movies -------------------------------------------------------------------------------------------
def movie(**overrides: Any) -> dict[str, Any]:
    """One valid movie in the canonical record (every field present)."""
    row: dict[str, Any] = {
        "title": "The Movie",
        "year": 1999,
        "length": 101,
        "budget": 1_000_000,
        "rating": 7.5,
        "votes": 1234,
        **{f"r{n}": 10.0 for n in range(1, 11)},
        "mpaa": "PG",
        **dict.fromkeys(GENRES, False),
    }
    row.update(overrides)
    return row


def movies(n: int = 4) -> list[dict[str, Any]]:
    """``n`` movies including the awkward ones: commas and quotes and a line break in titles, gaps."""
    awkward = [
        movie(title="Crouching Tiger, Hidden Dragon", year=2000, action=True, drama=True),
        movie(title='The "Best" Movie', year=2001, budget=None, mpaa=None, comedy=True),
        movie(title="Two\nLines", year=2002, rating=6.0),
        movie(title="$", year=1971, budget=None, mpaa=None),
    ]
    return [
        awkward[i] if i < len(awkward) else movie(title=f"Movie {i}", year=1950 + i % 50) for i in range(n)
    ]


def csv_bytes(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> bytes:
    """movies.csv as the contract has it: header, UTF-8, commas, quotes doubled, gaps empty, true/false."""
    columns = list(columns or field_names())
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_csv_value(row.get(name)) for name in columns)
    return out.getvalue().encode("utf-8")


def parquet_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=arrow_schema()), out)
    return out.getvalue()


# -- bundles ------------------------------------------------------------------------------------------
def new_extract_id() -> str:
    """An extract id in the extractor's format, ``20261126T041700Z-3f9c2a1b``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def count_records(data: bytes) -> int:
    """Data records in a CSV (quoted line breaks do not split a record)."""
    return sum(1 for record in csv.reader(io.StringIO(data.decode("utf-8"), newline="")) if record) - 1


def resource(path: str, data: bytes, *, rows: int) -> Resource:
    """The manifest resource vouching for ``data`` as the file ``path``."""
    fmt = path.rsplit(".", 1)[-1]
    return Resource(
        name=path.replace(".", "-"),
        path=path,
        format=fmt,
        mediatype=MEDIA_TYPES.get(fmt),
        bytes=len(data),
        hash=f"sha256:{hashlib.sha256(data).hexdigest()}",
        rows=rows,
        schema=table_schema(MOVIE_FIELDS),
        **({"encoding": "utf-8"} if fmt == "csv" else {}),
    )


def manifest_bytes(
    files: Mapping[str, bytes],
    *,
    extract_id: str,
    source: str = "imdb",
    rows: int | None = None,
    **fields: Any,
) -> bytes:
    """A manifest vouching for the data files given; ``rows`` defaults to the CSV's record count."""
    rows = count_records(files[CSV_NAME]) if rows is None else rows
    manifest = new_manifest(
        extract_id=extract_id,
        source=source,
        stage="extract",
        row_counts={"extracted": rows},
        resources=[resource(path, data, rows=rows) for path, data in files.items() if path != MANIFEST_NAME],
    )
    document = json.loads(manifest.to_json())
    document.update(fields)
    return json.dumps(document, indent=2).encode("utf-8")


def stamp(
    files: Mapping[str, bytes], *, extract_id: str, source: str = "imdb", rows: int | None = None
) -> dict[str, bytes]:
    """The files with a manifest.json that vouches for the data files exactly as they are now."""
    data = {path: content for path, content in files.items() if path != MANIFEST_NAME}
    return {**data, MANIFEST_NAME: manifest_bytes(data, extract_id=extract_id, source=source, rows=rows)}


def bundle_files(
    rows: Sequence[Mapping[str, Any]] | None = None, *, extract_id: str, source: str = "imdb"
) -> dict[str, bytes]:
    """The files of a valid bundle: movies.csv, movies.parquet and the manifest vouching for both."""
    rows = movies() if rows is None else rows
    return stamp(
        {CSV_NAME: csv_bytes(rows), PARQUET_NAME: parquet_bytes(rows)}, extract_id=extract_id, source=source
    )


def zip_bundle(files: Mapping[str, bytes]) -> bytes:
    """The files zipped, in memory, in the order given."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def valid_bundle(
    rows: Sequence[Mapping[str, Any]] | None = None, *, extract_id: str, source: str = "imdb"
) -> bytes:
    """A valid zipped bundle."""
    return zip_bundle(bundle_files(rows, extract_id=extract_id, source=source))


def land(
    settings: Settings, data: bytes, *, source: str = "imdb", extract_id: str, key: str | None = None
) -> str:
    """Put a bundle in the landing bucket (as the extractor would); returns its key."""
    key = key or f"{source}/{extract_id}.zip"
    client("s3", settings).put_object(Bucket=settings.bucket("landing"), Key=key, Body=data)
    return key


# -- events -------------------------------------------------------------------------------------------
def s3_event(bucket: str, key: str, *, size: int = 0) -> dict[str, Any]:
    """An S3 ObjectCreated notification, key URL-encoded as S3 sends it."""
    return s3_notification(bucket, key, size=size)


def sqs_record(
    body: str | Mapping[str, Any], *, message_id: str | None = None, receive_count: int = 1
) -> dict:
    """One SQS record as Lambda delivers it."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": secrets.token_hex(16),
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue",
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: Mapping[str, Any]) -> dict[str, Any]:
    """An SQS event of the given records."""
    return {"Records": list(records)}


def landed_event(bucket: str, *keys: str) -> dict[str, Any]:
    """An SQS event whose records each wrap the S3 notification of one landed key."""
    return sqs_event(*(sqs_record(s3_event(bucket, key)) for key in keys))


def extract_request_event(extract_id: str, source: str = "imdb", *, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event carrying one extract request, as ``POST /extracts`` queues it."""
    return sqs_event(sqs_record({"extract_id": extract_id, "source": source}, receive_count=receive_count))


# -- reading back -------------------------------------------------------------------------------------
def drain_queue(settings: Settings, queue_name: str) -> list[str]:
    """Every message body waiting on a queue (received and deleted)."""
    sqs = client("sqs", settings)
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def transformer_triggers(settings: Settings) -> list[str]:
    """Keys of the manifest.json events the processed bucket sent to the transformer's queue."""
    found = []
    for body in drain_queue(settings, settings.queue("transformer")):
        for record in json.loads(body).get("Records", []):
            found.append(record["s3"]["object"]["key"].replace("%2F", "/"))
    return found


def alerts(settings: Settings) -> list[dict[str, Any]]:
    """The alerts raised so far (read off the alerts inbox queue; each is returned once)."""
    from deploy.resources import alerts_inbox

    return [json.loads(body) for body in drain_queue(settings, alerts_inbox(settings))]


RECEIVED_EMAILS: list[Any] = []
"""Every email the test SMTP server received (the ``smtp_url`` fixture), in order."""


def emails(settings: Settings) -> list[Any]:
    """The alert emails of this deployment (its prefix) received so far."""
    return [email for email in RECEIVED_EMAILS if email["X-Moviepipe-Deployment"] == settings.prefix]


def the_email_of(settings: Settings, alert: dict[str, Any]) -> Any:
    """The one email the alert was sent as (asserting there is exactly one email in all for its failure):
    its subject is the alert's, and its body says which extract, where the evidence is and how to replay.
    """
    sent = [email for email in emails(settings) if email["X-Moviepipe-Alert-Id"] == alert["alert_id"]]
    assert len(sent) == 1, f"{len(sent)} emails for alert {alert['subject']!r}"
    (email,) = sent
    body = email.get_content()
    assert email["Subject"] == alert["subject"] and alert["message"] in body
    for said in (alert["extract_id"], alert["evidence"], alert["replay"]):
        assert said is None or said in body, f"{said!r} not in the email: {body}"
    return email


def keys(settings: Settings, role: str, prefix: str = "") -> list[str]:
    """Object keys in one of the pipeline's buckets."""
    listed = client("s3", settings).list_objects_v2(Bucket=settings.bucket(role), Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def lying_about_size(bundle: bytes, member: str, declared: int) -> bytes:
    """The zipped bundle with ``member``'s uncompressed size rewritten to ``declared``, in its local header
    and its central directory entry: a zip bomb's lie (no ZIP64, so both are 4-byte fields)."""
    data = bytearray(bundle)
    name = member.encode()
    local = data.index(b"PK\x03\x04")
    while data[local + 30 : local + 30 + len(name)] != name:
        local = data.index(b"PK\x03\x04", local + 4)
    data[local + 22 : local + 26] = declared.to_bytes(4, "little")
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 24 : central + 28] = declared.to_bytes(4, "little")
    return bytes(data)


def messages_pending(settings: Settings, stages: Sequence[str]) -> int:
    """Messages the stages' queues hold, waiting or being worked on (their DLQs aside)."""
    sqs = client("sqs", settings)
    pending = 0
    for stage in stages:
        url = sqs.get_queue_url(QueueName=settings.queue(stage))["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        pending += sum(int(value) for value in attributes.values())
    return pending

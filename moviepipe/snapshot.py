"""The local stack's AWS state kept across ``moviepipe down`` and ``up``: moto holds it in memory only.

At ``down``, once the services have stopped and before moto stops, ``save`` writes under
``$MOVIEPIPE_HOME/state/``: every object of the stack's buckets (bytes, content type, metadata), every
message waiting in its queues, every item of its tables and the Glue Data Catalog's databases, tables and
partitions. At ``up``, ``restore`` puts them back after the buckets, queues and tables exist and before
the S3 notifications are wired, so restored objects are not announced again, and before any service
starts. The warehouse keeps its own files (``$MOVIEPIPE_HOME/warehouse``), so both agree again.

What is not kept: older versions of a versioned object (only the current one), a message's receive count
(a restored message starts again at 0), and a message that a process killed outright still held (it
becomes visible only after its visibility timeout; ``save`` reports how many there were). An object
keeps its ETag: a multipart object is uploaded again in the part size that gives the same ETag.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from deploy.resources import resources
from shared.aws import DOWNLOADS, client
from shared.logs import log_event
from shared.settings import Settings

logger = logging.getLogger(__name__)

STATE = "state"
CANDIDATE_PART_SIZES_MIB = (8, 16, 5, 10, 32, 64, 100, 128)
"""Part sizes tried to give a restored multipart object its ETag again: boto3's default transfer (8 MiB),
the unzipper's writer (16 MiB), S3's minimum (5 MiB) and common others."""
HOLD_SECONDS = 900
"""How long ``save`` holds the messages it reads, all of a queue's at once, before it lets them go."""


@dataclass
class Saved:
    """What a snapshot holds."""

    objects: int = 0
    bytes: int = 0
    messages: int = 0
    in_flight_lost: int = 0
    items: int = 0
    partitions: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        text = (
            f"{self.objects:,} objects ({self.bytes / 1e6:,.1f} MB), {self.messages:,} queued messages, "
            f"{self.items:,} table items, {self.partitions:,} catalog partitions in {self.seconds:.1f} s"
        )
        if self.in_flight_lost:
            text += f"; {self.in_flight_lost} in-flight messages were held by a process that did not stop"
        return text


def state_dir(settings: Settings) -> Path:
    return settings.home / STATE


def has_snapshot(settings: Settings) -> bool:
    return (state_dir(settings) / "snapshot.json").exists()


# -- saving -----------------------------------------------------------------------------------------


def save(settings: Settings, say: Callable[[str], None] = lambda _: None) -> Saved:
    """Write the stack's AWS state to ``state/``, replacing the last snapshot only once it is whole."""
    started = time.monotonic()
    final = state_dir(settings)
    work = final.with_name(STATE + ".new")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    saved = Saved()
    declared = resources(settings)
    for bucket in declared.buckets:
        _save_bucket(settings, bucket.name, work / "s3" / bucket.name, saved)
    for queue in declared.queues:
        _save_queue(settings, queue.name, work / "sqs", saved)
    for table in declared.tables:
        _save_table(settings, table.name, work / "dynamodb", saved)
    _save_catalog(settings, work / "glue.json", saved)
    saved.seconds = round(time.monotonic() - started, 2)
    (work / "snapshot.json").write_text(json.dumps({"saved_at": time.time(), **asdict(saved)}, indent=1))
    old = final.with_name(STATE + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    work.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    say(f"saved {saved.describe()} to {final}")
    log_event(logger, "state_saved", **asdict(saved))
    return saved


def _save_bucket(settings: Settings, bucket: str, folder: Path, saved: Saved) -> None:
    """Each object's bytes and metadata; an object the last snapshot holds unchanged (same ETag) is linked
    from it, not downloaded again, so a ``down`` costs what changed since the last one."""
    s3 = client("s3", settings)
    (folder / "objects").mkdir(parents=True)
    earlier = state_dir(settings) / "s3" / bucket
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    if (earlier / "index.jsonl").exists():
        with (earlier / "index.jsonl").open() as index:
            for line in index:
                entry = json.loads(line)
                kept[(entry["key"], entry["etag"])] = entry
    with (folder / "index.jsonl").open("w") as index:
        for number, item in enumerate(_objects(s3, bucket)):
            path = folder / "objects" / str(number)
            same = kept.get((item["Key"], item["ETag"].strip('"')))
            if same is not None:
                os.link(earlier / "objects" / same["file"], path)
                entry = {**same, "file": str(number)}
            else:
                head = s3.head_object(Bucket=bucket, Key=item["Key"])
                s3.download_file(bucket, item["Key"], str(path), Config=DOWNLOADS)
                entry = {
                    "key": item["Key"],
                    "file": str(number),
                    "etag": head["ETag"].strip('"'),
                    "content_type": head.get("ContentType"),
                    "metadata": head.get("Metadata", {}),
                }
            index.write(json.dumps(entry) + "\n")
            saved.objects += 1
            saved.bytes += item["Size"]


def _objects(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            yield from page.get("Contents", [])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise


def _save_queue(settings: Settings, queue: str, folder: Path, saved: Saved) -> None:
    sqs = client("sqs", settings)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except ClientError:
        return
    held: list[str] = []
    with (folder / f"{queue}.jsonl").open("w") as out:
        while True:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=HOLD_SECONDS,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                kept = {"body": message["Body"], "attributes": message.get("MessageAttributes", {})}
                out.write(json.dumps(_jsonable(kept)) + "\n")
                held.append(message["ReceiptHandle"])
    saved.messages += len(held)
    invisible = "ApproximateNumberOfMessagesNotVisible"
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[invisible])["Attributes"]
    # Invisible now, besides what this save holds: held by a process that did not let go when it stopped.
    saved.in_flight_lost += max(0, int(attributes[invisible]) - len(held))
    # Reading them must not change them: they are let go again (a snapshot taken while moto runs on).
    for start in range(0, len(held), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(held[start : start + 10])
            ],
        )


def _jsonable(value: Any) -> Any:
    """``value`` with its bytes (binary attributes and items) as ``{"$b64": …}``, for JSON."""
    if isinstance(value, bytes | bytearray):
        return {"$b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    return value


def _bytes_again(value: Any) -> Any:
    """The inverse of ``_jsonable``."""
    if isinstance(value, dict):
        if set(value) == {"$b64"}:
            return base64.b64decode(value["$b64"])
        return {key: _bytes_again(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_bytes_again(item) for item in value]
    return value


def _save_table(settings: Settings, table: str, folder: Path, saved: Saved) -> None:
    dynamodb = client("dynamodb", settings)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{table}.jsonl").open("w") as out:
        try:
            for page in dynamodb.get_paginator("scan").paginate(TableName=table):
                for item in page.get("Items", []):
                    out.write(json.dumps(_jsonable(item)) + "\n")
                    saved.items += 1
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise


def _save_catalog(settings: Settings, path: Path, saved: Saved) -> None:
    glue = client("glue", settings)
    databases = []
    for page in glue.get_paginator("get_databases").paginate():
        for database in page["DatabaseList"]:
            tables = []
            for table_page in glue.get_paginator("get_tables").paginate(DatabaseName=database["Name"]):
                for table in table_page["TableList"]:
                    partitions = [
                        partition
                        for partition_page in glue.get_paginator("get_partitions").paginate(
                            DatabaseName=database["Name"], TableName=table["Name"]
                        )
                        for partition in partition_page["Partitions"]
                    ]
                    saved.partitions += len(partitions)
                    tables.append({"table": table, "partitions": partitions})
            databases.append({"database": database, "tables": tables})
    path.write_text(json.dumps(databases, default=str))


# -- restoring ----------------------------------------------------------------------------------------


def restore(settings: Settings, say: Callable[[str], None] = lambda _: None) -> Saved | None:
    """Put the last snapshot back into a fresh moto (buckets, queues and tables made, no notifications)."""
    folder = state_dir(settings)
    if not has_snapshot(settings):
        return None
    started = time.monotonic()
    restored = Saved()
    for bucket_folder in sorted((folder / "s3").iterdir()) if (folder / "s3").exists() else []:
        _restore_bucket(settings, bucket_folder.name, bucket_folder, restored)
    for path in sorted((folder / "sqs").glob("*.jsonl")):
        _restore_queue(settings, path.stem, path, restored)
    for path in sorted((folder / "dynamodb").glob("*.jsonl")):
        _restore_table(settings, path.stem, path, restored)
    if (folder / "glue.json").exists():
        _restore_catalog(settings, folder / "glue.json", restored)
    restored.seconds = round(time.monotonic() - started, 2)
    (folder / "restored.json").write_text(json.dumps({"restored_at": time.time(), **asdict(restored)}))
    say(f"restored {restored.describe()} from {folder}")
    log_event(logger, "state_restored", **asdict(restored))
    return restored


def _restore_bucket(settings: Settings, bucket: str, folder: Path, restored: Saved) -> None:
    s3 = client("s3", settings)
    with (folder / "index.jsonl").open() as index:
        for line in index:
            entry = json.loads(line)
            path = folder / "objects" / entry["file"]
            extra: dict[str, Any] = {"Metadata": entry["metadata"]}
            if entry.get("content_type"):
                extra["ContentType"] = entry["content_type"]
            part_size = _part_size_for(path, entry["etag"])
            if part_size is None:
                # One part: the ETag is the content's MD5, as it was.
                with path.open("rb") as body:
                    s3.put_object(Bucket=bucket, Key=entry["key"], Body=body, **extra)
            else:
                config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size)
                s3.upload_file(str(path), bucket, entry["key"], ExtraArgs=extra, Config=config)
            restored.objects += 1
            restored.bytes += path.stat().st_size


def _part_size_for(path: Path, etag: str) -> int | None:
    """The part size that gives a multipart object its ETag again; None for a single-part object."""
    if "-" not in etag:
        return None
    digest, _, parts = etag.partition("-")
    size = path.stat().st_size
    for mib in CANDIDATE_PART_SIZES_MIB:
        part = mib * 1024 * 1024
        if -(-size // part) == int(parts) and _multipart_etag(path, part) == digest:
            return part
    log_event(logger, "etag_not_reproduced", level=logging.WARNING, file=str(path), etag=etag)
    return 8 * 1024 * 1024


def _multipart_etag(path: Path, part: int) -> str:
    digests = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(part):
            digests.update(hashlib.md5(chunk, usedforsecurity=False).digest())
    return digests.hexdigest()


def _restore_queue(settings: Settings, queue: str, path: Path, restored: Saved) -> None:
    sqs = client("sqs", settings)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    with path.open() as lines:
        batch: list[dict[str, Any]] = []
        for line in lines:
            message = _bytes_again(json.loads(line))
            entry: dict[str, Any] = {"Id": str(len(batch)), "MessageBody": message["body"]}
            if message["attributes"]:
                entry["MessageAttributes"] = {
                    name: {key: value for key, value in attribute.items() if value}
                    for name, attribute in message["attributes"].items()
                }
            batch.append(entry)
            if len(batch) == 10:
                sqs.send_message_batch(QueueUrl=url, Entries=batch)
                restored.messages += len(batch)
                batch = []
        if batch:
            sqs.send_message_batch(QueueUrl=url, Entries=batch)
            restored.messages += len(batch)


def _restore_table(settings: Settings, table: str, path: Path, restored: Saved) -> None:
    dynamodb = client("dynamodb", settings)
    with path.open() as lines:
        items = [_bytes_again(json.loads(line)) for line in lines]
    for start in range(0, len(items), 25):
        requests = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while requests:
            requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        restored.items += len(items[start : start + 25])


DATABASE_INPUT = ("Name", "Description", "LocationUri", "Parameters")
TABLE_INPUT = ("Name", "Description", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")
PARTITION_INPUT = ("Values", "StorageDescriptor", "Parameters")


def _restore_catalog(settings: Settings, path: Path, restored: Saved) -> None:
    glue = client("glue", settings)
    for database in json.loads(path.read_text()):
        name = database["database"]["Name"]
        with contextlib.suppress(glue.exceptions.AlreadyExistsException):
            glue.create_database(DatabaseInput=_input(database["database"], DATABASE_INPUT))
        for table in database["tables"]:
            with contextlib.suppress(glue.exceptions.AlreadyExistsException):
                glue.create_table(DatabaseName=name, TableInput=_input(table["table"], TABLE_INPUT))
            partitions = [_input(partition, PARTITION_INPUT) for partition in table["partitions"]]
            for start in range(0, len(partitions), 100):
                glue.batch_create_partition(
                    DatabaseName=name,
                    TableName=table["table"]["Name"],
                    PartitionInputList=partitions[start : start + 100],
                )
            restored.partitions += len(partitions)


def _input(described: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {field: described[field] for field in fields if described.get(field) is not None}

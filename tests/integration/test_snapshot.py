"""The local stack's AWS state survives ``moviepipe down`` and ``up``: saved from one moto, restored into
a fresh one, before the buckets announce anything."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from boto3.s3.transfer import TransferConfig

from deploy.provision import provision
from deploy.resources import resources
from moviepipe import snapshot
from shared.aws import client
from shared.settings import Settings
from tests.conftest import moto_process

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def state_of(settings: Settings) -> dict:
    """What a user would check after a restart: objects (bytes' hash, ETag, metadata), queued messages,
    table items, catalog partitions."""
    s3, sqs, dynamodb, glue = (client(name, settings) for name in ("s3", "sqs", "dynamodb", "glue"))
    declared = resources(settings)
    objects = {}
    for bucket in declared.buckets:
        for item in s3.list_objects_v2(Bucket=bucket.name).get("Contents", []):
            got = s3.get_object(Bucket=bucket.name, Key=item["Key"])
            objects[(bucket.name, item["Key"])] = (
                hashlib.sha256(got["Body"].read()).hexdigest(),
                got["ETag"],
                got.get("Metadata"),
                got.get("ContentType"),
            )
    messages = {}
    for queue in declared.queues:
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        received = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        # Wiring a bucket's notifications sends an s3:TestEvent (as S3 does); the services ignore them.
        messages[queue.name] = sorted(
            (m["Body"], str(sorted(m.get("MessageAttributes", {}).items())))
            for m in received
            if "s3:TestEvent" not in m["Body"]
        )
    items = {
        table.name: sorted(str(item) for item in dynamodb.scan(TableName=table.name)["Items"])
        for table in declared.tables
    }
    partitions = sorted(
        str(partition["Values"])
        for partition in glue.get_partitions(DatabaseName="catalogued", TableName="movies")["Partitions"]
    )
    return {"objects": objects, "messages": messages, "items": items, "partitions": partitions}


def test_buckets_queues_tables_and_catalog_survive_a_restart_of_moto(tmp_path):
    with moto_process() as first:
        # GIVEN a stack's resources holding objects (one of them multipart), messages, items, a catalog
        settings = Settings(prefix="snap", home=tmp_path / "home", aws_endpoint_url=first)
        provision(settings)
        s3 = client("s3", settings)
        s3.put_object(
            Bucket="snap-landing",
            Key="imdb/2026/bundle one+two.zip",
            Body=b"zip bytes",
            Metadata={"sha256": "abc"},
            ContentType="application/zip",
        )
        big = bytes(range(256)) * (20 * MIB // 256)  # 20 MiB, written in the unzipper's 16 MiB parts
        (tmp_path / "big").write_bytes(big)
        s3.upload_file(
            str(tmp_path / "big"),
            "snap-processed",
            "imdb/x/movies.csv",
            Config=TransferConfig(multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB),
        )
        sqs = client("sqs", settings)
        loader = sqs.get_queue_url(QueueName="snap-loader")["QueueUrl"]
        for body in ("first", "second"):
            sqs.send_message(
                QueueUrl=loader,
                MessageBody=body,
                MessageAttributes={"kind": {"DataType": "String", "StringValue": body}},
            )
        client("dynamodb", settings).put_item(
            TableName="snap-extracts", Item={"extract_id": {"S": "e1"}, "status": {"S": "loaded"}}
        )
        glue = client("glue", settings)
        glue.create_database(DatabaseInput={"Name": "catalogued"})
        glue.create_table(
            DatabaseName="catalogued",
            TableInput={"Name": "movies", "PartitionKeys": [{"Name": "extract_id", "Type": "string"}]},
        )
        glue.batch_create_partition(
            DatabaseName="catalogued", TableName="movies", PartitionInputList=[{"Values": ["e1"]}]
        )
        before = state_of(settings)

        # WHEN it is saved as `moviepipe down` saves it
        saved = snapshot.save(settings)
        assert (saved.objects, saved.in_flight_lost) == (2, 0)
        assert saved.messages >= 3  # the loader's two, the landing object's event (and test events)

    with moto_process() as second:
        # AND restored into a new moto as `moviepipe up` does: resources made, notifications after
        settings = settings.model_copy(update={"aws_endpoint_url": second})
        provision(settings, dataclasses.replace(resources(settings), notifications=[]))
        restored = snapshot.restore(settings)
        provision(settings)

        # THEN everything is back as it was, ETags included (the multipart one in its 16 MiB parts)
        assert restored is not None and restored.objects == 2
        after = state_of(settings)
        assert after == before
        assert after["objects"][("snap-processed", "imdb/x/movies.csv")][1].endswith('-2"')
        # AND restoring announced nothing again: the unzipper's queue holds the one event it held
        assert len(after["messages"]["snap-unzipper"]) == 1


def test_a_second_save_links_what_did_not_change_and_reports_messages_still_held(tmp_path):
    with moto_process() as endpoint:
        # GIVEN a saved stack, then one more object and a message held by a worker that did not stop
        settings = Settings(prefix="snap", home=tmp_path / "home", aws_endpoint_url=endpoint)
        provision(settings)
        s3 = client("s3", settings)
        s3.put_object(Bucket="snap-archive", Key="a/part-00000.csv", Body=b"a,b\n1,2\n")
        snapshot.save(settings)
        first_inode = (settings.home / "state" / "s3" / "snap-archive" / "objects" / "0").stat().st_ino
        s3.put_object(Bucket="snap-archive", Key="b/part-00000.csv", Body=b"a,b\n3,4\n")
        sqs = client("sqs", settings)
        loader = sqs.get_queue_url(QueueName="snap-loader")["QueueUrl"]
        sqs.send_message(QueueUrl=loader, MessageBody="held")
        sqs.receive_message(QueueUrl=loader, VisibilityTimeout=600)

        # WHEN it is saved again
        saved = snapshot.save(settings)

        # THEN the unchanged object is the same file (linked, not downloaded), the new one is there, and
        # the held message is reported as not kept
        objects = settings.home / "state" / "s3" / "snap-archive" / "objects"
        assert (objects / "0").stat().st_ino == first_inode
        assert saved.objects == 2 and saved.in_flight_lost == 1
        assert "1 in-flight messages were held by a process that did not stop" in saved.describe()
        assert not (settings.home / "state.new").exists() and not (settings.home / "state.old").exists()


def test_no_snapshot_restores_nothing(tmp_path):
    settings = Settings(prefix="snap", home=tmp_path / "home", aws_endpoint_url="http://127.0.0.1:9")
    assert snapshot.restore(settings) is None

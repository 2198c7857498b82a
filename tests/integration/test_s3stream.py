"""Streaming S3 objects on a real moto server: ranged reads hashed in passing, uploads shown on commit."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from shared.aws import client
from shared.s3stream import TAIL_BYTES, ObjectChanged, S3ObjectReader, S3ObjectWriter

pytestmark = pytest.mark.integration


@pytest.fixture
def s3(provisioned):
    return client("s3", provisioned)


@pytest.fixture
def bucket(provisioned) -> str:
    return provisioned.bucket("landing")


def test_a_reader_serves_seeks_and_reads_and_hashes_the_whole_object(s3, bucket):
    # GIVEN an object of a few MiB (more than the tail kept in memory)
    data = os.urandom(3 * TAIL_BYTES + 12345)
    s3.put_object(Bucket=bucket, Key="blob", Body=data)
    reader = S3ObjectReader.open(s3, bucket, "blob")
    # WHEN read as a zip reader would: the tail, then front to back from a middle offset, then elsewhere
    reader.seek(-22, io.SEEK_END)
    assert reader.read(22) == data[-22:]
    reader.seek(100)
    assert reader.read(2 * TAIL_BYTES) == data[100 : 100 + 2 * TAIL_BYTES]
    reader.seek(5)
    assert reader.read(10) == data[5:15]
    # THEN the digest is the whole object's, and sequential reads took few requests
    digest = reader.digest()
    assert digest.hash == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert digest.bytes == len(data)
    assert reader.requests <= 5


def test_reading_an_object_front_to_back_fetches_it_once(s3, bucket):
    data = os.urandom(5 * TAIL_BYTES)
    s3.put_object(Bucket=bucket, Key="blob", Body=data)
    reader = S3ObjectReader.open(s3, bucket, "blob")
    assert reader.read() == data
    assert reader.digest().hash == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert reader.requests == 2  # the tail at open, then one streaming GET


def test_an_empty_object_reads_as_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    reader = S3ObjectReader.open(s3, bucket, "empty")
    assert reader.size == 0 and reader.read() == b""
    assert reader.digest().hash == f"sha256:{hashlib.sha256(b'').hexdigest()}"


def test_an_object_replaced_while_read_fails_instead_of_mixing_versions(s3, bucket):
    # GIVEN a reader opened on one version
    s3.put_object(Bucket=bucket, Key="blob", Body=os.urandom(3 * TAIL_BYTES))
    reader = S3ObjectReader.open(s3, bucket, "blob")
    # WHEN the object is replaced before the reader fetches the rest
    s3.put_object(Bucket=bucket, Key="blob", Body=os.urandom(3 * TAIL_BYTES))
    # THEN reading on says the object changed
    with pytest.raises(ObjectChanged):
        reader.read(10)


def test_a_writer_shows_nothing_until_it_commits_then_the_whole_object(s3, bucket):
    # GIVEN a writer fed 40 MiB in odd-sized pieces (three parts)
    data = os.urandom(40 << 20)
    writer = S3ObjectWriter(s3, bucket, "out/big.csv", content_type="text/csv")
    for at in range(0, len(data), 3_000_001):
        writer.write(data[at : at + 3_000_001])
    # THEN nothing is visible before the commit
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="out/")
    # WHEN committed THEN the object is exactly what was written, and no upload is left open
    writer.commit()
    stored = s3.get_object(Bucket=bucket, Key="out/big.csv")
    assert stored["ContentType"] == "text/csv"
    assert stored["Body"].read() == data
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_an_aborted_writer_leaves_nothing_behind(s3, bucket):
    writer = S3ObjectWriter(s3, bucket, "out/dropped.csv")
    writer.write(os.urandom(40 << 20))
    writer.abort()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="out/")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_a_small_object_is_one_put(s3, bucket):
    writer = S3ObjectWriter(s3, bucket, "out/small.json")
    writer.write(b"{}")
    writer.commit()
    assert s3.get_object(Bucket=bucket, Key="out/small.json")["Body"].read() == b"{}"

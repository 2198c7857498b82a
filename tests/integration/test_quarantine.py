"""shared.quarantine on a real moto server: what is kept, and reason.json written and read back."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from shared.aws import client
from shared.quarantine import REASON_KEYS, copy_into_quarantine, read_reason, write_reason
from shared.settings import Settings

pytestmark = pytest.mark.integration


def put(settings: Settings, role: str, key: str, body: bytes = b"x") -> None:
    client("s3", settings).put_object(Bucket=settings.bucket(role), Key=key, Body=body)


def quarantined(settings: Settings) -> dict[str, bytes]:
    s3 = client("s3", settings)
    bucket = settings.bucket("quarantine")
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


def test_every_object_under_the_prefix_is_copied_with_its_relative_name(provisioned):
    # GIVEN an archived bundle, nested folders included, beside another extract's
    for key, body in {
        "imdb/e1/manifest.json": b"{}",
        "imdb/e1/movies/part-00000.csv": b"title\nA\n",
        "imdb/e10/manifest.json": b"not this one",
    }.items():
        put(provisioned, "archive", key, body)
    # WHEN
    names = copy_into_quarantine(
        client("s3", provisioned), provisioned, provisioned.bucket("archive"), "imdb/e1/", "load/imdb/e1/"
    )
    # THEN only that extract's objects are kept, byte for byte, under the quarantine folder
    assert sorted(names) == ["manifest.json", "movies/part-00000.csv"]
    assert quarantined(provisioned) == {
        "load/imdb/e1/manifest.json": b"{}",
        "load/imdb/e1/movies/part-00000.csv": b"title\nA\n",
    }


def test_only_the_given_keys_are_copied(provisioned):
    # GIVEN two objects at the top of a bucket
    put(provisioned, "archive", "manifest.json", b"{}")
    put(provisioned, "archive", "other.csv")
    # WHEN only the manifest is asked for
    names = copy_into_quarantine(
        client("s3", provisioned),
        provisioned,
        provisioned.bucket("archive"),
        "",
        "load/",
        keys=["manifest.json"],
    )
    # THEN
    assert names == ["manifest.json"]
    assert quarantined(provisioned) == {"load/manifest.json": b"{}"}


def test_reason_json_reads_back_as_written(provisioned):
    # GIVEN
    s3 = client("s3", provisioned)
    assert read_reason(s3, provisioned, "unzip/imdb/e1/") is None
    # WHEN
    uri = write_reason(
        s3,
        provisioned,
        "unzip/imdb/e1/",
        stage="unzipper",
        extract_id="e1",
        source="imdb",
        reason="CORRUPT_ZIP",
        message="the bundle is not a readable zip",
        origin=f"s3://{provisioned.bucket('landing')}/imdb/e1.zip",
        files=["e1.zip"],
        bundle_hash="sha256:00",
    )
    # THEN
    assert uri == f"s3://{provisioned.bucket('quarantine')}/unzip/imdb/e1/reason.json"
    found = read_reason(s3, provisioned, "unzip/imdb/e1/")
    assert list(found) == [*REASON_KEYS, "bundle_hash"]
    assert (found["stage"], found["reason"], found["files"], found["bundle_hash"]) == (
        "unzipper",
        "CORRUPT_ZIP",
        ["e1.zip"],
        "sha256:00",
    )
    assert json.loads(quarantined(provisioned)["unzip/imdb/e1/reason.json"]) == found


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"])
def test_a_reason_json_that_is_not_an_object_counts_as_none(provisioned, body):
    put(provisioned, "quarantine", "transform/imdb/e1/reason.json", body)
    assert read_reason(client("s3", provisioned), provisioned, "transform/imdb/e1/") is None


def test_reading_a_reason_raises_when_s3_fails_otherwise(settings):
    # GIVEN no quarantine bucket at all
    # WHEN / THEN the failure is not mistaken for "not quarantined"
    with pytest.raises(ClientError) as raised:
        read_reason(client("s3", settings), settings, "load/imdb/e1/")
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"

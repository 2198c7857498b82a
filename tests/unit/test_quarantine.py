"""reason.json's one shape, without S3: what every stage writes to the quarantine bucket."""

import json
from typing import Any

import pytest

from shared.quarantine import REASON_KEYS, reason_key, write_reason
from shared.settings import Settings


class RecordingS3:
    """Just enough of an S3 client to see what ``write_reason`` puts."""

    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put_object(self, **params: Any) -> None:
        self.puts.append(params)


def write(s3: RecordingS3, **extras: Any) -> str:
    return write_reason(
        s3,
        Settings(prefix="moviepipe"),
        "load/imdb/e1/",
        stage="loader",
        extract_id="e1",
        source="imdb",
        reason="FILE_MISMATCH",
        message="movies/part-00000.csv: hash differs",
        origin="s3://moviepipe-archive/imdb/e1/manifest.json",
        files=["manifest.json", "movies/part-00000.csv"],
        **extras,
    )


def test_reason_json_has_the_core_keys_first_then_the_stage_extras():
    # GIVEN
    s3 = RecordingS3()
    # WHEN
    uri = write(s3, file="movies/part-00000.csv")
    # THEN
    [put] = s3.puts
    assert (put["Bucket"], put["Key"], put["ContentType"]) == (
        "moviepipe-quarantine",
        "load/imdb/e1/reason.json",
        "application/json",
    )
    assert uri == "s3://moviepipe-quarantine/load/imdb/e1/reason.json"
    document = json.loads(put["Body"])
    assert list(document) == [*REASON_KEYS, "file"]
    assert document["reason"] == "FILE_MISMATCH" and document["origin"].endswith("imdb/e1/manifest.json")
    assert document["files"] == ["manifest.json", "movies/part-00000.csv"]
    assert document["quarantined_at"].endswith("+00:00")


def test_an_extra_cannot_replace_a_core_key():
    s3 = RecordingS3()
    with pytest.raises(ValueError, match="quarantined_at"):
        write(s3, quarantined_at="yesterday")
    assert s3.puts == []


@pytest.mark.parametrize("prefix", ["transform/imdb/e1/", "transform/imdb/e1"])
def test_reason_json_sits_in_its_quarantine_folder(prefix):
    assert reason_key(prefix) == "transform/imdb/e1/reason.json"

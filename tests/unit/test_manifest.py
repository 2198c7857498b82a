"""The manifest: a Frictionless tabular data package that vouches for every file's bytes and rows."""

import hashlib
import json

from shared.manifest import Manifest, StreamDigest, describe_file, file_digest, new_manifest
from shared.schema import MOVIE_FIELDS


def test_describe_file_hashes_and_sizes_the_file(tmp_path):
    # GIVEN
    data = tmp_path / "movies.csv"
    data.write_text("title,year\nA,2000\n")
    # WHEN
    resource = describe_file(data, name="movies", rows=1, fields=MOVIE_FIELDS)
    # THEN
    assert resource.bytes == data.stat().st_size
    assert resource.hash.startswith("sha256:") and len(resource.sha256) == 64
    assert resource.format == "csv" and resource.mediatype == "text/csv"
    assert resource.schema_["fields"][0]["name"] == "title"


def test_manifest_round_trips_as_a_tabular_data_package(tmp_path):
    # GIVEN
    data = tmp_path / "movies.parquet"
    data.write_bytes(b"PAR1")
    manifest = new_manifest(
        extract_id="20261126T000000Z-abcd1234",
        source="imdb",
        stage="extract",
        row_counts={"extracted": 1},
        resources=[describe_file(data, name="movies-parquet", rows=1, fields=MOVIE_FIELDS)],
    )
    # WHEN
    text = manifest.to_json()
    parsed = Manifest.from_json(text)
    # THEN
    raw = json.loads(text)
    assert raw["profile"] == "tabular-data-package"
    assert raw["resources"][0]["schema"]["fields"]
    assert parsed.resource("movies-parquet").hash == file_digest(data)[0]
    assert parsed.extract_id == "20261126T000000Z-abcd1234"
    assert parsed.schema_version == "1.0"


def test_a_stream_digest_equals_the_files_digest_whatever_the_chunks(tmp_path):
    # GIVEN bytes with lines, fed in uneven chunks
    data = b"title,year\n" + b"A,1999\nB,2000\n" * 1000
    digest = StreamDigest(count_lines=True)
    for start in range(0, len(data), 777):
        digest.update(memoryview(data)[start : start + 777])
    # THEN hash, size and lines are those of the whole, and of the file holding it
    assert digest.hash == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (digest.bytes, digest.lines) == (len(data), 2001)
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert file_digest(path) == (digest.hash, len(data))

"""The unzipper's checks on bundles in memory: each way a bundle can be bad gets its own reason."""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from pathlib import Path

import pytest

from services.unzipper.content import CsvRecords, count_records_exactly
from services.unzipper.exceptions import BadBundle, Reason
from services.unzipper.inflate import InflateLimits
from services.unzipper.locations import LandedBundle
from services.unzipper.validate import validate_bundle
from shared.schema import field_names
from tests.factories import (
    CSV_NAME,
    PARQUET_NAME,
    bundle_files,
    csv_bytes,
    lying_about_size,
    movies,
    new_extract_id,
    stamp,
    zip_bundle,
)

EXTRACT_ID = new_extract_id()
LIMIT = 10 * 1024 * 1024


class MemorySink:
    """A sink keeping what is written; ``committed`` once committed, ``aborted`` once aborted."""

    def __init__(self, opened: list[MemorySink]):
        self.data = bytearray()
        self.committed: bytes | None = None
        self.aborted = False
        opened.append(self)

    def write(self, data: bytes) -> None:
        self.data += data

    def commit(self) -> None:
        self.committed = bytes(self.data)

    def abort(self) -> None:
        self.aborted = True


def validate(
    data: bytes,
    tmp_path: Path,
    *,
    extract_id: str = EXTRACT_ID,
    limit: int = LIMIT,
    ratio: int = 100,
    opened: list[MemorySink] | None = None,
):
    opened = [] if opened is None else opened
    return validate_bundle(
        io.BytesIO(data),
        lambda resource, info: MemorySink(opened),
        extract_id=extract_id,
        source="imdb",
        limits=InflateLimits(max_bytes=limit, max_ratio=ratio),
    )


def refused(data: bytes, tmp_path: Path, **kwargs) -> BadBundle:
    with pytest.raises(BadBundle) as raised:
        validate(data, tmp_path, **kwargs)
    return raised.value


def test_a_valid_bundle_passes_and_its_files_are_unzipped(tmp_path: Path):
    # GIVEN a bundle that is exactly what its manifest says
    files = bundle_files(movies(5), extract_id=EXTRACT_ID)
    # WHEN validated
    valid = validate(zip_bundle(files), tmp_path)
    # THEN its data files went to their sinks as they were zipped, and its manifest counts 5 rows
    assert valid.manifest.row_counts == {"extracted": 5}
    assert {path: bytes(sink.data) for path, sink in valid.sinks.items()} == {
        CSV_NAME: files[CSV_NAME],
        PARQUET_NAME: files[PARQUET_NAME],
    }


def test_titles_with_line_breaks_count_as_one_row(tmp_path: Path):
    # GIVEN a CSV whose only movie has a quoted line break (two lines, one record)
    rows = [movies(3)[2]]
    assert "\n" in rows[0]["title"]
    # WHEN validated against a manifest that says 1 row THEN it passes
    assert validate(zip_bundle(bundle_files(rows, extract_id=EXTRACT_ID)), tmp_path).manifest.row_counts == {
        "extracted": 1
    }


def test_not_a_zip_is_a_corrupt_zip(tmp_path: Path):
    error = refused(b"PK\x03\x04 this is not a zip", tmp_path)
    assert error.reason == Reason.CORRUPT_ZIP
    assert "not a readable zip" in error.message


def test_a_truncated_zip_is_a_corrupt_zip(tmp_path: Path):
    data = zip_bundle(bundle_files(extract_id=EXTRACT_ID))
    assert refused(data[: len(data) // 2], tmp_path).reason == Reason.CORRUPT_ZIP


def test_a_damaged_member_is_a_corrupt_zip_naming_it(tmp_path: Path):
    # GIVEN a zip whose CSV bytes were flipped after zipping (stored, so the CRC catches it)
    files = bundle_files(extract_id=EXTRACT_ID)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    data = out.getvalue()
    at = data.index(b"Crouching")
    damaged = data[:at] + b"X" + data[at + 1 :]
    # WHEN validated THEN the zip is corrupt, and the message names the file
    error = refused(damaged, tmp_path)
    assert error.reason == Reason.CORRUPT_ZIP
    assert error.file == CSV_NAME


def test_no_manifest_is_missing_manifest(tmp_path: Path):
    files = bundle_files(extract_id=EXTRACT_ID)
    del files["manifest.json"]
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.MISSING_MANIFEST
    assert "manifest.json" in error.message


def test_a_manifest_breaking_the_tabular_data_package_profile_is_invalid_naming_why(tmp_path: Path):
    # GIVEN a bundle whose manifest names a resource in a way the Frictionless profile refuses
    files = bundle_files(extract_id=EXTRACT_ID)
    document = json.loads(files["manifest.json"])
    document["resources"][0]["name"] = "Movies CSV!"
    files["manifest.json"] = json.dumps(document).encode()
    # WHEN / THEN
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.INVALID_MANIFEST
    assert "'Movies CSV!' does not match" in error.message and "name" in error.message


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "not a JSON object but list"),
        (json.dumps({"extract_id": EXTRACT_ID}).encode(), "source: Field required"),
        (json.dumps({"extract_id": EXTRACT_ID}).encode(), "resources"),
    ],
)
def test_an_unreadable_manifest_is_invalid_manifest_saying_why(tmp_path: Path, manifest: bytes, says: str):
    files = {**bundle_files(extract_id=EXTRACT_ID), "manifest.json": manifest}
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.INVALID_MANIFEST
    assert says in error.message


def test_a_resource_without_a_hash_is_invalid_manifest_naming_the_field(tmp_path: Path):
    files = bundle_files(extract_id=EXTRACT_ID)
    document = json.loads(files["manifest.json"])
    del document["resources"][0]["hash"]
    files["manifest.json"] = json.dumps(document).encode()
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.INVALID_MANIFEST
    assert "resources.0.hash: Field required" in error.message


def test_row_counts_that_disagree_with_the_resources_are_invalid_manifest(tmp_path: Path):
    files = bundle_files(movies(3), extract_id=EXTRACT_ID)
    document = json.loads(files["manifest.json"])
    document["row_counts"]["extracted"] = 100
    files["manifest.json"] = json.dumps(document).encode()
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.INVALID_MANIFEST
    assert "rows is 3, but row_counts.extracted is 100" in error.message


def test_a_manifest_of_another_extract_is_a_mismatch(tmp_path: Path):
    # GIVEN a bundle landed under one extract id but describing another
    data = zip_bundle(bundle_files(extract_id="20200101T000000Z-00000000"))
    error = refused(data, tmp_path)
    assert error.reason == Reason.MANIFEST_MISMATCH
    assert "20200101T000000Z-00000000" in error.message and EXTRACT_ID in error.message


def test_a_listed_file_absent_from_the_zip_is_missing_file(tmp_path: Path):
    files = bundle_files(extract_id=EXTRACT_ID)
    del files[PARQUET_NAME]
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.MISSING_FILE
    assert error.message == "movies.parquet is listed in manifest.json but is not in the bundle"


def test_changed_bytes_are_a_hash_mismatch_naming_file_expected_and_actual(tmp_path: Path):
    # GIVEN a CSV changed after the manifest vouched for it (same length)
    files = bundle_files(extract_id=EXTRACT_ID)
    files[CSV_NAME] = files[CSV_NAME].replace(b"2000", b"2999")
    # WHEN validated THEN the hash mismatch names the file, the expected and the actual hash
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.HASH_MISMATCH
    expected = json.loads(files["manifest.json"])["resources"][0]["hash"]
    assert error.message.startswith("movies.csv: sha256 is sha256:")
    assert error.message.endswith(f"but manifest.json says {expected}")


def test_a_changed_size_is_a_hash_mismatch(tmp_path: Path):
    files = bundle_files(extract_id=EXTRACT_ID)
    files[CSV_NAME] += b"\n"
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.HASH_MISMATCH
    assert "size in bytes is" in error.message


def test_a_row_count_other_than_the_manifests_is_a_row_count_mismatch(tmp_path: Path):
    # GIVEN a manifest, hashes right, claiming 5 rows for a CSV of 4
    files = stamp(bundle_files(movies(4), extract_id=EXTRACT_ID), extract_id=EXTRACT_ID, rows=5)
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.ROW_COUNT_MISMATCH
    assert error.message == "movies.csv has 4 data rows but manifest.json says 5"


def test_a_renamed_column_is_a_schema_mismatch_naming_missing_and_unexpected(tmp_path: Path):
    columns = [("film" if name == "title" else name) for name in field_names()]
    rows = [{("film" if k == "title" else k): v for k, v in row.items()} for row in movies(2)]
    files = stamp({CSV_NAME: csv_bytes(rows, columns)}, extract_id=EXTRACT_ID)
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.SCHEMA_MISMATCH
    assert error.message == "movies.csv: missing columns ['title'], unexpected columns ['film']"


def test_reordered_columns_are_a_schema_mismatch(tmp_path: Path):
    columns = [*field_names()[1:], "title"]
    files = stamp({CSV_NAME: csv_bytes(movies(2), columns)}, extract_id=EXTRACT_ID)
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.SCHEMA_MISMATCH
    assert "out of order" in error.message


def test_a_file_the_manifest_does_not_list_is_unexpected(tmp_path: Path):
    files = {**bundle_files(extract_id=EXTRACT_ID), "notes.txt": b"hello"}
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.UNEXPECTED_FILE
    assert "notes.txt" in error.message


@pytest.mark.parametrize("name", ["../evil.csv", "/etc/passwd", "sub/movies.csv", "..\\evil.csv"])
def test_paths_leaving_the_bundle_are_unexpected_and_never_written(tmp_path: Path, name: str):
    files = {**bundle_files(extract_id=EXTRACT_ID), name: b"x"}
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.UNEXPECTED_FILE
    assert repr(name) in error.message
    assert not (tmp_path / "evil.csv").exists()


def test_a_bundle_unzipping_past_the_limit_is_too_large(tmp_path: Path):
    # GIVEN a small zip that would unzip to 1 MiB of zeros, and a limit of 64 KiB
    files = {**bundle_files(extract_id=EXTRACT_ID), "bomb.bin": bytes(1024 * 1024)}
    data = zip_bundle(files)
    assert len(data) < 64 * 1024
    # WHEN validated THEN it is refused before anything is unzipped
    opened: list[MemorySink] = []
    error = refused(data, tmp_path, limit=64 * 1024, opened=opened)
    assert error.reason == Reason.BUNDLE_TOO_LARGE
    assert "MOVIEPIPE_MAX_UNZIPPED_BYTES" in error.message
    assert opened == []


def test_a_parquet_file_that_is_not_parquet_is_malformed(tmp_path: Path):
    files = stamp(
        {**bundle_files(movies(2), extract_id=EXTRACT_ID), PARQUET_NAME: b"not parquet"},
        extract_id=EXTRACT_ID,
    )
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.MALFORMED_FILE
    assert error.file == PARQUET_NAME


def test_a_csv_that_is_not_utf8_is_malformed(tmp_path: Path):
    data = csv_bytes(movies(1)).replace(b"Crouching", "Crouch\u00efng".encode("latin-1"))
    files = stamp({CSV_NAME: data}, extract_id=EXTRACT_ID, rows=1)
    error = refused(zip_bundle(files), tmp_path)
    assert error.reason == Reason.MALFORMED_FILE
    assert "not UTF-8" in error.message


def test_reason_codes_are_their_own_names():
    assert {reason.value for reason in Reason} >= {
        "CORRUPT_ZIP",
        "MISSING_MANIFEST",
        "INVALID_MANIFEST",
        "MANIFEST_MISMATCH",
        "MISSING_FILE",
        "HASH_MISMATCH",
        "ROW_COUNT_MISMATCH",
        "SCHEMA_MISMATCH",
        "UNEXPECTED_FILE",
    }
    assert json.dumps({"reason": Reason.HASH_MISMATCH}) == '{"reason": "HASH_MISMATCH"}'


@pytest.mark.parametrize(
    ("key", "source", "extract_id"),
    [
        ("imdb/20261126T041700Z-3f9c2a1b.zip", "imdb", "20261126T041700Z-3f9c2a1b"),
        ("junk.zip", None, None),
        ("a/b/c.zip", None, None),
        ("imdb/../x.zip", None, None),
    ],
)
def test_landing_keys_name_source_and_extract_or_nothing(key, source, extract_id):
    bundle = LandedBundle.at("landing", key)
    assert (bundle.source, bundle.extract_id) == (source, extract_id)
    assert bundle.quarantine_prefix() == "unzip/" + key.removesuffix(".zip") + "/"


# -- zip bombs: declared sizes are claims, inflated bytes are counted ---------------------------------
def bomb_bundle(csv: bytes) -> bytes:
    """A bundle whose movies.csv is ``csv``, stamped honestly (the lie comes after)."""
    return zip_bundle(stamp({CSV_NAME: csv}, extract_id=EXTRACT_ID, rows=0))


def test_a_member_inflating_past_its_declared_size_is_stopped_while_inflating(tmp_path: Path):
    # GIVEN a bundle whose CSV really inflates to 8 MiB but whose zip entries declare 1,000 bytes
    header = ",".join(field_names()).encode() + b"\n"
    data = lying_about_size(bomb_bundle(header + b"\n" * (8 << 20)), CSV_NAME, 1000)
    # WHEN validated
    opened: list[MemorySink] = []
    error = refused(data, tmp_path, opened=opened)
    # THEN it is a zip bomb, stopped within the first inflated chunk, and its sink is dropped
    assert error.reason == Reason.BUNDLE_TOO_LARGE
    assert "inflates past the 1000 bytes its zip entry declares" in error.message
    assert error.file == CSV_NAME
    (sink,) = opened
    assert sink.aborted and sink.committed is None
    assert len(sink.data) <= 1000


def test_a_member_declaring_a_bomb_ratio_is_refused_unopened(tmp_path: Path):
    # GIVEN 64 MiB of one byte, compressed about a thousand times
    header = ",".join(field_names()).encode() + b"\n"
    data = bomb_bundle(header + b"\n" * (64 << 20))
    # WHEN validated with a ratio limit of 100
    opened: list[MemorySink] = []
    error = refused(data, tmp_path, limit=1 << 30, opened=opened)
    # THEN it is refused from its declared sizes, naming the setting, before any sink is opened
    assert error.reason == Reason.BUNDLE_TOO_LARGE
    assert "MOVIEPIPE_MAX_UNZIP_RATIO" in error.message
    assert opened == []


def test_a_bomb_lying_about_its_size_within_the_ratio_is_stopped_by_the_ratio(tmp_path: Path):
    # GIVEN a member that declares a size the ratio allows (2 MiB for ~64 KiB) but inflates to 64 MiB
    header = ",".join(field_names()).encode() + b"\n"
    bundle = bomb_bundle(header + b"\n" * (64 << 20))
    data = lying_about_size(bundle, CSV_NAME, 64 << 20)  # honest so far: the declared ratio refuses it
    assert refused(data, tmp_path, limit=1 << 30).reason == Reason.BUNDLE_TOO_LARGE
    data = lying_about_size(bundle, CSV_NAME, 100)
    error = refused(data, tmp_path, limit=1 << 30)
    assert error.reason == Reason.BUNDLE_TOO_LARGE
    assert "inflates past" in error.message


def test_the_bundle_limit_counts_inflated_bytes_not_declared_ones(tmp_path: Path):
    # GIVEN a bundle limit of 4 MiB and a CSV that declares 1 KB but inflates to 6 MiB of text
    header = ",".join(field_names()).encode() + b"\n"
    data = lying_about_size(bomb_bundle(header + b"x,y\n" * (6 << 18)), CSV_NAME, 3 << 20)
    error = refused(data, tmp_path, limit=4 << 20, ratio=10_000)
    assert error.reason == Reason.BUNDLE_TOO_LARGE
    assert "MOVIEPIPE_MAX_UNZIPPED_BYTES" in error.message or "inflates past" in error.message


def test_a_failed_bundle_aborts_every_sink_it_opened(tmp_path: Path):
    # GIVEN a bundle whose Parquet file (read after the CSV) is not Parquet
    files = stamp(
        {**bundle_files(movies(2), extract_id=EXTRACT_ID), PARQUET_NAME: b"not parquet"},
        extract_id=EXTRACT_ID,
    )
    opened: list[MemorySink] = []
    refused(zip_bundle(files), tmp_path, opened=opened)
    # THEN the CSV's sink, which passed, is aborted too: nothing of the bundle is kept
    assert len(opened) == 2
    assert all(sink.aborted and sink.committed is None for sink in opened)


# -- counting CSV records as csv.reader does ------------------------------------------------------------
def _records_by_csv_module(data: bytes) -> int:
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    return sum(1 for record in csv.reader(text) if record)


def _random_csv(rng: random.Random) -> bytes:
    def field() -> str:
        if rng.random() < 0.3:
            inside = ["x", "\n", '""', ",", "\r\n", " ", "é"]
            return '"' + "".join(rng.choice(inside) for _ in range(rng.randint(0, 4))) + '"'
        return "".join(rng.choice(["x", "y", " ", "ü"]) for _ in range(rng.randint(0, 3)))

    lines = []
    for _ in range(rng.randint(0, 8)):
        lines.append("" if rng.random() < 0.15 else ",".join(field() for _ in range(rng.randint(1, 3))))
    if lines and rng.random() < 0.1:
        lines[rng.randrange(len(lines))] += "a 5'10\" man"  # a quote inside an unquoted field
    end = rng.choice(["\n", "\r\n", "\r"])
    return (end.join(lines) + (end if rng.random() < 0.5 else "")).encode()


def test_the_fast_record_count_agrees_with_the_csv_module_or_says_it_cannot():
    # GIVEN thousands of random CSVs (quoted line breaks, CRLF, lone CR, blank lines, stray quotes), each
    # fed in random small chunks
    rng = random.Random(20261205)
    irregular = 0
    for _ in range(5000):
        data = _random_csv(rng)
        counter = CsvRecords()
        at = 0
        while at < len(data):
            size = rng.randint(1, 9)
            counter.feed(data[at : at + size])
            at += size
        expected = _records_by_csv_module(data)
        # THEN the fast count is csv.reader's, unless it flagged the CSV irregular; then the slow one is
        if counter.regular:
            assert counter.records() == expected, data
        else:
            irregular += 1
            assert count_records_exactly([data]) == expected, data
    assert 0 < irregular < 1000


def test_a_stray_quote_in_an_unquoted_field_is_counted_exactly(tmp_path: Path):
    # GIVEN a CSV with a quote inside an unquoted field (csv.reader keeps it as a character), before a
    # quoted title with a line break in it
    body = csv_bytes(movies(3)).replace(b",PG,", b',P"G,', 1)
    assert b',P"G,' in body
    counter = CsvRecords()
    counter.feed(body)
    assert not counter.regular
    files = stamp({CSV_NAME: body}, extract_id=EXTRACT_ID, rows=3)
    # WHEN validated THEN the manifest's 3 rows are found (the slow, exact count took over)
    assert validate(zip_bundle(files), tmp_path).manifest.row_counts == {"extracted": 3}

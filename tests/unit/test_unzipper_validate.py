"""The unzipper's checks on bundles in memory: each way a bundle can be bad gets its own reason."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from services.unzipper.exceptions import BadBundle, Reason
from services.unzipper.locations import LandedBundle
from services.unzipper.validate import validate_bundle
from shared.schema import field_names
from tests.factories import (
    CSV_NAME,
    PARQUET_NAME,
    bundle_files,
    csv_bytes,
    movies,
    new_extract_id,
    stamp,
    zip_bundle,
)

EXTRACT_ID = new_extract_id()
LIMIT = 10 * 1024 * 1024


def validate(data: bytes, tmp_path: Path, *, extract_id: str = EXTRACT_ID, limit: int = LIMIT):
    return validate_bundle(
        io.BytesIO(data), tmp_path / "files", extract_id=extract_id, source="imdb", max_unzipped_bytes=limit
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
    # THEN its data files are on disk as they were zipped, and its manifest counts 5 rows
    assert valid.manifest.row_counts == {"extracted": 5}
    assert {path: file.read_bytes() for path, file in valid.files.items()} == {
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
    error = refused(data, tmp_path, limit=64 * 1024)
    assert error.reason == Reason.BUNDLE_TOO_LARGE
    assert "MOVIEPIPE_MAX_UNZIPPED_BYTES" in error.message
    assert not list((tmp_path / "files").iterdir())


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

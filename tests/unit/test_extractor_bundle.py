"""The bundle the extractor lands: data files, manifest and zip, as the next stage will read them."""

from __future__ import annotations

import csv
import hashlib
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.extractor.bundle import Bundle, write_bundle
from services.extractor.exceptions import SourceUnreadable
from services.extractor.sources.sqlite import rows_to_batch
from shared.manifest import Manifest
from shared.schema import arrow_schema, field_names
from tests.factories import movies


def batch_of(rows: list[dict]) -> pa.RecordBatch:
    return rows_to_batch([tuple(row[name] for name in field_names()) for row in rows])


@pytest.fixture
def bundled(tmp_path: Path) -> tuple[Bundle, list[dict]]:
    # GIVEN four awkward movies arriving in two batches
    rows = movies(4)
    # WHEN they are bundled
    batches = [batch_of(rows[:3]), batch_of(rows[3:])]
    bundle = write_bundle(batches, tmp_path / "bundle", extract_id="20261126T041700Z-3f9c2a1b", source="imdb")
    return bundle, rows


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_manifest_vouches_for_each_file_with_its_bytes_hash_and_rows(bundled):
    bundle, rows = bundled
    # THEN every resource's size and sha256 are those of the file, and every row is counted
    for resource in bundle.manifest.resources:
        data = (bundle.path.parent / resource.path).read_bytes()
        assert resource.bytes == len(data)
        assert resource.hash == "sha256:" + hashlib.sha256(data).hexdigest()
        assert resource.rows == len(rows)
    assert bundle.manifest.row_counts == {"extracted": 4}
    assert bundle.manifest.stage == "extract"
    assert bundle.manifest.source == "imdb"
    assert bundle.rows == 4


def test_zip_holds_exactly_the_data_files_and_the_manifest(bundled):
    bundle, _ = bundled
    # THEN the zip holds the two data files and the manifest, which parses back to the one returned
    with zipfile.ZipFile(bundle.path) as archive:
        assert sorted(archive.namelist()) == ["manifest.json", "movies.csv", "movies.parquet"]
        assert Manifest.from_json(archive.read("manifest.json")) == bundle.manifest
    assert bundle.hash == "sha256:" + hashlib.sha256(bundle.path.read_bytes()).hexdigest()
    assert bundle.bytes == bundle.path.stat().st_size


def test_csv_has_canonical_header_empty_gaps_true_false_and_quoted_titles(bundled):
    bundle, _ = bundled
    # THEN the CSV reads back record by record, titles with commas, quotes and line breaks intact
    header, *records = read_csv(bundle.path.parent / "movies.csv")
    assert header == field_names()
    by_title = {record[0]: dict(zip(header, record, strict=True)) for record in records}
    assert set(by_title) == {"Crouching Tiger, Hidden Dragon", 'The "Best" Movie', "Two\nLines", "$"}
    best = by_title['The "Best" Movie']
    assert best["budget"] == "" and best["mpaa"] == ""
    assert best["comedy"] == "true" and best["action"] == "false"
    assert by_title["Crouching Tiger, Hidden Dragon"]["year"] == "2000"
    raw = (bundle.path.parent / "movies.csv").read_text(encoding="utf-8")
    assert '"The ""Best"" Movie"' in raw and "NA" not in raw


def test_parquet_has_the_arrow_schema_and_the_same_rows(bundled):
    bundle, rows = bundled
    table = pq.read_table(bundle.path.parent / "movies.parquet")
    assert table.schema.equals(arrow_schema())
    assert table.to_pylist() == rows


def test_an_empty_source_gives_a_header_only_bundle(tmp_path: Path):
    # GIVEN a source with no movies WHEN bundled
    bundle = write_bundle([], tmp_path, extract_id="20261126T041700Z-00000000", source="imdb")
    # THEN the CSV is just the header and the manifest says 0 rows
    assert read_csv(tmp_path / "movies.csv") == [field_names()]
    assert bundle.manifest.row_counts == {"extracted": 0}


def test_batches_with_other_columns_are_refused_naming_them(tmp_path: Path):
    # GIVEN a source whose rows lack the movie record's columns
    batch = pa.record_batch({"name": ["x"]})
    # WHEN bundled THEN the extract fails, saying which columns are wrong
    with pytest.raises(SourceUnreadable, match=r"missing \['title'.*unexpected \['name'\]"):
        write_bundle([batch], tmp_path, extract_id="20261126T041700Z-00000000", source="broken")


def test_manifest_json_is_a_tabular_data_package(bundled):
    bundle, _ = bundled
    document = json.loads((bundle.path.parent / "manifest.json").read_text())
    assert document["profile"] == "tabular-data-package"
    assert [r["path"] for r in document["resources"]] == ["movies.csv", "movies.parquet"]
    assert [f["name"] for f in document["resources"][0]["schema"]["fields"]] == field_names()

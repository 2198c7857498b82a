"""The bundle the extractor lands: data files, manifest and zip, as the next stage will read them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.extractor.bundle import Bundle, write_bundle
from services.extractor.exceptions import SourceUnreadable
from shared.manifest import Manifest
from shared.schema import arrow_schema, field_names
from tests.factories import movies


def batch_of(rows: list[dict]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=arrow_schema())


@pytest.fixture
def bundled(tmp_path: Path) -> tuple[Bundle, list[dict]]:
    # GIVEN four awkward movies arriving in two batches
    rows = movies(4)
    # WHEN they are bundled
    batches = [batch_of(rows[:3]), batch_of(rows[3:])]
    bundle = write_bundle(batches, tmp_path / "bundle", extract_id="20261126T041700Z-3f9c2a1b", source="imdb")
    return bundle, rows


def member(bundle: Bundle, name: str) -> bytes:
    """A file of the bundle as the zip holds it (the CSV is never kept unzipped beside it)."""
    with zipfile.ZipFile(bundle.path) as archive:
        return archive.read(name)


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_manifest_vouches_for_each_file_with_its_bytes_hash_and_rows(bundled):
    bundle, rows = bundled
    # THEN every resource's size and sha256 are those of the file, and every row is counted
    for resource in bundle.manifest.resources:
        data = member(bundle, resource.path)
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
    # THEN the CSV reads back record by record, titles with commas and quotes intact, a line break a space
    # (a line of movies.csv is one record, for every stage and engine)
    header, *records = read_csv(member(bundle, "movies.csv"))
    assert header == field_names()
    by_title = {record[0]: dict(zip(header, record, strict=True)) for record in records}
    assert set(by_title) == {"Crouching Tiger, Hidden Dragon", 'The "Best" Movie', "Two Lines", "$"}
    best = by_title['The "Best" Movie']
    assert best["budget"] == "" and best["mpaa"] == ""
    assert best["comedy"] == "true" and best["action"] == "false"
    assert by_title["Crouching Tiger, Hidden Dragon"]["year"] == "2000"
    raw = member(bundle, "movies.csv").decode("utf-8")
    assert '"The ""Best"" Movie"' in raw and "NA" not in raw


def test_parquet_has_the_arrow_schema_and_the_same_rows(bundled):
    bundle, rows = bundled
    table = pq.read_table(io.BytesIO(member(bundle, "movies.parquet")))
    assert table.schema.equals(arrow_schema())
    one_line = [{**row, "title": row["title"].replace("\n", " ")} for row in rows]
    assert table.to_pylist() == one_line


def test_an_empty_source_gives_no_zip_and_a_manifest_of_zero_rows(tmp_path: Path):
    # GIVEN a source with no movies WHEN bundled
    bundle = write_bundle([], tmp_path, extract_id="20261126T041700Z-00000000", source="imdb")
    # THEN there is nothing to land: no zip, the CSV is just the header and the manifest says 0 rows
    assert bundle.path is None and bundle.rows == 0
    assert bundle.manifest.row_counts == {"extracted": 0}
    assert bundle.manifest.resource("movies-csv").rows == 0
    assert not list(tmp_path.glob("*.zip"))


def test_batches_without_a_title_or_year_are_refused_naming_the_fields(tmp_path: Path):
    # GIVEN a source whose rows have no field the movie key is made of
    batch = pa.record_batch({"name": ["x"], "released": [1999]})
    # WHEN bundled THEN the extract fails, naming what is missing and what the source has
    with pytest.raises(SourceUnreadable, match=r"title, year \(the source's fields: name, released\)"):
        write_bundle([batch], tmp_path, extract_id="20261126T041700Z-00000000", source="broken")


def test_manifest_json_is_a_tabular_data_package(bundled):
    bundle, _ = bundled
    document = json.loads(member(bundle, "manifest.json"))
    assert document["profile"] == "tabular-data-package"
    assert [r["path"] for r in document["resources"]] == ["movies.csv", "movies.parquet"]
    assert [f["name"] for f in document["resources"][0]["schema"]["fields"]] == field_names()

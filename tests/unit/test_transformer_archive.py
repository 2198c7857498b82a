"""The archive: parts named and counted, described in a manifest with roles, committed last and once."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from services.transformer import archive
from services.transformer.archive import (
    DirectoryTarget,
    archive_manifest,
    collect_parts,
    publish_archive,
    split_s3_uri,
)
from services.transformer.exceptions import ArchiveIncomplete
from shared.manifest import Manifest, file_digest
from shared.schema import CLEAN_MOVIE_FIELDS, REJECT_FIELDS, field_names

MOVIES_HEADER = ",".join(field_names(CLEAN_MOVIE_FIELDS))
REJECTS_HEADER = ",".join(field_names(REJECT_FIELDS))
IDENTITY = {"extract_id": "e1", "source": "imdb", "extracted_at": "2026-01-01T00:00:00+00:00"}


def padded(header: str):
    """A line given in its first columns, filled out with empty fields to the header's width."""
    width = len(header.split(","))

    def pad(line: str) -> str:
        (values,) = csv.reader(io.StringIO(line, newline=""))
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values + [""] * (width - len(values)))
        return buffer.getvalue().removesuffix("\n")

    return pad


def spark_output(directory: Path, movies: list[list[str]], rejects: list[str]) -> Path:
    """What Spark leaves: part files with generated names, plus its marker files."""
    for role, header, parts in (("movies", MOVIES_HEADER, movies), ("rejects", REJECTS_HEADER, [rejects])):
        (directory / role).mkdir(parents=True)
        (directory / role / "_SUCCESS").write_text("")
        for number, lines in enumerate(parts):
            part = directory / role / f"part-{number:05d}-3f2a-c000.csv"
            part.write_text("\n".join([header, *map(padded(header), lines)]) + "\n", encoding="utf-8")
    return directory


def test_parts_are_renamed_and_counted_by_csv_rows(tmp_path):
    # GIVEN a clean row whose quoted title spans two lines, and one reject
    output = spark_output(
        tmp_path, [['k1,"Two\nLines",1999', "k2,Plain,2000"]], ['e1,NOT_A_NUMBER,year,"x",{}']
    )
    # WHEN
    parts = collect_parts(output)
    # THEN
    assert [(p.role, p.path.relative_to(output).as_posix(), p.rows) for p in parts] == [
        ("movies", "movies/part-00000.csv", 2),
        ("rejects", "rejects/part-00000.csv", 1),
    ]


def test_the_manifest_describes_each_part_with_its_role_fields_and_hash(tmp_path):
    # GIVEN Spark wrote two movies parts
    output = spark_output(tmp_path, [["k1,A,1999"], ["k2,B,2000"]], [])
    parts = collect_parts(output)
    # WHEN
    counts = {"extracted": 2, "clean": 2, "rejected": 0, "duplicates": 0}
    manifest = archive_manifest(output, parts, **IDENTITY, row_counts=counts)
    # THEN
    raw = json.loads(manifest.to_json())
    assert raw["profile"] == "tabular-data-package" and raw["stage"] == "transform"
    assert raw["extracted_at"] == IDENTITY["extracted_at"] and raw["row_counts"] == counts
    assert [(r["name"], r["path"], r["role"], r["rows"]) for r in raw["resources"]] == [
        ("movies-00000", "movies/part-00000.csv", "movies", 1),
        ("movies-00001", "movies/part-00001.csv", "movies", 1),
        ("rejects", "rejects/part-00000.csv", "rejects", 0),
    ]
    assert [f["name"] for f in raw["resources"][0]["schema"]["fields"]] == field_names(CLEAN_MOVIE_FIELDS)
    assert [f["name"] for f in raw["resources"][2]["schema"]["fields"]] == field_names(REJECT_FIELDS)
    assert manifest.resources[0].hash == file_digest(output / "movies/part-00000.csv")[0]


def test_publishing_writes_parts_then_the_manifest_and_never_replaces_a_committed_one(tmp_path):
    # GIVEN
    output = spark_output(tmp_path / "spark", [["k1,A,1999"]], ["e1,MISSING_VALUE,title,title is missing,{}"])
    archive = tmp_path / "archive"
    counts = {"extracted": 3, "clean": 1, "rejected": 1, "duplicates": 1}
    # WHEN published, then published again by a later run with another manifest
    manifest = publish_archive(output, DirectoryTarget(archive), **IDENTITY, row_counts=counts)
    later = {**IDENTITY, "extracted_at": "2026-02-02T00:00:00+00:00"}
    publish_archive(output, DirectoryTarget(archive), **later, row_counts=counts)
    # THEN the first manifest stands, and it vouches for the files beside it
    committed = Manifest.from_json((archive / "manifest.json").read_text())
    assert committed == manifest
    for resource in committed.resources:
        assert file_digest(archive / resource.path) == (resource.hash, resource.bytes)


def test_a_manifest_is_never_written_for_parts_that_disagree_with_the_counts(tmp_path):
    # GIVEN parts with one clean row where the transform counted two
    output = spark_output(tmp_path / "spark", [["k1,A,1999"]], [])
    counts = {"extracted": 2, "clean": 2, "rejected": 0, "duplicates": 0}
    # WHEN / THEN
    with pytest.raises(ArchiveIncomplete, match="movies parts hold 1 rows"):
        publish_archive(output, DirectoryTarget(tmp_path / "archive"), **IDENTITY, row_counts=counts)
    # AND the parts that went up while they were counted are taken back
    assert [path for path in (tmp_path / "archive").rglob("*") if path.is_file()] == []


def test_the_manifest_counts_the_nulls_of_each_clean_column_over_every_part(tmp_path):
    # GIVEN two movies parts: a movie with no budget and no MPAA rating, and one with both
    names = field_names(CLEAN_MOVIE_FIELDS)

    def line(**values: str) -> str:
        return ",".join(values.get(name, "x") for name in names)

    output = spark_output(tmp_path, [[line(budget="", mpaa="")], [line(mpaa_original='""')]], [])
    counts = {"extracted": 2, "clean": 2, "rejected": 0, "duplicates": 0}
    # WHEN
    manifest = archive_manifest(output, collect_parts(output), **IDENTITY, row_counts=counts)
    # THEN every clean column is counted, an empty field being a null as the loader reads it
    assert manifest.null_counts == {**dict.fromkeys(names, 0), "budget": 1, "mpaa": 1, "mpaa_original": 1}


def test_s3_uris_split_into_bucket_and_key():
    assert split_s3_uri("s3://bucket/imdb/e1") == ("bucket", "imdb/e1")
    with pytest.raises(ValueError, match="s3://"):
        split_s3_uri("/local/path")


def test_a_value_longer_than_a_counting_block_is_counted_with_larger_blocks(tmp_path):
    # GIVEN a part whose rows are counted a block at a time, one of them holding a 3 MB value
    part = tmp_path / "movies" / "part-00000.csv"
    part.parent.mkdir()
    lines = ["title,mpaa", *(f"m{i},PG" for i in range(50_000)), f'"{"x" * (3 << 20)}",', '"",R']
    part.write_text("\n".join([*lines, *(f"n{i}," for i in range(50_000))]) + "\n")
    assert part.stat().st_size > archive.BLOCK_BYTES[0]

    # WHEN it is counted
    # THEN every row is counted once, and every empty field as a null
    assert archive._csv_rows(part) == (100_002, {"title": 1, "mpaa": 50_001})

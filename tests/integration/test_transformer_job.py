"""The Spark job on a local Spark: each reject reason, typing, dedupe, conservation, the real IMDb data."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from services.transformer.exceptions import InvalidHeader, RowCountMismatch
from services.transformer.glue_job import clean_movies, main, read_movies, transform
from shared.keys import movie_key, movie_key_sql
from shared.manifest import Manifest, file_digest
from shared.schema import CLEAN_MOVIE_FIELDS, REJECT_FIELDS, field_names

pytestmark = pytest.mark.integration

GOOD = {
    "title": "Good Movie",
    "year": "1999",
    "length": "100",
    "budget": "NA",
    "rating": "7.5",
    "votes": "1000",
    **{f"r{n}": "4.5" for n in range(1, 11)},
    "mpaa": "",
    **dict.fromkeys(("action", "animation", "comedy", "drama", "documentary", "romance", "short"), "0"),
}


def movie(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


def write_csv(path: Path, rows: list[dict[str, str] | str], header: list[str] | None = None) -> Path:
    """movies.csv with the record's header; a ``str`` row is written as the raw line it is."""
    header = header or field_names()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        if isinstance(row, str):
            buffer.write(row + "\n")
        else:
            writer.writerow([row.get(name, "") for name in header])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def cleanse(spark, tmp_path: Path, rows: list[dict[str, str] | str]):
    cleaned = clean_movies(read_movies(spark, str(write_csv(tmp_path / "movies.csv", rows))), "e-test")
    clean = [row.asDict() for row in cleaned.clean.collect()]
    rejects = [row.asDict() for row in cleaned.rejects.collect()]
    return cleaned, clean, rejects


def test_each_rule_rejects_with_its_reason_field_and_a_readable_detail(spark, tmp_path):
    # GIVEN one good row and one row breaking each kind of rule
    rows = [
        movie(title="Kept"),
        movie(title=""),
        movie(title="Bad Year", year="19x5"),
        movie(title="Half Minute", length="90.5"),
        movie(title="Too Good", rating="11"),
        movie(title="Negative Votes", votes="-3"),
        movie(title="Rated X", mpaa="X"),
        movie(title="Maybe Action", action="maybe"),
        movie(title="Not Rated At All", rating="NaN"),
    ]
    # WHEN
    _, clean, rejects = cleanse(spark, tmp_path, rows)
    # THEN
    assert [row["title"] for row in clean] == ["Kept"]
    found = {json.loads(r["record"])["title"]: (r["reason"], r["field"], r["detail"]) for r in rejects}
    assert found == {
        None: ("MISSING_VALUE", "title", "title is missing"),
        "Bad Year": ("NOT_A_NUMBER", "year", "year '19x5' is not a number"),
        "Half Minute": ("NOT_A_NUMBER", "length", "length '90.5' is not a whole number"),
        "Too Good": ("OUT_OF_RANGE", "rating", "rating '11' is above the maximum 10"),
        "Negative Votes": ("OUT_OF_RANGE", "votes", "votes '-3' is below the minimum 0"),
        "Rated X": ("NOT_ALLOWED", "mpaa", "mpaa 'X' is not one of G, PG, PG-13, R, NC-17"),
        "Maybe Action": ("NOT_ALLOWED", "action", "action 'maybe' is not one of 1, true, 0, false"),
        "Not Rated At All": ("NOT_A_NUMBER", "rating", "rating 'NaN' is not a number"),
    }
    assert {r["extract_id"] for r in rejects} == {"e-test"}
    assert list(rejects[0]) == field_names(REJECT_FIELDS)


def test_a_row_is_rejected_for_its_first_failing_field_in_record_order(spark, tmp_path):
    # GIVEN a row whose year, rating and mpaa are all wrong
    rows = [movie(title="Many Faults", year="later", rating="99", mpaa="Z")]
    # WHEN
    _, _, rejects = cleanse(spark, tmp_path, rows)
    # THEN the year is reported, and the record keeps every value as it arrived
    assert [(r["reason"], r["field"]) for r in rejects] == [("NOT_A_NUMBER", "year")]
    record = json.loads(rejects[0]["record"])
    assert record["rating"] == "99" and record["mpaa"] == "Z"


def test_malformed_rows_become_rejects_instead_of_failing_or_vanishing(spark, tmp_path):
    # GIVEN a row with too few columns, one with too many, and one with an unbalanced quote
    good_line = ",".join(GOOD[name] for name in field_names())
    rows = [
        movie(title="Fine"),
        "Short Row,1999,100",
        good_line + ",surplus",
        '"Unbalanced,1999,100,NA,7.5,1000,4.5,4.5,4.5,4.5,4.5,4.5,4.5,4.5,4.5,4.5,,0,0,0,0,0,0,0',
        movie(title="Also Fine"),
    ]
    # WHEN
    cleaned, clean, rejects = cleanse(spark, tmp_path, rows)
    # THEN
    assert [row["title"] for row in clean] == ["Fine", "Also Fine"]
    assert [r["reason"] for r in rejects] == ["MALFORMED_ROW"] * 3
    assert all(r["field"] is None for r in rejects)
    assert json.loads(rejects[0]["record"])["_line"] == "Short Row,1999,100"
    assert cleaned.counts().extracted == 5


def test_values_are_trimmed_typed_and_na_becomes_null(spark, tmp_path):
    # GIVEN padded text, NA, numbers in other spellings and both spellings of the genre flags
    rows = [
        movie(
            title="  Padded Title ",
            year=" 1999 ",
            budget="NA",
            length="120.0",
            votes="1e+03",
            mpaa=" PG-13 ",
            action="true",
            comedy="1",
            drama="FALSE",
            short="",
        ),
        movie(title="Known Budget", budget="1500000"),
    ]
    # WHEN
    _, clean, rejects = cleanse(spark, tmp_path, rows)
    # THEN
    assert rejects == []
    padded, known = clean
    assert padded["title"] == "Padded Title" and padded["year"] == 1999 and padded["length"] == 120
    assert padded["budget"] is None and known["budget"] == 1_500_000
    assert padded["votes"] == 1000 and padded["rating"] == 7.5 and padded["mpaa"] == "PG-13"
    assert (padded["action"], padded["comedy"], padded["drama"], padded["short"]) == (True, True, False, None)
    assert list(padded) == field_names(CLEAN_MOVIE_FIELDS)
    assert padded["movie_key"] == movie_key("Padded Title", 1999) and padded["extract_id"] == "e-test"


def test_duplicates_keep_the_most_voted_row_per_movie_key_and_are_counted(spark, tmp_path):
    # GIVEN three spellings of one movie (same key) and the same title in another year
    rows = [
        movie(title="Foo", year="2000", votes="10"),
        movie(title="foo!", year="2000", votes="50"),
        movie(title="FOO", year="2000", votes="5"),
        movie(title="Foo", year="2001", votes="1"),
        movie(title="", year="2000"),
    ]
    # WHEN
    cleaned, clean, _ = cleanse(spark, tmp_path, rows)
    counts = cleaned.counts()
    # THEN
    assert sorted((row["title"], row["year"]) for row in clean) == [("Foo", 2001), ("foo!", 2000)]
    assert (counts.extracted, counts.clean, counts.rejected, counts.duplicates) == (5, 2, 1, 2)
    assert counts.conserved


def test_movie_key_from_spark_equals_the_python_rule(spark):
    # GIVEN titles that stress normalisation
    titles = [
        "$",
        "Foo, The",
        "foo the",
        "Amélie",
        "Ça va!",
        "MiXeD CaSe",
        "Don't Look Now",
        "Se7en",
        "Ærø — a dash",
        "東京物語",
        "under_score",
        "  spaced   out  ",
        "$1000 a Touchdown",
        "Naïve... (1999)",
    ]
    frame = spark.createDataFrame([(title, 1999) for title in titles], "title string, year bigint")
    # WHEN
    from pyspark.sql import functions as F

    keys = [row[0] for row in frame.select(F.expr(movie_key_sql())).collect()]
    # THEN
    assert keys == [movie_key(title, 1999) for title in titles]
    assert movie_key("Foo, The", 1999) == movie_key("foo the", 1999)


def test_header_order_and_extra_columns_do_not_shift_values(spark, tmp_path):
    # GIVEN a header in another order, capitalised, with an unnamed index column first (as R writes it)
    header = ["", *reversed(field_names())]
    path = write_csv(tmp_path / "movies.csv", [{"": "1", **movie(title="Reordered")}], header=header)
    path.write_text(path.read_text().replace("action", "Action", 1))
    # WHEN
    clean = clean_movies(read_movies(spark, str(path)), "e-test").clean.collect()
    # THEN
    assert [(row["title"], row["year"], row["rating"]) for row in clean] == [("Reordered", 1999, 7.5)]


def test_a_header_missing_a_column_is_refused_naming_it(spark, tmp_path):
    # GIVEN
    header = [name for name in field_names() if name != "year"]
    path = write_csv(tmp_path / "movies.csv", [movie()], header=header)
    # WHEN / THEN
    with pytest.raises(InvalidHeader, match="year"):
        read_movies(spark, str(path))


def test_written_archive_files_are_the_csv_the_loader_expects(spark, tmp_path):
    # GIVEN a title with a comma and quotes, an unknown budget, and no rejects
    rows = [movie(title='Foo, "The"', action="1"), movie(title="Plain")]
    path = write_csv(tmp_path / "movies.csv", rows)
    # WHEN written twice
    outputs = []
    for attempt in ("one", "two"):
        counts = transform(
            spark,
            input_path=str(path),
            extract_id="e-test",
            expected_rows=2,
            output=(tmp_path / attempt).as_uri(),
        )
        outputs.append(tmp_path / attempt)
    # THEN
    assert (counts.clean, counts.rejected) == (2, 0)
    movies_part = next((outputs[0] / "movies").glob("part-*.csv"))
    lines = movies_part.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(field_names(CLEAN_MOVIE_FIELDS))
    assert ',"Foo, ""The""",1999,100,,7.5,1000,' in lines[1]
    assert lines[1].endswith(",,true,false,false,false,false,false,false,e-test")
    rejects_part = next((outputs[0] / "rejects").glob("part-*.csv"))
    assert rejects_part.read_text().splitlines() == [",".join(field_names(REJECT_FIELDS))]
    second = next((outputs[1] / "movies").glob("part-*.csv"))
    assert file_digest(movies_part) == file_digest(second)  # the same input gives the same bytes


def test_a_row_count_other_than_the_manifests_is_refused(spark, tmp_path):
    # GIVEN a file of two rows, vouched for as three
    path = write_csv(tmp_path / "movies.csv", [movie(title="A"), movie(title="B")])
    # WHEN / THEN
    with pytest.raises(RowCountMismatch, match="2 rows"):
        transform(
            spark, input_path=str(path), extract_id="e", expected_rows=3, output=(tmp_path / "o").as_uri()
        )


def test_the_job_script_runs_under_plain_pyspark_and_writes_the_archive(spark, tmp_path):
    # GIVEN the arguments a Glue run gets, pointing at local folders
    path = write_csv(
        tmp_path / "movies.csv", [movie(title="A"), movie(title="A"), movie(title="B", year="x")]
    )
    archive = tmp_path / "archive"
    argv = ["glue_job.py", "--JOB_NAME", "moviepipe-transform", "--input_path", str(path)]
    argv += ["--output_path", str(archive), "--extract_id", "e-local", "--source", "imdb"]
    argv += ["--extracted_at", "2026-01-01T00:00:00+00:00", "--expected_rows", "3"]
    # WHEN
    main(argv)
    # THEN
    manifest = Manifest.from_json((archive / "manifest.json").read_text())
    assert manifest.row_counts == {"extracted": 3, "clean": 1, "rejected": 1, "duplicates": 1}
    assert manifest.stage == "transform" and manifest.extracted_at == "2026-01-01T00:00:00+00:00"
    assert [(r.name, r.path, r.rows) for r in manifest.resources] == [
        ("movies", "movies/part-00000.csv", 1),
        ("rejects", "rejects/part-00000.csv", 1),
    ]
    for resource in manifest.resources:
        assert file_digest(archive / resource.path) == (resource.hash, resource.bytes)


def test_the_real_imdb_data_is_conserved_row_for_row(spark, imdb_movies_csv, tmp_path):
    # GIVEN the bundled 58,788 IMDb movies
    # WHEN
    cleaned = clean_movies(read_movies(spark, str(imdb_movies_csv)), "e-imdb")
    counts = cleaned.write((tmp_path / "out").as_uri())
    # THEN
    assert counts.extracted == 58_788
    assert counts.extracted == counts.clean + counts.rejected + counts.duplicates
    assert counts.clean > 58_000
    assert cleaned.counts() == counts

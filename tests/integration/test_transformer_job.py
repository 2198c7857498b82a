"""The Spark job on a local Spark: reading movies.csv, the movie key in Spark SQL, the job script.

The rules themselves are tested on both engines in ``test_transformer_rules.py``.
"""

from __future__ import annotations

import duckdb
import pytest

from services.transformer.counts import TransformCounts
from services.transformer.exceptions import InvalidHeader
from services.transformer.glue_job import clean_movies, main, read_movies
from services.transformer.spark_conf import JVM_OPTIONS
from shared.keys import movie_key, movie_key_sql
from shared.manifest import Manifest, file_digest
from shared.schema import field_names
from shared.transform import to_duckdb
from tests.integration.movies_rows import movie, write_csv

pytestmark = pytest.mark.integration


def test_the_counts_of_a_pass_of_their_own_equal_those_observed_while_writing(spark, tmp_path):
    # GIVEN two spellings of one movie, a reject and another movie
    rows = [movie(title="Foo"), movie(title="FOO"), movie(title="", year="2000"), movie(title="Bar")]
    cleaned = clean_movies(read_movies(spark, str(write_csv(tmp_path / "movies.csv", rows))), "e-test")
    # WHEN written, and counted again
    written = cleaned.write((tmp_path / "out").as_uri())
    # THEN
    assert cleaned.counts() == written == TransformCounts(extracted=4, clean=2, rejected=1, duplicates=1)


def test_the_local_sessions_jvm_compiles_the_transforms_large_generated_methods(spark):
    # GIVEN the warm local session (local_spark_session), WHEN its JVM's own arguments are read
    arguments = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    # THEN HotSpot was told to compile methods over 8,000 bytes, which the generated checks are
    assert JVM_OPTIONS == "-XX:-DontCompileHugeMethods" and JVM_OPTIONS in arguments


def test_movie_key_from_spark_and_duckdb_equals_the_python_rule(spark):
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
    in_duckdb = duckdb.execute(
        f"SELECT {to_duckdb(movie_key_sql())} FROM (SELECT unnest($titles) AS title, 1999 AS year)",
        {"titles": titles},
    ).fetchall()
    # THEN
    assert keys == [movie_key(title, 1999) for title in titles]
    assert [key for (key,) in in_duckdb] == keys
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


def test_the_job_script_runs_under_plain_pyspark_and_writes_the_archive(spark, tmp_path):
    # GIVEN the arguments a Glue run gets, pointing at local folders
    path = write_csv(
        tmp_path / "movies.csv", [movie(title="A"), movie(title="A"), movie(title="B", year="x")]
    )
    archive = tmp_path / "archive"
    argv = ["glue_job.py", "--JOB_NAME", "moviepipe-transform", "--input_path", str(path)]
    argv += ["--output_path", str(archive), "--extract_id", "e-local", "--source", "imdb"]
    argv += ["--extracted_at", "2026-01-01T00:00:00+00:00", "--expected_rows", "3", "--year_horizon", "3"]
    # WHEN
    main(argv)
    # THEN
    manifest = Manifest.from_json((archive / "manifest.json").read_text())
    assert manifest.row_counts == {"extracted": 3, "clean": 1, "rejected": 1, "duplicates": 1}
    assert manifest.stage == "transform" and manifest.extracted_at == "2026-01-01T00:00:00+00:00"
    assert manifest.null_counts["budget"] == 1 and manifest.null_counts["title"] == 0
    assert [(r.name, r.path, r.rows) for r in manifest.resources] == [
        ("movies", "movies/part-00000.csv", 1),
        ("rejects", "rejects/part-00000.csv", 1),
    ]
    for resource in manifest.resources:
        assert file_digest(archive / resource.path) == (resource.hash, resource.bytes)

"""Choosing and driving a runner: Glue arguments, polling and failures, settings, processed locations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.transformer.exceptions import GlueJobFailed, ManifestUnreadable, RowCountMismatch
from services.transformer.processed import ProcessedExtract, movies_resource
from services.transformer.runner import (
    AutoRunner,
    DuckDBRunner,
    GlueRunner,
    LocalSparkRunner,
    TransformJob,
    glue_arguments,
    glue_run_error,
    make_runner,
)
from services.transformer.settings import TransformerSettings, transformer_settings
from shared.manifest import Resource, new_manifest
from shared.settings import Settings

JOB = TransformJob(
    extract_id="e1",
    source="imdb",
    extracted_at="2026-01-01T00:00:00+00:00",
    extracted=58788,
    input_bucket="p-processed",
    input_key="imdb/e1/movies.csv",
    input_hash="sha256:00",
    input_bytes=10,
    archive_bucket="p-archive",
)


def test_glue_gets_the_job_scripts_arguments():
    assert glue_arguments(JOB) == {
        "--input_path": "s3://p-processed/imdb/e1/movies.csv",
        "--output_path": "s3://p-archive/imdb/e1",
        "--extract_id": "e1",
        "--source": "imdb",
        "--extracted_at": "2026-01-01T00:00:00+00:00",
        "--expected_rows": "58788",
        "--extract_kind": "full",
        "--year_horizon": "3",
        "--min_votes": "1000",
        "--mean_rating": "batch",
    }
    assert glue_arguments(JOB, year_horizon=5)["--year_horizon"] == "5"
    configured = glue_arguments(JOB, min_votes=25, mean_rating=6.9)
    assert (configured["--min_votes"], configured["--mean_rating"]) == ("25", "6.9")


def test_a_failed_run_that_reported_bad_input_becomes_that_error_again():
    # GIVEN the message Glue records when the job raised RowCountMismatch
    message = "RowCountMismatch: ROW_COUNT_MISMATCH: movies.csv holds 2 rows as the transform reads it"
    # WHEN
    error = glue_run_error("job", "jr_1", "FAILED", message)
    # THEN it is quarantined like a local run's, not retried
    assert isinstance(error, RowCountMismatch)
    assert error.message == "movies.csv holds 2 rows as the transform reads it"


def test_any_other_failed_run_is_a_glue_failure_naming_the_run():
    error = glue_run_error("job", "jr_1", "TIMEOUT", "")
    assert isinstance(error, GlueJobFailed) and "jr_1 ended TIMEOUT" in str(error)


@pytest.mark.parametrize(
    ("setting", "runner"),
    [("glue", GlueRunner), ("local", LocalSparkRunner), ("duckdb", DuckDBRunner), ("auto", AutoRunner)],
)
def test_the_runner_is_chosen_by_setting(monkeypatch, setting, runner):
    monkeypatch.setenv("MOVIEPIPE_TRANSFORM_RUNNER", setting)
    assert isinstance(make_runner(transformer_settings()), runner)


def test_auto_is_the_default_and_sends_batches_under_the_limit_to_duckdb_and_larger_ones_to_spark(
    monkeypatch,
):
    # GIVEN no runner chosen, and a limit of 1,000 rows
    monkeypatch.delenv("MOVIEPIPE_TRANSFORM_RUNNER", raising=False)
    monkeypatch.setenv("MOVIEPIPE_TRANSFORM_DUCKDB_MAX_ROWS", "1000")
    auto = make_runner(transformer_settings())
    # WHEN / THEN
    assert isinstance(auto, AutoRunner)
    assert isinstance(auto.runner_for(replace(JOB, extracted=999)), DuckDBRunner)
    assert isinstance(auto.runner_for(replace(JOB, extracted=1000)), LocalSparkRunner)


def test_the_default_limit_is_a_million_rows_and_spark_is_not_started_by_choosing():
    # GIVEN the default settings
    auto = AutoRunner(TransformerSettings())
    # WHEN the IMDb-sized and the million-row batch are placed
    small, large = auto.runner_for(JOB), auto.runner_for(replace(JOB, extracted=1_000_000))
    # THEN DuckDB takes the first, Spark the second, and no Spark session exists yet
    assert (small, large) == (auto.duckdb, auto.spark)
    assert auto.spark._spark is None


def test_shared_settings_become_transformer_settings_keeping_their_values(monkeypatch):
    # GIVEN shared settings for a test's resources, and the runner chosen in the environment
    monkeypatch.setenv("MOVIEPIPE_TRANSFORM_RUNNER", "glue")
    shared = Settings(prefix="tabc", aws_endpoint_url="http://127.0.0.1:1")
    # WHEN
    own = transformer_settings(shared)
    # THEN
    assert (own.prefix, own.aws_endpoint_url, own.transform_runner) == ("tabc", "http://127.0.0.1:1", "glue")
    assert own.glue_job == "tabc-transform"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("imdb/e1/manifest.json", ProcessedExtract("b", "imdb", "e1")),
        ("imdb/e1/movies.csv", None),
        ("manifest.json", None),
        ("a/b/c/manifest.json", None),
    ],
)
def test_only_an_extracts_manifest_key_names_a_processed_extract(key, expected):
    assert ProcessedExtract.from_manifest_key("b", key) == expected


def test_the_manifest_must_vouch_for_a_csv_file():
    # GIVEN a manifest listing only the Parquet file
    parquet = Resource(
        name="movies-parquet", path="movies.parquet", format="parquet", bytes=1, hash="", rows=1, schema={}
    )
    manifest = new_manifest(
        extract_id="e1", source="imdb", stage="unzip", row_counts={"extracted": 1}, resources=[parquet]
    )
    # WHEN / THEN
    with pytest.raises(ManifestUnreadable, match="no CSV resource"):
        movies_resource(manifest)


def test_the_glue_package_is_the_same_bytes_for_the_same_code_and_holds_the_job():
    from services.transformer.glue_assets import build_package, package_files

    first, version = build_package()
    again, same = build_package()
    assert first == again and version == same and len(version) == 16
    files = {path.as_posix() for path in package_files()}
    assert {"services/__init__.py", "services/transformer/glue_job.py", "shared/schema.py"} <= files
    assert not any("__pycache__" in name or name.startswith("tests/") for name in files)


def test_auto_can_send_large_batches_to_glue(monkeypatch):
    # GIVEN auto, with Spark for large batches on AWS Glue
    monkeypatch.setenv("MOVIEPIPE_TRANSFORM_LARGE_RUNNER", "glue")
    auto = make_runner(transformer_settings())
    # WHEN / THEN small batches stay in process on DuckDB, large ones become Glue job runs
    assert isinstance(auto.runner_for(JOB), DuckDBRunner)
    assert isinstance(auto.runner_for(replace(JOB, extracted=1_000_000)), GlueRunner)


def test_every_service_but_local_spark_runs_without_pyspark():
    """The ``moviepipe:app`` image has no pyspark: every service imports without it, the transformer too
    when Spark work goes to Glue or everything to DuckDB; asked for local Spark, it refuses to start."""
    import subprocess
    import sys

    code = """
import sys
sys.modules["pyspark"] = None  # as if not installed: importing it raises ImportError
sys.modules["py4j"] = None
import services.extractor.app, services.unzipper.app, services.loader.app, services.dashboard.app
import services.transformer.app
from services.transformer.runner import make_runner
from services.transformer.settings import TransformerSettings
make_runner(TransformerSettings(transform_runner="duckdb"))
try:
    make_runner(TransformerSettings(transform_large_runner="local"))
except RuntimeError as exc:
    print(exc)
"""
    environment = {"MOVIEPIPE_TRANSFORM_LARGE_RUNNER": "glue", "PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "the local Spark runner needs pyspark, which is not installed here" in result.stdout

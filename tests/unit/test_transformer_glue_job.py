"""The Glue job script's pure parts: its arguments (Glue's parser or argparse) and the header check."""

from __future__ import annotations

import sys
import types

import pytest

from services.transformer.counts import verified
from services.transformer.exceptions import CountsNotConserved, InvalidHeader, RowCountMismatch
from services.transformer.glue_job import TransformCounts, header_columns, parse_args
from shared.schema import field_names

ARGV = [
    "glue_job.py",
    "--input_path",
    "s3://p-processed/imdb/e1/movies.csv",
    "--output_path",
    "s3://p-archive/imdb/e1/",
    "--extract_id",
    "e1",
    "--source",
    "imdb",
    "--extracted_at",
    "2026-01-01T00:00:00+00:00",
    "--expected_rows",
    "58788",
]


def test_arguments_parse_without_glue_installed():
    # GIVEN the arguments as Glue passes them, with Glue's own extras
    argv = [*ARGV, "--JOB_NAME", "moviepipe-transform", "--job-bookmark-option", "job-bookmark-disable"]
    # WHEN
    args = parse_args(argv)
    # THEN
    assert args.input_path == "s3://p-processed/imdb/e1/movies.csv"
    assert args.output_path == "s3://p-archive/imdb/e1"
    assert (args.extract_id, args.source, args.expected_rows) == ("e1", "imdb", 58788)


def test_a_missing_argument_is_refused():
    # GIVEN arguments without --extract_id
    argv = [arg for arg in ARGV if arg not in ("--extract_id", "e1")]
    # WHEN / THEN
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_glues_own_parser_is_used_when_present(monkeypatch):
    # GIVEN an awsglue package (as in a Glue run) whose parser records what it was asked for
    asked = {}

    def get_resolved_options(argv, names):
        asked["names"] = names
        return {name: argv[argv.index(f"--{name}") + 1] for name in names}

    awsglue = types.ModuleType("awsglue")
    utils = types.ModuleType("awsglue.utils")
    utils.getResolvedOptions = get_resolved_options
    monkeypatch.setitem(sys.modules, "awsglue", awsglue)
    monkeypatch.setitem(sys.modules, "awsglue.utils", utils)
    # WHEN
    args = parse_args([*ARGV, "--JOB_NAME", "moviepipe-transform"])
    # THEN
    assert "JOB_NAME" in asked["names"] and "expected_rows" in asked["names"]
    assert args.extract_id == "e1" and args.extract_kind == "full"


def test_the_extract_kind_is_passed_on_and_defaults_to_full():
    # GIVEN a run submitted with --extract_kind, and one without
    incremental = parse_args([*ARGV, "--extract_kind", "incremental"])
    older = parse_args(ARGV)
    # THEN the first is incremental, the second full
    assert (incremental.extract_kind, older.extract_kind) == ("incremental", "full")


def test_the_weighted_ratings_settings_are_passed_on_and_default_to_the_batch_mean():
    # GIVEN a run submitted with the weighted rating's settings, one asking for the batch mean, one older
    configured = parse_args([*ARGV, "--min_votes", "250", "--mean_rating", "6.5"])
    batch = parse_args([*ARGV, "--min_votes", "250", "--mean_rating", "batch"])
    older = parse_args(ARGV)
    # THEN
    assert (configured.min_votes, configured.mean_rating) == (250, 6.5)
    assert (batch.min_votes, batch.mean_rating) == (250, None)
    assert (older.min_votes, older.mean_rating) == (1000, None)


def test_header_columns_follow_the_file_and_ignore_case_spaces_and_bom():
    # GIVEN R's export: an unnamed index column, capitalised genres, a byte-order mark
    line = '\ufeff"",' + ",".join(name.capitalize() for name in field_names()) + " "
    # WHEN
    columns = header_columns(line)
    # THEN
    assert columns == ["_extra_0", *field_names()]


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        (None, "no header"),
        ("", "no header"),
        (",".join(name for name in field_names() if name not in ("year", "mpaa")), "year, mpaa"),
        (",".join([*field_names(), "title"]), "repeats column(s) title"),
    ],
    ids=["no-file", "empty", "missing-columns", "repeated-column"],
)
def test_a_header_that_cannot_be_read_names_what_is_wrong(line, complaint):
    with pytest.raises(InvalidHeader, match=complaint.replace("(", r"\(").replace(")", r"\)")) as raised:
        header_columns(line)
    assert raised.value.code == "INVALID_HEADER"


def test_counts_are_conserved_only_when_every_row_is_accounted_for():
    assert TransformCounts(extracted=10, clean=7, rejected=2, duplicates=1).conserved
    assert not TransformCounts(extracted=10, clean=7, rejected=2, duplicates=0).conserved
    counts = {"extracted": 3, "clean": 1, "rejected": 1, "duplicates": 1}
    assert TransformCounts.from_dict(counts).as_dict() == counts


def test_counts_that_do_not_add_up_fail_loudly_and_a_wrong_row_count_is_refused():
    # GIVEN counts that lose a row, and counts of a file shorter than its manifest says
    lost = TransformCounts(extracted=10, clean=7, rejected=2, duplicates=0)
    short = TransformCounts(extracted=9, clean=7, rejected=2, duplicates=0)
    # WHEN / THEN
    with pytest.raises(
        CountsNotConserved, match="10 rows read but 7 clean \\+ 2 rejected \\+ 0 duplicates = 9"
    ):
        verified(lost, extract_id="e1", expected_rows=10)
    with pytest.raises(RowCountMismatch, match="holds 9 rows"):
        verified(short, extract_id="e1", expected_rows=10)
    assert verified(short, extract_id="e1", expected_rows=9) is short

"""The Spark job that cleanses one extract: read ``movies.csv``, type and check every row, dedupe, write.

It runs unchanged as an AWS Glue job (``getResolvedOptions`` arguments, Glue's session, shipped with
``shared`` and ``services`` as ``--extra-py-files``) and under plain pyspark, where the same arguments
are parsed with argparse::

    python -m services.transformer.glue_job --input_path DIR/movies.csv --output_path OUT \\
        --extract_id ID --source imdb --extracted_at 2026-01-01T00:00:00+00:00 --expected_rows 58788

The cleansing itself is ``clean_movies``: the SQL that ``shared.transform`` generates from the field
definitions of ``shared.schema``, run through Spark SQL. The warm local runner calls it on its
long-lived session, ``main`` calls it in a Glue run; the DuckDB engine runs the same SQL.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from services.transformer.archive import (
    DirectoryTarget,
    S3Target,
    delete_prefix,
    download_prefix,
    publish_archive,
    split_s3_uri,
)
from services.transformer.counts import TransformCounts, verified
from services.transformer.movies_csv import header_columns
from services.transformer.spark_conf import GLUE_CONF_ARGUMENT, LAUNCH_CONF, SPARK_CONF
from shared.aws import DOWNLOADS
from shared.manifest import Manifest
from shared.schema import MOVIE_FIELDS, Field, field_names, spark_schema
from shared.transform import (
    CORRUPT_RECORD,
    COUNTS,
    DEFAULT_MIN_VOTES,
    DEFAULT_YEAR_HORIZON,
    ROW,
    BatchRules,
    checked_query,
    clean_query,
    ranked_query,
    rejects_query,
)

__all__ = [
    "GLUE_CONF_ARGUMENT",
    "LAUNCH_CONF",
    "SPARK_CONF",
    "CleanedMovies",
    "JobArguments",
    "TransformCounts",
    "clean_movies",
    "header_columns",
    "main",
]

JOB_ARGUMENTS = ("input_path", "output_path", "extract_id", "source", "extracted_at", "expected_rows")
"""The job's arguments, by the names Glue passes them (``--input_path`` …) and argparse parses them."""
OPTIONAL_ARGUMENTS = {
    "extract_kind": "full",
    "s3_io": "auto",
    "year_horizon": str(DEFAULT_YEAR_HORIZON),
    "min_votes": str(DEFAULT_MIN_VOTES),
    "mean_rating": "batch",
}
"""Arguments a caller may leave out, with their defaults (a run submitted by an older transformer).
``mean_rating``: ``C`` of the weighted rating, a number, or ``batch`` for the batch's own mean."""
CHOICES = {
    "extract_kind": ("full", "incremental"),
    "s3_io": ("auto", "spark", "boto3"),
    "year_horizon": None,
    "min_votes": None,
    "mean_rating": None,
}
"""``s3_io``: who reads and writes ``s3://`` paths. ``spark``: the executors (Glue's S3 connector);
``boto3``: the driver stages the input in and the archive out (plain pyspark, which has no S3
connector, or a small run); ``auto``: ``spark`` inside Glue, ``boto3`` elsewhere."""

CSV_READ_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "encoding": "UTF-8", "multiLine": "false"}
CSV_WRITE_OPTIONS = {
    "header": "true",
    "quote": '"',
    "escape": '"',
    "encoding": "UTF-8",
    "nullValue": "",
    "lineSep": "\n",
    # Spark trims values on write by default; the archive keeps them exactly as cleansed.
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}


# -- arguments and session ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobArguments:
    """What one job run transforms and where it writes."""

    input_path: str
    output_path: str
    extract_id: str
    source: str
    extracted_at: str
    expected_rows: int
    extract_kind: str = "full"
    s3_io: str = "auto"
    year_horizon: int = DEFAULT_YEAR_HORIZON
    min_votes: int = DEFAULT_MIN_VOTES
    mean_rating: float | None = None


def parse_args(argv: Sequence[str]) -> JobArguments:
    """The job's arguments from ``argv`` (``sys.argv`` shape), with Glue's parser when Glue's is present."""
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        getResolvedOptions = None

    if getResolvedOptions is not None:
        present = [name for name in ("JOB_NAME", *OPTIONAL_ARGUMENTS) if f"--{name}" in argv]
        options: dict[str, Any] = {
            **OPTIONAL_ARGUMENTS,
            **getResolvedOptions(list(argv), [*JOB_ARGUMENTS, *present]),
        }
    else:
        parser = argparse.ArgumentParser(prog="glue_job", description="Cleanse one extract's movies.csv.")
        parser.add_argument("--JOB_NAME", default="moviepipe-transform")
        for name in JOB_ARGUMENTS:
            parser.add_argument(f"--{name}", required=True)
        for name, default in OPTIONAL_ARGUMENTS.items():
            parser.add_argument(f"--{name}", default=default, choices=CHOICES[name])
        # Glue adds arguments of its own (--job-bookmark-option, --TempDir …); they are not ours to refuse.
        options = vars(parser.parse_known_args(list(argv[1:]))[0])
    return JobArguments(
        input_path=options["input_path"],
        output_path=options["output_path"].rstrip("/"),
        extract_id=options["extract_id"],
        source=options["source"],
        extracted_at=options["extracted_at"],
        expected_rows=int(options["expected_rows"]),
        extract_kind=options["extract_kind"],
        s3_io=options["s3_io"],
        year_horizon=int(options["year_horizon"]),
        min_votes=int(options["min_votes"]),
        mean_rating=None if options["mean_rating"] in ("", "batch") else float(options["mean_rating"]),
    )


def job_session() -> tuple[SparkSession, bool]:
    """Glue's session in a Glue run, otherwise the active (or a new) plain Spark session; whether Glue's."""
    try:
        from awsglue.context import GlueContext
        from pyspark.context import SparkContext

        spark, in_glue = GlueContext(SparkContext.getOrCreate()).spark_session, True
    except Exception:  # awsglue missing, or its Python side without Glue's jars
        builder = SparkSession.builder.appName("moviepipe-transform")
        for key, value in LAUNCH_CONF.items():
            builder = builder.config(key, value)
        spark, in_glue = builder.getOrCreate(), False
    for key, value in SPARK_CONF.items():
        spark.conf.set(key, value)
    return spark, in_glue


# -- reading --------------------------------------------------------------------------------------


def read_movies(spark: SparkSession, path: str) -> DataFrame:
    """``movies.csv`` untyped: one string column per record field, plus ``_corrupt_record`` for bad rows.

    The schema follows the file's own header order, so reordered or extra columns do not shift values.
    A row with the wrong number of columns or unbalanced quotes keeps its raw line in ``_corrupt_record``.
    """
    first = spark.read.text(path).first()
    columns = header_columns(first[0] if first else None)
    fields = {field.name: field for field in MOVIE_FIELDS}
    as_read = tuple(fields.get(name) or Field(name, "string", "not part of the record") for name in columns)
    schema = spark_schema(as_read, as_strings=True).add(CORRUPT_RECORD, T.StringType(), True)
    return (
        spark.read.options(**CSV_READ_OPTIONS)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .schema(schema)
        .csv(path)
        .select(*field_names(), CORRUPT_RECORD)
    )


# -- cleansing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanedMovies:
    """The cleansed extract, still lazy: the rules of ``shared.transform`` run as Spark SQL."""

    spark: SparkSession
    checked: DataFrame
    """Every row typed, with its first failure if it has one (``shared.transform.checked_query``)."""
    rules: BatchRules

    @property
    def clean(self) -> DataFrame:
        """Valid rows, one per movie key, in the columns of ``CLEAN_MOVIE_FIELDS``, in input order."""
        return self._clean_rows(self._ranked()).orderBy(ROW).drop(ROW)

    @property
    def rejects(self) -> DataFrame:
        """Refused rows in the columns of ``REJECT_FIELDS``, in input order."""
        return self._reject_rows().orderBy(ROW).drop(ROW)

    def counts(self) -> TransformCounts:
        """Count every kind of row in a pass of its own."""
        return _counts(self._ranked().selectExpr(*_aliased(COUNTS)).first().asDict())

    def write(self, directory: str) -> TransformCounts:
        """Write ``movies/`` and ``rejects/`` under ``directory`` (any path Spark writes), one CSV part each.

        Rows keep their order in ``movies.csv``, so the same input always gives the same bytes. The counts
        are observed while the clean rows are written, which saves a pass over the data; when they say no
        row was refused, the rejects file is written from no rows rather than by checking every row again.
        """
        # Observations of one session are matched by name: a unique one keeps concurrent runs apart.
        observed = Observation(f"transform_counts_{uuid.uuid4().hex}")
        ranked = self._ranked().observe(observed, *(F.expr(sql) for sql in _aliased(COUNTS)))
        # The batch's mean rating is a window over the whole batch, which already holds it in one partition.
        _write_csv(self._clean_rows(ranked), f"{directory}/movies", gathered=self.rules.mean_rating is None)
        counts = _counts(observed.get)
        rejects = self._reject_rows()
        if not counts.rejected:
            rejects = self.spark.createDataFrame([], rejects.schema)
        _write_csv(rejects, f"{directory}/rejects")
        return counts

    def _ranked(self) -> DataFrame:
        return self._query(ranked_query, self.checked)

    def _clean_rows(self, ranked: DataFrame) -> DataFrame:
        return self._query(lambda view: clean_query(view, self.rules), ranked)

    def _reject_rows(self) -> DataFrame:
        return self._query(lambda view: rejects_query(view, self.rules.extract_id), self.checked)

    def _query(self, query, frame: DataFrame) -> DataFrame:
        return _run_sql(self.spark, query, frame)


def _write_csv(frame: DataFrame, path: str, *, gathered: bool = False) -> None:
    """``frame`` as one CSV part at ``path``, in input order (``_row``), without ``_row``.

    One partition after the heavy work, not before it: ``repartition`` keeps the work before it parallel.
    A frame ``gathered`` in one partition already (by a whole-batch window) is only coalesced, which
    spares shuffling all of it a second time.
    """
    single = frame.coalesce(1) if gathered else frame.repartition(1)
    (
        single.sortWithinPartitions(ROW)
        .drop(ROW)
        .write.mode("overwrite")
        .options(**CSV_WRITE_OPTIONS)
        .csv(path)
    )


def clean_movies(raw: DataFrame, rules: BatchRules | str) -> CleanedMovies:
    """Normalise, type and judge every row by the rules of ``shared.transform``, key and dedupe them.

    ``raw`` has the record's columns as strings and ``_corrupt_record`` (see ``read_movies``); ``rules``
    may be just an extract id (the extract then counts as taken now).
    """
    if isinstance(rules, str):
        rules = BatchRules.of(rules, None)
    spark = raw.sparkSession
    # Numbering rows in the checks' own step, non-deterministically, keeps Spark from pushing later filters
    # below the checks and inlining every check into them (which overflows its generated code and falls
    # back to slow interpretation).
    checked = _run_sql(spark, lambda view: checked_query(view, rules, "monotonically_increasing_id()"), raw)
    return CleanedMovies(spark=spark, checked=checked, rules=rules)


def _aliased(aggregates: dict[str, str]) -> list[str]:
    return [f"{sql} AS {name}" for name, sql in aggregates.items()]


def _counts(totals: dict[str, Any]) -> TransformCounts:
    return TransformCounts.from_dict({name: int(totals[name] or 0) for name in COUNTS})


def _run_sql(spark: SparkSession, query, frame: DataFrame) -> DataFrame:
    """``query(view)`` run over ``frame``, seen as a temporary view of a name no other run uses."""
    view = f"moviepipe_{uuid.uuid4().hex}"
    frame.createOrReplaceTempView(view)
    try:
        return spark.sql(query(view))
    finally:
        # The query is analysed by now: it holds the view's plan, not its name.
        spark.catalog.dropTempView(view)


# -- one run --------------------------------------------------------------------------------------


def transform(
    spark: SparkSession,
    *,
    input_path: str,
    extract_id: str,
    expected_rows: int,
    output: str,
    extracted_at: str | None = None,
    year_horizon: int = DEFAULT_YEAR_HORIZON,
    min_votes: int = DEFAULT_MIN_VOTES,
    mean_rating: float | None = None,
) -> TransformCounts:
    """Cleanse ``input_path`` and write ``movies/`` and ``rejects/`` under ``output``; the counts.

    Refuses (``RowCountMismatch``) when the rows read differ from the rows the manifest says were
    extracted, and fails (``CountsNotConserved``) when the rows written do not add up to the rows read.
    """
    rules = BatchRules.of(
        extract_id, extracted_at, year_horizon, min_votes=min_votes, mean_rating=mean_rating
    )
    counts = clean_movies(read_movies(spark, input_path), rules).write(output)
    return verified(counts, extract_id=extract_id, expected_rows=expected_rows)


def main(argv: Sequence[str] | None = None) -> Manifest:
    """One job run: cleanse, write the archive files, then commit them with the archive manifest."""
    args = parse_args(sys.argv if argv is None else argv)
    spark, in_glue = job_session()
    through_boto3 = args.s3_io == "boto3" or (args.s3_io == "auto" and not in_glue)
    s3 = None
    with tempfile.TemporaryDirectory(prefix="moviepipe-transform-") as tmp:
        work = Path(tmp)
        parts = work / "parts"
        input_path = args.input_path
        if through_boto3 and input_path.startswith("s3://"):
            import boto3

            s3 = boto3.client("s3")
            bucket, key = split_s3_uri(input_path)
            (work / "input").mkdir()
            input_path = str(work / "input" / "movies.csv")
            s3.download_file(bucket, key, input_path, Config=DOWNLOADS)
        common = {
            "input_path": input_path,
            "extract_id": args.extract_id,
            "expected_rows": args.expected_rows,
            "extracted_at": args.extracted_at,
            "year_horizon": args.year_horizon,
            "min_votes": args.min_votes,
            "mean_rating": args.mean_rating,
        }
        spark_wrote_s3 = False
        if args.output_path.startswith("s3://"):
            import boto3

            s3 = s3 or boto3.client("s3")
            bucket, prefix = split_s3_uri(args.output_path)
            target: S3Target | DirectoryTarget = S3Target(s3, bucket, prefix)
            if through_boto3:
                counts = transform(spark, **common, output=parts.as_uri())
            else:
                # On a cluster the executors cannot write to the driver's disk: Spark writes beside the
                # archive, the driver fetches the parts to describe them, then publishes them by name.
                counts = transform(spark, **common, output=f"{args.output_path}/_spark")
                spark_wrote_s3 = True
                download_prefix(s3, bucket, f"{prefix}/_spark", parts)
        else:
            counts = transform(spark, **common, output=parts.as_uri())
            target = DirectoryTarget(Path(args.output_path))
        manifest = publish_archive(
            parts,
            target,
            extract_id=args.extract_id,
            source=args.source,
            extracted_at=args.extracted_at,
            row_counts=counts.as_dict(),
            extract_kind=args.extract_kind,
        )
        if spark_wrote_s3 and isinstance(target, S3Target):
            delete_prefix(target.s3, target.bucket, f"{target.prefix}/_spark")
    return manifest


if __name__ == "__main__":
    main()

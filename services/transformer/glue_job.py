"""The Spark job that cleanses one extract: read ``movies.csv``, type and check every row, dedupe, write.

It runs unchanged as an AWS Glue job (``getResolvedOptions`` arguments, Glue's session, shipped with
``shared`` and ``services`` as ``--extra-py-files``) and under plain pyspark, where the same arguments
are parsed with argparse::

    python -m services.transformer.glue_job --input_path DIR/movies.csv --output_path OUT \\
        --extract_id ID --source imdb --extracted_at 2026-01-01T00:00:00+00:00 --expected_rows 58788

The cleansing itself is ``clean_movies``, a pure function over DataFrames: the warm local runner calls
it on its long-lived session, ``main`` calls it in a Glue run. Every check is derived from the field
definitions in ``shared.schema``; none is written out per column.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import WindowSpec

from services.transformer.archive import (
    DirectoryTarget,
    S3Target,
    delete_prefix,
    download_prefix,
    publish_archive,
    split_s3_uri,
)
from services.transformer.exceptions import InvalidHeader, RowCountMismatch
from shared.keys import movie_key_sql
from shared.manifest import Manifest
from shared.rejects import Reason
from shared.schema import CLEAN_MOVIE_FIELDS, MOVIE_FIELDS, REJECT_FIELDS, Field, field_names, spark_schema

JOB_ARGUMENTS = ("input_path", "output_path", "extract_id", "source", "extracted_at", "expected_rows")
"""The job's arguments, by the names Glue passes them (``--input_path`` …) and argparse parses them."""
OPTIONAL_ARGUMENTS = {"extract_kind": "full", "s3_io": "auto"}
"""Arguments a caller may leave out, with their defaults (a run submitted by an older transformer)."""
CHOICES = {"extract_kind": ("full", "incremental"), "s3_io": ("auto", "spark", "boto3")}
"""``s3_io``: who reads and writes ``s3://`` paths. ``spark``: the executors (Glue's S3 connector);
``boto3``: the driver stages the input in and the archive out (plain pyspark, which has no S3
connector, or a small run); ``auto``: ``spark`` inside Glue, ``boto3`` elsewhere."""

SPARK_CONF = {"spark.sql.ansi.enabled": "false"}
"""Session settings the job's semantics depend on (ANSI mode is off in Spark 3.5 but on in 4.x)."""

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

MISSING_MARKERS = ("NA", "")
BOOLEANS = {"1": True, "true": True, "0": False, "false": False}

CORRUPT_RECORD = "_corrupt_record"
_ROW = "_row"  # the row's position in movies.csv: output follows input order
_FAILURE = "_failure"
_RANK = "_rank"


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
    )


def job_session() -> tuple[SparkSession, bool]:
    """Glue's session in a Glue run, otherwise the active (or a new) plain Spark session; whether Glue's."""
    try:
        from awsglue.context import GlueContext
        from pyspark.context import SparkContext

        spark, in_glue = GlueContext(SparkContext.getOrCreate()).spark_session, True
    except Exception:  # awsglue missing, or its Python side without Glue's jars
        spark, in_glue = SparkSession.builder.appName("moviepipe-transform").getOrCreate(), False
    for key, value in SPARK_CONF.items():
        spark.conf.set(key, value)
    return spark, in_glue


# -- reading --------------------------------------------------------------------------------------


def header_columns(line: str | None) -> list[str]:
    """The record's column names in a CSV header line, in file order; ``InvalidHeader`` if it lacks any.

    Names match case-insensitively and ignoring surrounding spaces and a byte-order mark; columns that
    are not part of the record are allowed and become ``_extra_<position>``.
    """
    if line is None or not line.strip():
        raise InvalidHeader("movies.csv has no header row")
    names = [name.strip().lower() for name in next(csv.reader([line.lstrip("\ufeff")]))]
    missing = [name for name in field_names() if name not in names]
    if missing:
        raise InvalidHeader(f"movies.csv header lacks column(s) {', '.join(missing)} (found: {line.strip()})")
    repeated = sorted({name for name in names if name in field_names() and names.count(name) > 1})
    if repeated:
        raise InvalidHeader(f"movies.csv header repeats column(s) {', '.join(repeated)}")
    known = set(field_names())
    return [name if name in known else f"_extra_{position}" for position, name in enumerate(names)]


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
class TransformCounts:
    """Where each extracted row went; ``extracted == clean + rejected + duplicates`` always."""

    extracted: int
    clean: int
    rejected: int
    duplicates: int

    @property
    def conserved(self) -> bool:
        return self.extracted == self.clean + self.rejected + self.duplicates

    def as_dict(self) -> dict[str, int]:
        return {
            "extracted": self.extracted,
            "clean": self.clean,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_dict(cls, counts: dict[str, int]) -> TransformCounts:
        return cls(**{name: int(counts[name]) for name in ("extracted", "clean", "rejected", "duplicates")})


@dataclass(frozen=True)
class CleanedMovies:
    """The cleansed extract, still lazy: each row typed, with its first failure if it has one."""

    checked: DataFrame
    extract_id: str

    @property
    def clean(self) -> DataFrame:
        """Valid rows, one per movie key, in the columns of ``CLEAN_MOVIE_FIELDS``, in input order."""
        return self._clean_rows().orderBy(_ROW).drop(_ROW)

    @property
    def rejects(self) -> DataFrame:
        """Refused rows in the columns of ``REJECT_FIELDS``, in input order."""
        return self._reject_rows().orderBy(_ROW).drop(_ROW)

    def counts(self) -> TransformCounts:
        """Count every kind of row in one pass, independently of the dedupe that writes the clean rows."""
        valid = F.col(_FAILURE).isNull()
        per_key = (
            self.checked.select(F.when(valid, _movie_key()).alias("movie_key"), _FAILURE)
            .groupBy("movie_key")
            .agg(F.count(F.lit(1)).alias("rows"), F.count(_FAILURE).alias("rejected"))
        )
        keyed = F.col("movie_key").isNotNull()
        totals = per_key.agg(
            F.sum("rows").alias("extracted"),
            F.count(F.when(keyed, True)).alias("clean"),
            F.sum("rejected").alias("rejected"),
            F.sum(F.when(keyed, F.col("rows") - 1)).alias("duplicates"),
        ).first()
        return TransformCounts(**{name: int(value or 0) for name, value in totals.asDict().items()})

    def write(self, directory: str) -> TransformCounts:
        """Write ``movies/`` and ``rejects/`` under ``directory`` (any path Spark writes), one CSV part each.

        Rows keep their order in ``movies.csv``, so the same input always gives the same bytes. The counts
        are observed while the clean rows are written, which saves a pass over the data.
        """
        # Observations of one session are matched by name: a unique one keeps concurrent runs apart.
        observed = Observation(f"transform_counts_{uuid.uuid4().hex}")
        rank = F.col(_RANK)
        ranked = self._ranked().observe(
            observed,
            F.count(F.lit(1)).alias("extracted"),
            F.count(F.when(rank == 1, True)).alias("clean"),
            F.count(F.when(rank.isNull(), True)).alias("rejected"),
            F.count(F.when(rank > 1, True)).alias("duplicates"),
        )
        for role, frame in (("movies", self._clean_rows(ranked)), ("rejects", self._reject_rows())):
            (
                # One partition after the heavy work, not before it: repartition keeps the scan parallel.
                frame.repartition(1)
                .sortWithinPartitions(_ROW)
                .drop(_ROW)
                .write.mode("overwrite")
                .options(**CSV_WRITE_OPTIONS)
                .csv(f"{directory}/{role}")
            )
        return TransformCounts(**{name: int(value) for name, value in observed.get.items()})

    def _ranked(self) -> DataFrame:
        """Valid rows keyed and ranked within their movie key (1 is kept); rejects with no rank."""
        valid = F.col(_FAILURE).isNull()
        keyed = self.checked.select(
            _ROW,
            *field_names(),
            _FAILURE,
            F.when(valid, _movie_key()).alias("movie_key"),
        )
        return keyed.withColumn(_RANK, F.when(valid, F.row_number().over(_dedupe_window())))

    def _clean_rows(self, ranked: DataFrame | None = None) -> DataFrame:
        return (
            (self._ranked() if ranked is None else ranked)
            .where(F.col(_RANK) == 1)
            .select(_ROW, *field_names(CLEAN_MOVIE_FIELDS[:-1]), F.lit(self.extract_id).alias("extract_id"))
        )

    def _reject_rows(self) -> DataFrame:
        failure = F.col(_FAILURE)
        as_arrived = [F.col(_raw_column(name)).alias(name) for name in field_names()]
        columns = {
            "extract_id": F.lit(self.extract_id),
            "reason": failure["reason"],
            "field": failure["field"],
            "detail": failure["detail"],
            "record": F.when(F.col(CORRUPT_RECORD).isNull(), _json(*as_arrived)).otherwise(
                _json(*as_arrived, F.col(CORRUPT_RECORD).alias("_line"))
            ),
        }
        return self.checked.where(failure.isNotNull()).select(
            _ROW, *(columns[name].alias(name) for name in field_names(REJECT_FIELDS))
        )


def clean_movies(raw: DataFrame, extract_id: str) -> CleanedMovies:
    """Trim, null ``NA``/empty, type every field, reject rows that break a field's rules, key and dedupe.

    ``raw`` has the record's columns as strings and ``_corrupt_record`` (see ``read_movies``). A rejected
    row carries its first failure in field order; among valid rows sharing a movie key the one with the
    most votes is kept (ties broken by every other field, then input order) and the rest are duplicates.
    """
    # One step per select, each naming its columns, so the checks read typed values by name instead of
    # repeating their expressions.
    texts = raw.select(
        CORRUPT_RECORD,
        *(F.col(name).alias(_raw_column(name)) for name in field_names()),
        *(_text(F.col(name)).alias(_text_column(name)) for name in field_names()),
    )
    typed = texts.select("*", *(_typed(field).alias(_value_column(field.name)) for field in MOVIE_FIELDS))
    malformed = F.when(
        F.col(CORRUPT_RECORD).isNotNull(),
        _failure(
            Reason.MALFORMED_ROW,
            None,
            F.lit(f"row does not parse into the {len(MOVIE_FIELDS)} columns (wrong column count or quotes)"),
        ),
    )
    checks = [
        check
        for field in MOVIE_FIELDS
        for check in _checks(field, F.col(_text_column(field.name)), F.col(_value_column(field.name)))
    ]
    checked = typed.select(
        *(F.col(_value_column(name)).alias(name) for name in field_names()),
        F.coalesce(malformed, *checks).alias(_FAILURE),
        *(_raw_column(name) for name in field_names()),
        CORRUPT_RECORD,
        # Non-deterministic, so Spark cannot push later filters below this step and inline every check
        # into them (which overflows its generated code and falls back to slow interpretation).
        F.monotonically_increasing_id().alias(_ROW),
    )
    return CleanedMovies(checked=checked, extract_id=extract_id)


def _json(*columns: Column) -> Column:
    # Empty fields stay visible in the record (as null) rather than vanishing from it.
    return F.to_json(F.struct(*columns), {"ignoreNullFields": "false"})


def _movie_key() -> Column:
    return F.expr(movie_key_sql("title", "year"))


def _raw_column(name: str) -> str:
    return f"{name}__raw"


def _text_column(name: str) -> str:
    return f"{name}__text"


def _value_column(name: str) -> str:
    return f"{name}__value"


def _text(column: Column) -> Column:
    trimmed = F.trim(column)
    return F.when(~trimmed.isin(*MISSING_MARKERS), trimmed)


def _typed(field: Field) -> Column:
    """The field's value in its own type; null when its text is missing or does not convert."""
    text = _text_column(field.name)
    if field.kind == "integer":
        number = _try_cast(text, "double")
        whole = _finite(number) & (number == F.floor(number)) & (F.abs(number) < 2.0**63)
        # Plain integers convert exactly; "1e+06" or "120.0" go through a double.
        return F.coalesce(_try_cast(text, "bigint"), F.when(whole, number.cast("bigint")))
    if field.kind == "number":
        number = _try_cast(text, "double")
        return F.when(_finite(number), number)
    if field.kind == "boolean":
        lowered = F.lower(F.col(text))
        truthy = [word for word, meaning in BOOLEANS.items() if meaning]
        falsy = [word for word, meaning in BOOLEANS.items() if not meaning]
        return F.when(lowered.isin(*truthy), F.lit(True)).when(lowered.isin(*falsy), F.lit(False))
    return F.col(text)


def _checks(field: Field, text: Column, value: Column) -> list[Column]:
    """The field's rules, in the order they are reported; each is a failure or null."""
    name = field.name

    def quoted(complaint: str) -> Column:
        return F.concat(F.lit(f"{name} '"), text, F.lit(f"' {complaint}"))

    rules: list[tuple[Column, Reason, Column]] = []
    if field.required:
        rules.append((text.isNull(), Reason.MISSING_VALUE, F.lit(f"{name} is missing")))
    unconverted = text.isNotNull() & value.isNull()
    if field.kind == "integer":
        number = _try_cast(_text_column(name), "double")
        not_whole = (
            F.when(~_finite(number), quoted("is not a number"))
            .when(number != F.floor(number), quoted("is not a whole number"))
            .otherwise(quoted("is too large for a whole number"))
        )
        rules.append((unconverted, Reason.NOT_A_NUMBER, not_whole))
    elif field.kind == "number":
        rules.append((unconverted, Reason.NOT_A_NUMBER, quoted("is not a number")))
    elif field.kind == "boolean":
        rules.append((unconverted, Reason.NOT_ALLOWED, quoted(f"is not one of {', '.join(BOOLEANS)}")))
    if field.minimum is not None:
        below = quoted(f"is below the minimum {field.minimum:g}")
        rules.append((value < field.minimum, Reason.OUT_OF_RANGE, below))
    if field.maximum is not None:
        above = quoted(f"is above the maximum {field.maximum:g}")
        rules.append((value > field.maximum, Reason.OUT_OF_RANGE, above))
    if field.enum is not None:
        outside = text.isNotNull() & ~text.isin(*field.enum)
        rules.append((outside, Reason.NOT_ALLOWED, quoted(f"is not one of {', '.join(field.enum)}")))
    return [F.when(condition, _failure(reason, name, detail)) for condition, reason, detail in rules]


def _dedupe_window() -> WindowSpec:
    """Most votes first; then every field, so the survivor depends on content, not on input order."""
    order = [F.col("votes").desc_nulls_last(), F.col("rating").desc_nulls_last()]
    order += [F.col(name).asc_nulls_last() for name in field_names() if name not in ("votes", "rating")]
    return Window.partitionBy("movie_key").orderBy(*order, F.col(_ROW))


def _failure(reason: Reason, field: str | None, detail: Column) -> Column:
    return F.struct(
        F.lit(reason.value).alias("reason"),
        F.lit(field).cast("string").alias("field"),
        detail.alias("detail"),
    )


def _try_cast(column: str, spark_type: str) -> Column:
    # Column.try_cast exists only from Spark 4; the SQL function works in 3.5 and 4.
    return F.expr(f"try_cast(`{column}` as {spark_type})")


def _finite(number: Column) -> Column:
    return number.isNotNull() & ~F.isnan(number) & (F.abs(number) != F.lit(float("inf")))


# -- one run --------------------------------------------------------------------------------------


def transform(
    spark: SparkSession, *, input_path: str, extract_id: str, expected_rows: int, output: str
) -> TransformCounts:
    """Cleanse ``input_path`` and write ``movies/`` and ``rejects/`` under ``output``; the counts.

    Refuses (``RowCountMismatch``) when the rows read differ from the rows the manifest says were
    extracted: then some row was split or swallowed, and no count downstream could be trusted.
    """
    counts = clean_movies(read_movies(spark, input_path), extract_id).write(output)
    if counts.extracted != expected_rows:
        raise RowCountMismatch(
            f"movies.csv holds {counts.extracted} rows as the transform reads it, "
            f"but the manifest says {expected_rows} were extracted"
        )
    return counts


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
            s3.download_file(bucket, key, input_path)
        common = {
            "input_path": input_path,
            "extract_id": args.extract_id,
            "expected_rows": args.expected_rows,
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

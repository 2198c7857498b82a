"""The numbers of docs/SCALING.md, worked out from the figures measured in docs/benchmarks.json.

``python docs/scaling_model.py`` prints every table of SCALING.md as Markdown (standard library only).
Each input is one of four kinds, named where it is set below: measured by ``moviepipe bench`` (read from
benchmarks.json), measured once for SCALING.md (a constant, with how it was measured), a price or a
platform limit, or an assumption. Change one and run it again to get the tables again.

The model is arithmetic: work per row (or per byte) times rows, priced. The one simulation is of an
hour: every source extracts at the top of the hour and the extracts queue through the stages' tasks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

BENCHMARKS = Path(__file__).with_name("benchmarks.json")
MIB = 1 << 20
GIB = 1 << 30
"""AWS bills storage per GB of 2^30 bytes; the same GB is used for Snowpipe's per-GB charge."""

# -- the workload -----------------------------------------------------------------------------------------
BASE_SOURCES = 10
BASE_ROWS = 5_000_000
"""The largest workload (1x): 10 sources, each a full extract of 5,000,000 rows every hour."""
HOURS_PER_MONTH = 730
SCALES = (1, 10, 100, 1000)
STORAGE_MONTH = 12
"""Storage is priced in this month of running: the buckets and RAW only grow (see the lifecycle rules)."""

# -- prices: us-east-1 public list prices as of 2026 ------------------------------------------------------
FARGATE_VCPU_HOUR = 0.04048
FARGATE_GB_HOUR = 0.004445
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1e6
GLUE_DPU_HOUR = 0.44
GLUE_MINIMUM_SECONDS = 60
"""Glue 2.0 and later bill per second with a one-minute minimum."""
GLUE_CATALOG_FREE_OBJECTS = 1_000_000
GLUE_CATALOG_PER_OBJECT = 1.00 / 100_000
GLUE_CATALOG_FREE_REQUESTS = 1_000_000
GLUE_CATALOG_PER_REQUEST = 1.00 / 1e6
S3_PUT = 0.005 / 1000
"""PUT, COPY, POST and LIST requests."""
S3_GET = 0.0004 / 1000
"""GET and HEAD requests."""
S3_GLACIER_TRANSITION = 0.03 / 1000
S3_STANDARD_GB_MONTH = 0.023
S3_GLACIER_GB_MONTH = 0.0036
"""Glacier Flexible Retrieval."""
SQS_REQUEST = 0.40 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
"""Assumption: on-demand write request unit (the price since AWS's cut of November 2024)."""
DYNAMODB_READ_UNIT = 0.125 / 1e6
"""Assumption: on-demand read request unit."""
NAT_GB = 0.045
FIXED_AWS_MONTH = 25.0
"""README "What it costs in AWS": the internal load balancer ($17), CloudWatch ($5-10), two secrets ($1)."""
SNOWFLAKE_CREDIT = 3.00
"""Assumption: Enterprise edition on AWS us-east-1 (Standard is about $2, Business Critical about $4)."""
SNOWPIPE_CREDITS_PER_GB = 0.0037
"""Assumption: Snowpipe's per-GB charge, taken on the files' bytes as loaded (uncompressed CSV today)."""
SNOWPIPE_CREDITS_PER_1000_FILES = 0.06
"""The older model's per-file overhead (it also billed the serverless compute, which is not known here)."""
SNOWFLAKE_TB_MONTH = 23.0
"""Assumption: capacity storage per TB-month (on-demand storage costs more)."""

# -- platform limits ----------------------------------------------------------------------------------------
LAMBDA_MAX_SECONDS = 900
LAMBDA_MB_PER_VCPU = 1769
"""Lambda gives a function one vCPU at 1,769 MB, in proportion below it."""
FARGATE_EPHEMERAL_BYTES = 20 * GIB
"""A Fargate task's disk when the task definition asks for none (deploy/aws/ecs.py asks for none)."""
G1X_VCPU = 4
G1X_FREE_DISK_BYTES = 44e9
"""AWS Glue worker types: G.1X is 1 DPU, 4 vCPU, 16 GB, 94 GB disk of which about 44 GB free."""
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600
SNOWFLAKE_FILE_BYTES = (100e6, 250e6)
"""Snowflake's guidance for files to load: 100-250 MB compressed."""

# -- the pipeline as configured (the code, deploy/) ---------------------------------------------------------
TASKS = {  # deploy/aws/workloads.py: vCPU and GB of each service's Fargate task
    "extractor": (0.5, 2),
    "unzipper": (0.5, 1),
    "transformer": (1.0, 4),
    "loader": (0.5, 1),
    "dashboard": (0.5, 1),
}
LAMBDA_MEMORY_MB = 1024  # deploy/aws/unzipper_lambda.py
LAMBDA_TIMEOUT_SECONDS = 120 // 2  # half the unzipper queue's visibility (deploy/resources.py)
MAX_UNZIPPED_BYTES = 64 * GIB  # MOVIEPIPE_MAX_UNZIPPED_BYTES
GLUE_WORKERS = 2  # MOVIEPIPE_GLUE_WORKERS, G.1X; one worker is Spark's driver
GLUE_MAX_CONCURRENT_RUNS = 4  # the template's GlueMaxConcurrentRuns
GLUE_DEADLINE_SECONDS = 3600  # MOVIEPIPE_GLUE_DEADLINE_SECONDS
HEARTBEAT_SECONDS = 20  # shared/consumer.py extends visibility every 60/3 s; the unzip lease renews as often
POLL_WAIT_SECONDS = 5  # MOVIEPIPE_POLL_WAIT_SECONDS: an idle consumer's long poll
DEPTH_READS_PER_HOUR = 2 * 3600 // 30  # queue and DLQ depth, every 30 s
PROGRESS_ROWS = 200_000  # MOVIEPIPE_PROGRESS_ROWS: the extractor's progress record, every this many rows
CATALOG_PARTITIONS = 3  # archive_movies, archive_rejects, processed_movies: one partition each per extract
CATALOG_REQUESTS = 7  # per extract: a get_table and a create_partition per table, one create_database
ARCHIVE_GLACIER_DAYS = 90  # deploy/resources.py: archive to Glacier; landing and processed never expire
AUTO_SUSPEND_SECONDS = 60  # deploy/snowflake/00_database.sql: the warehouse suspends after 60 s idle

# -- measured once for SCALING.md (2026-12-05, the IMDb sample, 58,788 rows, through duckdb_job) -------------
ARCHIVE_BYTES_PER_CSV_BYTE = 11_955_164 / 6_907_564
"""The clean part (33 columns: the record, its key, the enrichment) against the extract's movies.csv."""
ARCHIVE_GZIP_RATIO = 4.73
"""That clean part gzipped (level 6) is 4.73 times smaller."""

# -- assumptions ---------------------------------------------------------------------------------------------
TARGET_BUSY = 0.75
"""Tasks are sized so that the hour's work keeps each one at most this busy."""
GLUE_START_SECONDS = 15.0
"""Per run, Glue's start and Spark's session (a cold Spark process took about 12 s here, DESIGN.md)."""
GLUE_PUBLISH_BYTES_PER_SECOND = 60e6
"""The Glue driver's publish step, one pass after another: download the parts, hash, count, upload."""
SPARK_READ_SPLIT = 128 * MIB
"""Spark on Glue is assumed to read and write S3 in pieces of this size."""
WAREHOUSE_READ_BYTES = 8 * MIB
"""Snowflake's COPY is assumed to read a part in GETs of this size."""
PROGRESS_ITEM_UNITS = 2
"""An extract's progress item is under 2 KB: 2 write units per update."""
UNZIP_GETS = 6
"""The tail, a stream per member, the published manifest and reason.json looked for (replays)."""
KEEP_DAYS = 7
"""Not built, priced as an alternative: landing and processed objects deleted after this many days."""


@dataclass(frozen=True)
class Measured:
    """Per-row and per-byte work, from docs/benchmarks.json (2 cores: AMD EPYC, 24 GiB)."""

    csv_bytes_per_row: float
    deflate_ratio: float
    parquet_bytes_per_row: float
    extract_core_seconds_per_row: float
    unzip_bytes_per_core_second: float
    unzip_peak_mib: float
    duckdb_core_seconds_per_row: float
    spark_core_seconds_per_row: float
    copy_seconds_per_row: float
    merge_seconds_per_row: float
    verify_seconds_per_row: float
    measured_at: dict[str, str]

    @property
    def bundle_bytes_per_row(self) -> float:
        return self.csv_bytes_per_row / self.deflate_ratio + self.parquet_bytes_per_row

    @property
    def inflated_bytes_per_row(self) -> float:
        return self.csv_bytes_per_row + self.parquet_bytes_per_row

    @property
    def archive_bytes_per_row(self) -> float:
        return self.csv_bytes_per_row * ARCHIVE_BYTES_PER_CSV_BYTE

    @property
    def warehouse_seconds_per_row(self) -> float:
        return self.copy_seconds_per_row + self.merge_seconds_per_row


def bench_figures(bench: dict) -> tuple[dict, dict, dict, dict, dict, int]:
    """The bench runs the model uses: the transform at 5M and 1M rows, the extractor, the unzip, and the
    loader's steady-state re-load of 1M rows (its step times, and the rows it loaded)."""
    transform = {size["rows"]: size for size in bench["transform"]["sizes"]}
    reload = next(size for size in bench["loader"]["sizes"] if size["rows_loaded"] > 900_000)
    return (
        transform[5_000_000],
        transform[1_000_000],
        bench["extractor"],
        bench["unzip"],
        reload["changed_reload"],
        reload["rows_loaded"],
    )


def measured(bench: dict) -> Measured:
    """Scale the bench's figures to work per row: seconds times the cores the stage kept busy.

    The extractor and the unzipper are one stream each (one core; for the unzipper, moto had the other
    core); DuckDB ran with 2 threads and Spark as local[2], so both count both cores. A core here is taken
    as one vCPU of Fargate, Lambda or Glue.
    """
    large, million, extractor, unzip, changed, loaded = bench_figures(bench)
    deflate_ratio = unzip["inflated_bytes"] / unzip["bundle_bytes"]
    # The extractor's bundle is the CSV deflated plus the Parquet file stored: what is left is Parquet.
    csv_at_million = million["bytes"] / million["rows"]
    parquet = extractor["bundle_bytes"] / extractor["rows"] - csv_at_million / deflate_ratio
    return Measured(
        csv_bytes_per_row=large["bytes"] / large["rows"],
        deflate_ratio=deflate_ratio,
        parquet_bytes_per_row=parquet,
        extract_core_seconds_per_row=extractor["median_seconds"] / extractor["rows"],
        unzip_bytes_per_core_second=unzip["streaming_mb_per_second"] * 1e6,
        unzip_peak_mib=unzip["peak_rss_bytes"] / MIB,
        duckdb_core_seconds_per_row=2 * large["duckdb"]["median_seconds"] / large["rows"],
        spark_core_seconds_per_row=2 * large["spark"]["median_seconds"] / large["rows"],
        copy_seconds_per_row=changed["copy_seconds"] / loaded,
        merge_seconds_per_row=(changed["merge_seconds"] + changed["reconcile_seconds"]) / loaded,
        verify_seconds_per_row=changed["verify_seconds"] / loaded,
        measured_at={
            name: bench[name]["measured_at"] for name in ("transform", "extractor", "unzip", "loader")
        },
    )


# -- one extract --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Extract:
    """What one extract of ``rows`` rows weighs and takes, stage by stage."""

    rows: int
    m: Measured

    # bytes
    @property
    def csv(self) -> float:
        return self.rows * self.m.csv_bytes_per_row

    @property
    def parquet(self) -> float:
        return self.rows * self.m.parquet_bytes_per_row

    @property
    def bundle(self) -> float:
        return self.rows * self.m.bundle_bytes_per_row

    @property
    def inflated(self) -> float:
        return self.rows * self.m.inflated_bytes_per_row

    @property
    def archive(self) -> float:
        return self.rows * self.m.archive_bytes_per_row

    @property
    def extractor_disk(self) -> float:
        """The extractor writes the Parquet file, then the zip holding the CSV deflated and that Parquet."""
        return self.bundle + self.parquet

    # seconds
    @property
    def extractor_seconds(self) -> float:
        return self.rows * self.m.extract_core_seconds_per_row / TASKS["extractor"][0]

    @property
    def unzipper_seconds(self) -> float:
        return self.inflated / (self.m.unzip_bytes_per_core_second * TASKS["unzipper"][0])

    @property
    def lambda_seconds(self) -> float:
        return self.inflated / (self.m.unzip_bytes_per_core_second * LAMBDA_MEMORY_MB / LAMBDA_MB_PER_VCPU)

    def glue_seconds(self, workers: int = GLUE_WORKERS) -> float:
        executor_vcpu = G1X_VCPU * (workers - 1)
        spark = self.rows * self.m.spark_core_seconds_per_row / executor_vcpu
        return GLUE_START_SECONDS + spark + self.archive / GLUE_PUBLISH_BYTES_PER_SECOND

    def glue_dpu_hours(self, workers: int = GLUE_WORKERS) -> float:
        return workers * max(GLUE_MINIMUM_SECONDS, self.glue_seconds(workers)) / 3600

    @property
    def duckdb_seconds(self) -> float:
        return self.rows * self.m.duckdb_core_seconds_per_row / TASKS["transformer"][0]

    @property
    def warehouse_seconds(self) -> float:
        """X-Small seconds of COPY, MERGE and reconcile: the stand-in's time taken as Snowflake's."""
        return self.rows * self.m.warehouse_seconds_per_row

    @property
    def loader_seconds(self) -> float:
        verify = self.rows * self.m.verify_seconds_per_row / TASKS["loader"][0]
        return verify + self.warehouse_seconds

    def task_seconds(self) -> dict[str, float]:
        """How long an extract holds a task of each stage (the transformer waits for its Glue run)."""
        return {
            "extractor": self.extractor_seconds,
            "unzipper": self.unzipper_seconds,
            "transformer": self.glue_seconds(),
            "loader": self.loader_seconds,
        }

    # requests
    def s3_requests(self) -> tuple[int, int]:
        """(PUT-class, GET-class) requests, from what each stage's code does."""
        puts = gets = 0
        # extractor: the bundle, by boto3's upload_file
        puts += transfer_puts(self.bundle)
        # unzipper: ranged reads of the bundle; each file streamed up in parts; the manifest last
        gets += UNZIP_GETS
        puts += stream_puts(self.csv) + stream_puts(self.parquet) + 1
        # transformer on Glue: Spark reads movies.csv and writes its parts beside the archive (plus the
        # rejects part and _SUCCESS); the driver lists them, downloads them, uploads them under their names
        # with the manifest, lists again to delete its copies; the runner reads the manifest back; the
        # catalog writes one symlink file
        gets += math.ceil(self.csv / SPARK_READ_SPLIT) + 1
        puts += math.ceil(self.archive / SPARK_READ_SPLIT) + 4
        puts += 2  # the two listings
        gets += transfer_gets(self.archive) + 2
        puts += transfer_puts(self.archive) + 2
        gets += 1
        puts += 1
        # loader: the manifest, both parts read to check their hashes; Snowflake's COPY reading them
        gets += 1 + 2 + math.ceil(self.archive / WAREHOUSE_READ_BYTES) + 1
        return puts, gets

    def sqs_requests(self) -> int:
        """Send, receive and delete on each stage's queue, and a visibility heartbeat every 20 s."""
        beats = sum(int(seconds // HEARTBEAT_SECONDS) for seconds in self.task_seconds().values())
        return 4 * 3 + beats

    def dynamodb_units(self) -> tuple[int, int]:
        """(write, read) units: progress records, the source's state, the unzip's idempotency record."""
        writes = (
            3
            + self.rows // PROGRESS_ROWS  # extractor: begin, running, every 200,000 rows, succeeded
            + 2 * 3  # unzipper, transformer, loader: running, succeeded
        ) * PROGRESS_ITEM_UNITS
        writes += 3  # the source's claim, mark and release
        writes += 2 + int(self.unzipper_seconds // HEARTBEAT_SECONDS)  # idempotency record and its lease
        reads = 8  # the source's state, idempotency and progress reads, each item under 4 KB
        return writes, reads


def transfer_puts(size: float) -> int:
    """boto3's upload_file with shared.aws.UPLOADS: one PUT up to 64 MiB, else 8 MiB parts."""
    return 1 if size <= 64 * MIB else math.ceil(size / (8 * MIB)) + 2


def transfer_gets(size: float) -> int:
    """boto3's download_file: a HEAD, then ranged GETs of 8 MiB."""
    return 1 + max(1, math.ceil(size / (8 * MIB)))


def stream_puts(size: float) -> int:
    """shared.s3stream.S3ObjectWriter: 16 MiB parts (larger past 10,000 parts), or one PUT."""
    part = max(16 * MIB, math.ceil(size / 9_999))
    return 1 if size < part else math.ceil(size / part) + 2


# -- a month at a scale --------------------------------------------------------------------------------------


def tasks_needed(extracts_per_hour: float, seconds: float) -> int:
    return max(1, math.ceil(extracts_per_hour * seconds / (3600 * TARGET_BUSY)))


def task_hour_price(stage: str) -> float:
    vcpu, gb = TASKS[stage]
    return vcpu * FARGATE_VCPU_HOUR + gb * FARGATE_GB_HOUR


def warehouse_seconds_per_hour(extracts_per_hour: float, load_seconds: float) -> float:
    """Billed X-Small seconds per hour, loads spread evenly over the hour.

    A load resumes the warehouse (60 s minimum) and leaves it running until the 60 s auto-suspend, unless
    the next load comes first. Past one warehouse-hour of work per hour the warehouse never suspends; a
    larger or multi-cluster warehouse is taken to cost the same credits for the same work.
    """
    work = extracts_per_hour * load_seconds
    if work >= 3600:
        return work
    gap = 3600 / extracts_per_hour - load_seconds
    tail = min(AUTO_SUSPEND_SECONDS, max(0.0, gap))
    return min(3600.0, extracts_per_hour * (max(load_seconds, 60.0) + tail))


@dataclass(frozen=True)
class Month:
    """A month of running at ``scale`` times the sources, each extract still 5,000,000 rows.

    ``month`` is which month of running: storage (S3, RAW, the catalog) holds what every earlier month
    left, and on average half of this month's.
    """

    scale: int
    m: Measured
    month: int = STORAGE_MONTH

    @property
    def extract(self) -> Extract:
        return Extract(BASE_ROWS, self.m)

    @property
    def per_hour(self) -> int:
        return BASE_SOURCES * self.scale

    @property
    def extracts(self) -> int:
        return self.per_hour * HOURS_PER_MONTH

    @property
    def months_held(self) -> float:
        return self.month - 0.5

    def tasks(self) -> dict[str, int]:
        """Always-on Fargate tasks per service, sized for the hour's work."""
        held = self.extract.task_seconds()
        return {stage: tasks_needed(self.per_hour, held[stage]) for stage in held} | {"dashboard": 1}

    def s3_gb(self, keep_days: float | None = None) -> tuple[float, float, float]:
        """GB held: landing + processed (S3 Standard, never expired unless ``keep_days``), the archive in
        Standard for its first 90 days, the archive in Glacier."""
        landing_processed = self.extracts * (self.extract.bundle + self.extract.inflated) / GIB
        archive = self.extracts * self.extract.archive / GIB
        kept = self.months_held if keep_days is None else min(self.months_held, keep_days / 30.4)
        in_standard = min(ARCHIVE_GLACIER_DAYS / 30.4, self.months_held)
        return landing_processed * kept, archive * in_standard, archive * (self.months_held - in_standard)

    def s3_storage(self, keep_days: float | None = None) -> float:
        landing_processed, archive_standard, archive_glacier = self.s3_gb(keep_days)
        standard = (landing_processed + archive_standard) * S3_STANDARD_GB_MONTH
        return standard + archive_glacier * S3_GLACIER_GB_MONTH

    def credits(self) -> float:
        """Warehouse credits: the loader's COPY and MERGE on an X-Small (1 credit an hour)."""
        billed = warehouse_seconds_per_hour(self.per_hour, self.extract.warehouse_seconds)
        return billed / 3600 * HOURS_PER_MONTH

    def snowpipe_credits(self) -> float:
        """Snowpipe copies the parts; the warehouse still merges (deploy/snowflake's stream and tasks)."""
        copy = self.extracts * self.extract.archive / GIB * SNOWPIPE_CREDITS_PER_GB
        merge_seconds = self.extract.rows * self.m.merge_seconds_per_row
        merge = warehouse_seconds_per_hour(self.per_hour, merge_seconds) / 3600 * HOURS_PER_MONTH
        return copy + merge

    def raw_tb(self) -> float:
        """RAW.MOVIES: a row per movie per extract, compressed as gzip compresses the clean part."""
        row_bytes = self.m.archive_bytes_per_row / ARCHIVE_GZIP_RATIO
        return self.extracts * BASE_ROWS * row_bytes * self.months_held / 1e12

    def sqs_requests(self) -> tuple[float, float]:
        """Requests a month: (the extracts' own, the idle consumers' long polls and depth reads)."""
        consumers = sum(count for stage, count in self.tasks().items() if stage != "dashboard")
        idle = consumers * (3600 / POLL_WAIT_SECONDS + DEPTH_READS_PER_HOUR) * HOURS_PER_MONTH
        return self.extracts * self.extract.sqs_requests(), idle

    def nat(self) -> float:
        """The tasks' own S3 traffic through a NAT gateway instead of an S3 gateway endpoint."""
        e = self.extract
        moved = 2 * e.bundle + e.inflated + e.archive  # landed, read back, unzipped out, verified
        return self.extracts * moved / GIB * NAT_GB

    def lines(self) -> dict[str, float]:
        """Dollars per month, item by item."""
        e, n = self.extract, self.extracts
        puts, gets = e.s3_requests()
        writes, reads = e.dynamodb_units()
        objects = CATALOG_PARTITIONS * n * self.months_held
        catalog = max(0.0, objects - GLUE_CATALOG_FREE_OBJECTS) * GLUE_CATALOG_PER_OBJECT
        catalog += max(0, n * CATALOG_REQUESTS - GLUE_CATALOG_FREE_REQUESTS) * GLUE_CATALOG_PER_REQUEST
        tasks = self.tasks()
        return {
            "fargate": sum(tasks[s] * task_hour_price(s) for s in tasks) * HOURS_PER_MONTH,
            "fixed": FIXED_AWS_MONTH,
            "glue": n * e.glue_dpu_hours() * GLUE_DPU_HOUR,
            "s3_requests": n * (puts * S3_PUT + gets * S3_GET + 3 * S3_GLACIER_TRANSITION),
            "sqs": sum(self.sqs_requests()) * SQS_REQUEST,
            "dynamodb": n * (writes * DYNAMODB_WRITE_UNIT + reads * DYNAMODB_READ_UNIT),
            "catalog": catalog,
            "s3_storage": self.s3_storage(),
            "warehouse": self.credits() * SNOWFLAKE_CREDIT,
            "snowflake_storage": self.raw_tb() * SNOWFLAKE_TB_MONTH,
        }


SNOWFLAKE_LINES = ("warehouse", "snowflake_storage")


# -- the hour, simulated -------------------------------------------------------------------------------------


def simulate_hour(extracts: int, spent: dict[str, float], servers: dict[str, int]) -> float:
    """Seconds until the last of ``extracts``, all placed at the top of the hour, is loaded.

    Each stage has ``servers[stage]`` tasks taking one extract at a time, first come first served, for
    ``spent[stage]`` seconds each; an extract enters a stage once the stage before has finished it. The
    warehouse is taken to run as many loads at once as there are loader tasks (multi-cluster).
    """
    ready = [0.0] * extracts
    for stage in ("extractor", "unzipper", "transformer", "loader"):
        free = [0.0] * servers[stage]
        finished = []
        for arrived in ready:
            slot = min(range(len(free)), key=free.__getitem__)
            free[slot] = max(arrived, free[slot]) + spent[stage]
            finished.append(free[slot])
        ready = sorted(finished)
    return max(ready)


# -- printing ------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def money(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    if value >= 0.01:
        return f"${value:.3f}"
    return f"${value:.4f}" if value >= 0.001 else f"${value:.6f}"


def size(value: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if value >= scale:
            return f"{value / scale:,.2f} {unit}"
    return f"{value / 1e3:,.1f} kB"


def duration(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:,.1f} h"
    if value >= 60:
        return f"{value / 60:,.1f} min"
    return f"{value:,.1f} s"


def count(value: float) -> str:
    if value >= 1e9:
        return f"{value / 1e9:,.2f}B"
    if value >= 1e6:
        return f"{value / 1e6:,.1f}M"
    return f"{value:,.0f}"


def inputs_table(m: Measured, bench: dict) -> str:
    """Each per-row figure, with the bench figures it comes from and when they were measured."""
    at = m.measured_at
    large, million, extractor, unzip, changed, loaded = bench_figures(bench)
    bundle_per_row = extractor["bundle_bytes"] / extractor["rows"]
    csv_per_row = million["bytes"] / million["rows"]
    rows = [
        [
            "movies.csv, bytes per row",
            f"{m.csv_bytes_per_row:.2f}",
            f"transform: {large['bytes']:,} B for {large['rows']:,} rows ({at['transform']})",
        ],
        [
            "deflate ratio of movies.csv",
            f"{m.deflate_ratio:.3f}",
            f"unzip: {unzip['inflated_bytes']:,} B inflated from {unzip['bundle_bytes']:,} ({at['unzip']})",
        ],
        [
            "movies.parquet, bytes per row",
            f"{m.parquet_bytes_per_row:.2f}",
            f"extractor: bundle {bundle_per_row:.2f} B/row less {csv_per_row:.2f} / {m.deflate_ratio:.3f} "
            f"of CSV ({at['extractor']})",
        ],
        [
            "extractor, core-µs per row",
            f"{m.extract_core_seconds_per_row * 1e6:.2f}",
            f"extractor: {extractor['median_seconds']} s for {extractor['rows']:,} rows, one stream "
            f"({at['extractor']})",
        ],
        [
            "unzipper, MB/s per core, inflated",
            f"{m.unzip_bytes_per_core_second / 1e6:.1f}",
            f"unzip: streaming through moto; peak {m.unzip_peak_mib:.0f} MiB, no /tmp ({at['unzip']})",
        ],
        [
            "DuckDB, core-µs per row",
            f"{m.duckdb_core_seconds_per_row * 1e6:.2f}",
            f"transform: 2 threads x {large['duckdb']['median_seconds']} s for 5M rows ({at['transform']})",
        ],
        [
            "Spark, core-µs per row",
            f"{m.spark_core_seconds_per_row * 1e6:.2f}",
            f"transform: local[2], 2 x {large['spark']['median_seconds']} s for 5M rows ({at['transform']})",
        ],
        [
            "warehouse COPY, µs per row",
            f"{m.copy_seconds_per_row * 1e6:.2f}",
            f"loader, re-load with 1% changed: {changed['copy_seconds']} s for {loaded:,} rows "
            f"({at['loader']})",
        ],
        [
            "warehouse MERGE + reconcile, µs per row",
            f"{m.merge_seconds_per_row * 1e6:.2f}",
            f"loader, same run: {changed['merge_seconds']} + {changed['reconcile_seconds']} s "
            f"({at['loader']})",
        ],
        [
            "loader verify (size, sha256), µs per row",
            f"{m.verify_seconds_per_row * 1e6:.2f}",
            f"loader, same run: {changed['verify_seconds']} s ({at['loader']})",
        ],
        [
            "clean part, bytes per row",
            f"{m.archive_bytes_per_row:.1f}",
            f"{ARCHIVE_BYTES_PER_CSV_BYTE:.3f} x movies.csv (measured for this document, 2026-12-05)",
        ],
    ]
    return table(["figure", "value", "from (measured at)"], rows)


def sizes_table(m: Measured) -> str:
    rows = []
    for scale in SCALES:
        e = Extract(BASE_ROWS * scale, m)
        gzipped = e.archive / ARCHIVE_GZIP_RATIO
        rows.append(
            [
                f"{scale}x",
                count(e.rows),
                size(e.bundle),
                size(e.csv),
                size(e.parquet),
                size(e.inflated),
                size(e.archive),
                size(gzipped),
            ]
        )
    headers = [
        "scale",
        "rows",
        "bundle (zip)",
        "movies.csv",
        "movies.parquet",
        "unzipped",
        "clean part (CSV)",
        "clean part gzipped",
    ]
    return table(headers, rows)


def stage_table(m: Measured) -> str:
    rows = []
    for scale in SCALES:
        e = Extract(BASE_ROWS * scale, m)
        rows.append(
            [
                f"{scale}x",
                duration(e.extractor_seconds),
                duration(e.unzipper_seconds),
                duration(e.lambda_seconds),
                duration(e.duckdb_seconds),
                duration(e.glue_seconds()),
                f"{e.glue_dpu_hours():,.3f}",
                duration(e.glue_seconds(10)),
                f"{e.glue_dpu_hours(10):,.3f}",
                duration(e.warehouse_seconds),
            ]
        )
    headers = [
        "scale",
        "extractor (0.5 vCPU)",
        "unzipper (0.5 vCPU)",
        "unzipper on Lambda (1,024 MB)",
        "DuckDB (1 vCPU)",
        "Glue, 2 x G.1X",
        "DPU-hours",
        "Glue, 10 x G.1X",
        "DPU-hours",
        "warehouse (X-Small)",
    ]
    return table(headers, rows)


def per_extract_table(m: Measured) -> str:
    e = Extract(BASE_ROWS, m)
    puts, gets = e.s3_requests()
    writes, reads = e.dynamodb_units()
    glue, xs, pipe_gb = e.glue_seconds(), e.warehouse_seconds, e.archive / GIB
    lambda_cost = e.lambda_seconds * LAMBDA_MEMORY_MB / 1024 * LAMBDA_GB_SECOND + LAMBDA_REQUEST
    pipe_credits = pipe_gb * SNOWPIPE_CREDITS_PER_GB
    rows = [
        [
            "Glue run, 2 x G.1X",
            f"2 DPU x max(60 s, {glue:.1f} s) = {2 * max(60, glue):.1f} DPU-s x $0.44 / 3,600",
            money(e.glue_dpu_hours() * GLUE_DPU_HOUR),
        ],
        [
            "or DuckDB in the transformer (not the default above 1M rows)",
            f"{e.duckdb_seconds:.1f} s of a task that runs anyway",
            "$0",
        ],
        [
            "unzipper on Lambda instead of Fargate",
            f"{e.lambda_seconds:.1f} s x 1 GB x $0.0000166667 + 1 request x $0.20/M",
            money(lambda_cost),
        ],
        [
            "S3 requests",
            f"{puts} PUT-class x $0.005/1,000 + {gets} GET x $0.0004/1,000",
            money(puts * S3_PUT + gets * S3_GET),
        ],
        ["SQS requests", f"{e.sqs_requests()} x $0.40/M", money(e.sqs_requests() * SQS_REQUEST)],
        [
            "DynamoDB",
            f"{writes} write units x $0.625/M + {reads} read units x $0.125/M",
            money(writes * DYNAMODB_WRITE_UNIT + reads * DYNAMODB_READ_UNIT),
        ],
        [
            "warehouse: the loader's COPY + MERGE",
            f"{xs:.1f} X-Small s = {xs / 3600:.4f} credits x $3",
            money(xs / 3600 * SNOWFLAKE_CREDIT),
        ],
        [
            "or Snowpipe for the COPY",
            f"{pipe_gb:.3f} GB x 0.0037 = {pipe_credits:.4f} credits x $3",
            money(pipe_credits * SNOWFLAKE_CREDIT),
        ],
        [
            "Snowpipe, older per-file charge",
            "2 files x 0.06 / 1,000 credits x $3, compute on top",
            money(2 * SNOWPIPE_CREDITS_PER_1000_FILES / 1000 * SNOWFLAKE_CREDIT),
        ],
    ]
    return table(["item", "arithmetic", "per extract"], rows)


def month_table(m: Measured) -> str:
    months = [Month(scale, m) for scale in SCALES]

    def row(label: str, value) -> list[str]:
        return [label, *[value(month) for month in months]]

    def tasks(month: Month) -> str:
        return " / ".join(str(month.tasks()[s]) for s in ("extractor", "unzipper", "transformer", "loader"))

    def vcpu_hours(month: Month) -> str:
        provisioned = sum(c * TASKS[s][0] for s, c in month.tasks().items()) * HOURS_PER_MONTH
        held = sum(t * TASKS[s][0] for s, t in month.extract.task_seconds().items()) * month.extracts / 3600
        return f"{provisioned:,.0f} / {held:,.0f}"

    def s3(month: Month) -> str:
        puts, gets = month.extract.s3_requests()
        return f"{count(month.extracts * puts)} / {count(month.extracts * gets)}"

    def stored(month: Month) -> str:
        landing_processed, standard, glacier = month.s3_gb()
        return " / ".join(f"{gb * GIB / 1e12:,.0f}" for gb in (landing_processed, standard, glacier))

    def sqs(month: Month) -> str:
        extracts, idle = month.sqs_requests()
        return f"{count(extracts)} / {count(idle)}"

    lines = [
        row("extracts a month (730 h)", lambda mo: f"{mo.extracts:,}"),
        row("rows a month", lambda mo: count(mo.extracts * BASE_ROWS)),
        row("Fargate tasks: extractor / unzipper / transformer / loader", tasks),
        row("Fargate vCPU-hours: provisioned / holding an extract", vcpu_hours),
        row("Glue DPU-hours", lambda mo: f"{mo.extracts * mo.extract.glue_dpu_hours():,.0f}"),
        row(
            "Glue runs going at once, on average",
            lambda mo: f"{mo.per_hour * mo.extract.glue_seconds() / 3600:,.1f}",
        ),
        row("S3 requests: PUT-class / GET", s3),
        row(
            f"S3 TB held in month {STORAGE_MONTH}: landing+processed / archive, Standard / archive, Glacier",
            stored,
        ),
        row("SQS requests: for extracts / idle polls", sqs),
        row("DynamoDB write units", lambda mo: count(mo.extracts * mo.extract.dynamodb_units()[0])),
        row("warehouse credits (X-Small hours)", lambda mo: f"{mo.credits():,.0f}"),
        row(f"RAW in month {STORAGE_MONTH}", lambda mo: f"{mo.raw_tb():,.1f} TB"),
    ]
    return table(["", *[f"{mo.scale}x: {mo.per_hour:,} extracts an hour" for mo in months]], lines)


def cost_table(m: Measured) -> str:
    months = [Month(scale, m) for scale in SCALES]
    labels = {
        "fargate": "Fargate, tasks always on",
        "fixed": "load balancer, CloudWatch, secrets (README)",
        "glue": "Glue job runs",
        "s3_requests": "S3 requests, Glacier transitions",
        "sqs": "SQS",
        "dynamodb": "DynamoDB",
        "catalog": "Glue Data Catalog",
        "s3_storage": "S3 storage",
        "warehouse": "Snowflake warehouse: COPY + MERGE",
        "snowflake_storage": "Snowflake storage: RAW",
    }
    lines = [[label, *[money(mo.lines()[key]) for mo in months]] for key, label in labels.items()]

    def total(month: Month, keys=None) -> float:
        return sum(v for k, v in month.lines().items() if keys is None or k in keys)

    aws_keys = [key for key in labels if key not in SNOWFLAKE_LINES]
    lines.append(["**AWS**", *[f"**{money(total(mo, aws_keys))}**" for mo in months]])
    lines.append(["**Snowflake**", *[f"**{money(total(mo, SNOWFLAKE_LINES))}**" for mo in months]])
    lines.append([f"**total, month {STORAGE_MONTH}**", *[f"**{money(total(mo))}**" for mo in months]])
    lines.append(["total, month 1", *[money(total(Month(mo.scale, m, month=1))) for mo in months]])
    alternatives = [
        (
            "instead of the warehouse line: Snowpipe COPY + warehouse MERGE",
            lambda mo: mo.snowpipe_credits() * SNOWFLAKE_CREDIT,
        ),
        (
            "instead of the unzipper's Fargate tasks: Lambda",
            lambda mo: mo.extracts * (mo.extract.lambda_seconds * LAMBDA_GB_SECOND + LAMBDA_REQUEST),
        ),
        (
            f"instead of the S3 storage line: landing and processed expired after {KEEP_DAYS} days",
            lambda mo: mo.s3_storage(KEEP_DAYS),
        ),
        ("on top, without an S3 gateway endpoint: NAT gateway traffic", lambda mo: mo.nat()),
    ]
    lines += [[label, *[money(value(mo)) for mo in months]] for label, value in alternatives]
    return table(
        [f"per month (month {STORAGE_MONTH} unless said)", *[f"{mo.scale}x" for mo in months]], lines
    )


def limits_table(m: Measured) -> str:
    """Rows per extract at which each limit bites, smallest first."""
    row = Extract(1, m)  # one row's bytes and seconds
    lambda_full = m.unzip_bytes_per_core_second  # at 1,769 MB and more: one vCPU
    lambda_deployed = lambda_full * LAMBDA_MEMORY_MB / LAMBDA_MB_PER_VCPU
    glue_per_row = row.glue_seconds() - GLUE_START_SECONDS
    found = [
        (
            "Snowflake's file guidance: the clean part passes 250 MB as written (CSV)",
            SNOWFLAKE_FILE_BYTES[1] / row.archive,
        ),
        (
            "Snowflake's file guidance: the clean part would pass 250 MB gzipped",
            SNOWFLAKE_FILE_BYTES[1] * ARCHIVE_GZIP_RATIO / row.archive,
        ),
        (
            "unzipper on Lambda as deployed: 60 s at 1,024 MB",
            LAMBDA_TIMEOUT_SECONDS * lambda_deployed / row.inflated,
        ),
        (
            "Glue driver's disk: the parts are downloaded to publish them (44 GB free)",
            G1X_FREE_DISK_BYTES / row.archive,
        ),
        (
            "extractor's disk: Fargate's 20 GiB holds the Parquet file and the zip",
            FARGATE_EPHEMERAL_BYTES / row.extractor_disk,
        ),
        (
            "Glue run past MOVIEPIPE_GLUE_DEADLINE_SECONDS (1 h), 2 x G.1X",
            (GLUE_DEADLINE_SECONDS - GLUE_START_SECONDS) / glue_per_row,
        ),
        ("unzipper on Lambda at 1,024 MB and 900 s", LAMBDA_MAX_SECONDS * lambda_deployed / row.inflated),
        (
            "unzipper: MOVIEPIPE_MAX_UNZIPPED_BYTES (64 GiB), the bundle is quarantined",
            MAX_UNZIPPED_BYTES / row.inflated,
        ),
        (
            "extractor (0.5 vCPU) outlasts the hour and MOVIEPIPE_EXTRACT_LOCK_SECONDS (1 h)",
            3600 / row.extractor_seconds,
        ),
        ("unzipper on Lambda at 1,769 MB or more and 900 s", LAMBDA_MAX_SECONDS * lambda_full / row.inflated),
        (
            "Glue driver's publish step alone outlasts the 1 h deadline, any workers",
            GLUE_DEADLINE_SECONDS * GLUE_PUBLISH_BYTES_PER_SECOND / row.archive,
        ),
        (
            "SQS: 12 h of visibility for one extractor message",
            SQS_MAX_VISIBILITY_SECONDS / row.extractor_seconds,
        ),
    ]
    found.sort(key=lambda item: item[1])
    return table(
        ["limit", "rows per extract", "times 5M"],
        [[label, count(rows), f"{rows / BASE_ROWS:,.2f}"] for label, rows in found],
    )


def throughput_table(m: Measured) -> str:
    """Extracts an hour (5M rows each) at which one task of a stage, or a setting, is full."""
    e = Extract(BASE_ROWS, m)
    found = [
        ("one loader task (it waits on the warehouse)", 3600 / e.loader_seconds),
        ("one X-Small warehouse, busy all hour", 3600 / e.warehouse_seconds),
        ("one transformer task (it waits on its Glue run)", 3600 / e.glue_seconds()),
        ("one extractor task", 3600 / e.extractor_seconds),
        (
            "GlueMaxConcurrentRuns 4, however many transformer tasks",
            GLUE_MAX_CONCURRENT_RUNS * 3600 / e.glue_seconds(),
        ),
        ("one unzipper task", 3600 / e.unzipper_seconds),
    ]
    found.sort(key=lambda item: item[1])
    return table(
        ["what is full", "extracts an hour", "times 10 an hour"],
        [[label, f"{per_hour:,.0f}", f"{per_hour / BASE_SOURCES:,.1f}"] for label, per_hour in found],
    )


def hour_table(m: Measured) -> str:
    spent = Extract(BASE_ROWS, m).task_seconds()
    rows = []
    for scale in SCALES:
        month = Month(scale, m)
        sized = month.tasks()
        capped = sized | {"transformer": min(sized["transformer"], GLUE_MAX_CONCURRENT_RUNS)}
        today = dict.fromkeys(spent, 1)
        rows.append(
            [f"{scale}x", f"{month.per_hour:,}"]
            + [duration(simulate_hour(month.per_hour, spent, s)) for s in (today, capped, sized)]
        )
    headers = [
        "scale",
        "extracts at :00",
        "one task each (the template today)",
        "tasks sized, Glue runs capped at 4",
        "tasks sized, Glue runs as needed",
    ]
    return table(headers, rows)


def main() -> None:
    bench = json.loads(BENCHMARKS.read_text())
    m = measured(bench)
    sections = [
        ("Measured inputs", inputs_table(m, bench)),
        ("One extract, by size", sizes_table(m)),
        ("Stage times per extract, by size", stage_table(m)),
        ("One extract of 5M rows: the arithmetic", per_extract_table(m)),
        ("A month at each scale: quantities", month_table(m)),
        ("A month at each scale: dollars", cost_table(m)),
        ("Limits by extract size", limits_table(m)),
        ("Limits by extracts an hour", throughput_table(m)),
        ("The hour, simulated: the last extract is loaded after", hour_table(m)),
    ]
    for title, body in sections:
        print(f"### {title}\n\n{body}\n")


if __name__ == "__main__":
    main()

"""Where the transform runs: DuckDB or a warm local Spark session in this process, or an AWS Glue job run.

Every runner takes a ``TransformJob`` (one processed extract) and leaves the same archive behind: part
files, then the archive manifest. ``MOVIEPIPE_TRANSFORM_RUNNER`` picks one: ``duckdb``, ``local``
(Spark), ``glue``, or ``auto`` (the default), which sends a batch of fewer rows than
``MOVIEPIPE_TRANSFORM_DUCKDB_MAX_ROWS`` to DuckDB and a larger one to Spark, started on first need.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from services.transformer import duckdb_job
from services.transformer.archive import S3Target, archive_prefix, publish_archive
from services.transformer.counts import TransformCounts
from services.transformer.exceptions import (
    BAD_INPUT_ERRORS,
    ArchiveIncomplete,
    GlueJobFailed,
    InputCorrupt,
    InputMissing,
    SparkJobFailed,
    StorageUnavailable,
)
from services.transformer.glue_assets import GLUE_VERSION, AssetUploader, GlueAssets
from services.transformer.settings import TransformerSettings
from services.transformer.spark_conf import GLUE_CONF_ARGUMENT, LAUNCH_CONF, SPARK_CONF
from shared.aws import DOWNLOADS, client, is_missing
from shared.logs import log_event
from shared.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestInvalid,
    StreamDigest,
    parse_manifest,
    read_chunks,
)
from shared.schema import MOVIE_FIELDS, Field, field_names
from shared.transform import DEFAULT_MIN_VOTES, DEFAULT_YEAR_HORIZON

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransformJob:
    """One processed extract to transform, and where its archive goes."""

    extract_id: str
    source: str
    extracted_at: str
    extracted: int
    """Rows the processed manifest says were extracted; the transform must read exactly these."""
    input_bucket: str
    input_key: str
    """``movies.csv`` in the processed bucket."""
    input_hash: str | None
    input_bytes: int | None
    archive_bucket: str
    extract_kind: str = "full"
    """``full`` or ``incremental``, from the extract's manifest; the archive manifest carries it on."""

    @property
    def input_uri(self) -> str:
        return f"s3://{self.input_bucket}/{self.input_key}"

    @property
    def archive_prefix(self) -> str:
        return archive_prefix(self.source, self.extract_id)

    @property
    def archive_uri(self) -> str:
        return f"s3://{self.archive_bucket}/{self.archive_prefix}"

    @property
    def manifest_uri(self) -> str:
        return f"{self.archive_uri}/{MANIFEST_NAME}"


@dataclass(frozen=True)
class TransformResult:
    """What a finished transform left in the archive."""

    counts: TransformCounts
    manifest: Manifest
    manifest_uri: str


class TransformRunner(Protocol):
    """Runs the transform of one extract, wherever Spark is."""

    def run(self, job: TransformJob) -> TransformResult:
        """Transform the extract and commit its archive; ``BadInput`` if it never can be."""
        ...

    def warm_up(self) -> None:
        """Get ready for the first job (start Spark); may take seconds."""
        ...

    def check(self) -> None:
        """Raise unless the runner can take a job now (for ``/ready``)."""
        ...


# -- local Spark ------------------------------------------------------------------------------


def local_spark_session(master: str = "local[2]", shuffle_partitions: int = 2) -> Any:
    """A local Spark session set up as the job expects (and fast to start: no UI)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.appName("moviepipe-transformer")
        .master(master)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in {**SPARK_CONF, **LAUNCH_CONF}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


WARM_UP_ROWS = 100
"""Rows of the synthetic extract the warm-up transforms: enough to load and compile the job's code."""


def warm_up_csv(rows: int = WARM_UP_ROWS) -> str:
    """A valid ``movies.csv`` of ``rows`` distinct movies, every value derived from the field rules."""

    def value(field: Field, number: int) -> str:
        if field.kind == "string":
            return f"warm-up {number}" if field.required else ""
        if field.kind == "boolean":
            return "0"
        lowest = field.minimum if field.minimum is not None else 0
        return str(int(lowest)) if field.kind == "integer" else str(float(lowest))

    lines = [",".join(field_names())]
    lines += [",".join(value(field, number) for field in MOVIE_FIELDS) for number in range(rows)]
    return "\n".join(lines) + "\n"


class StagedRunner:
    """Runs the transform in this process, staging files between S3 and local disk.

    It downloads ``movies.csv``, lets its engine read and write local files, and uploads the archive
    with boto3, manifest last. A subclass says how the engine transforms (``_transform``).
    """

    engine = "in-process"

    def __init__(self, settings: TransformerSettings):
        self.settings = settings
        # One job at a time per engine: a warm-up and the first extract must not overlap.
        self._job_lock = threading.Lock()

    def run(self, job: TransformJob) -> TransformResult:
        s3 = client("s3", self.settings)
        with tempfile.TemporaryDirectory(prefix=f"moviepipe-transform-{job.extract_id}-") as tmp:
            work = Path(tmp)
            movies = work / "movies.csv"
            stage_input(s3, job, movies)
            output = work / "archive"
            started = time.monotonic()
            with self._job_lock:
                counts = self._transform(job, movies, output)
            log_event(
                logger,
                "transform_engine_finished",
                extract_id=job.extract_id,
                engine=self.engine,
                seconds=round(time.monotonic() - started, 3),
            )
            manifest = publish_archive(
                output,
                S3Target(s3, job.archive_bucket, job.archive_prefix),
                extract_id=job.extract_id,
                source=job.source,
                extracted_at=job.extracted_at,
                row_counts=counts.as_dict(),
                extract_kind=job.extract_kind,
            )
        return TransformResult(counts=counts, manifest=manifest, manifest_uri=job.manifest_uri)

    def _transform(self, job: TransformJob, movies: Path, output: Path) -> TransformCounts:
        raise NotImplementedError


class DuckDBRunner(StagedRunner):
    """Runs the transform with DuckDB in this process: no session to start, milliseconds per batch."""

    engine = "duckdb"

    def warm_up(self) -> None:
        """Transform synthetic rows once, so the first extract finds the SQL transpiled and DuckDB loaded."""
        with self._job_lock, tempfile.TemporaryDirectory(prefix="moviepipe-warm-up-") as tmp:
            movies = Path(tmp) / "movies.csv"
            movies.write_text(warm_up_csv())
            duckdb_job.transform(
                input_path=movies, extract_id="warm-up", expected_rows=WARM_UP_ROWS, output=Path(tmp) / "out"
            )

    def check(self) -> None:
        """DuckDB runs in this process: ready whenever the process is."""

    def _transform(self, job: TransformJob, movies: Path, output: Path) -> TransformCounts:
        return duckdb_job.transform(
            input_path=movies,
            extract_id=job.extract_id,
            expected_rows=job.extracted,
            output=output,
            extracted_at=job.extracted_at,
            **self.settings.rule_options(),
        )


def require_pyspark() -> None:
    """Refuse, with what to do, where pyspark is not installed (the ``moviepipe:app`` image)."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        raise RuntimeError(
            "the local Spark runner needs pyspark, which is not installed here: use the moviepipe:spark "
            "image (or `pip install .[spark]`), or send large batches to Glue "
            "(MOVIEPIPE_TRANSFORM_LARGE_RUNNER=glue) or every batch to DuckDB "
            "(MOVIEPIPE_TRANSFORM_RUNNER=duckdb)"
        )


class LocalSparkRunner(StagedRunner):
    """Runs the job on one long-lived Spark session, started on first use (or by ``warm_up``).

    Spark's s3a connector is not available locally, so files are staged (``StagedRunner``). pyspark is
    imported when the runner is made: a transformer without it refuses to start rather than fail its
    first large batch.
    """

    engine = "spark"

    def __init__(self, settings: TransformerSettings, spark: Any = None):
        require_pyspark()
        super().__init__(settings)
        self._spark = spark
        self._session_lock = threading.Lock()
        self._state = "not started"

    @property
    def spark(self) -> Any:
        with self._session_lock:
            if self._spark is not None and not session_alive(self._spark):
                # Its JVM died (killed, or out of memory): a session on a dead JVM fails every job, so
                # every batch after it would go to the dead-letter queue. A new one is started.
                log_event(logger, "spark_session_lost", level=logging.WARNING)
                forget_session(self._spark)
                self._spark = None
            if self._spark is None:
                started = time.monotonic()
                self._spark = local_spark_session(
                    self.settings.spark_master, self.settings.spark_shuffle_partitions
                )
                log_event(logger, "spark_started", seconds=round(time.monotonic() - started, 2))
            return self._spark

    def warm_up(self) -> None:
        """Start the session and run the job once on synthetic rows, so the first extract finds Spark warm."""
        from services.transformer.glue_job import transform

        self._state = "warming up"
        try:
            with self._job_lock, tempfile.TemporaryDirectory(prefix="moviepipe-warm-up-") as tmp:
                movies = Path(tmp) / "movies.csv"
                movies.write_text(warm_up_csv())
                output = (Path(tmp) / "out").as_uri()
                transform(
                    self.spark,
                    input_path=str(movies),
                    extract_id="warm-up",
                    expected_rows=WARM_UP_ROWS,
                    output=output,
                )
        except Exception as exc:
            self._state = f"warm-up failed: {exc}"
            raise
        self._state = "warm"
        log_event(logger, "spark_warm")

    def check(self) -> None:
        if self._spark is None or self._state != "warm":
            raise RuntimeError(f"Spark session {self._state}")
        if self._spark.sparkContext._jsc.sc().isStopped():
            raise RuntimeError("Spark session stopped")

    def _transform(self, job: TransformJob, movies: Path, output: Path) -> TransformCounts:
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        from services.transformer.glue_job import transform

        try:
            return transform(
                self.spark,
                input_path=str(movies),
                extract_id=job.extract_id,
                expected_rows=job.extracted,
                output=output.as_uri(),
                extracted_at=job.extracted_at,
                **self.settings.rule_options(),
            )
        except (PySparkException, Py4JError) as exc:
            raise SparkJobFailed(f"Spark job for extract {job.extract_id} failed: {exc}") from exc


def session_alive(spark: Any) -> bool:
    """Whether the session's JVM still answers and its context is not stopped."""
    try:
        return not spark.sparkContext._jsc.sc().isStopped()
    except Exception:  # the gateway refuses the connection, or the call fails: the JVM is gone
        return False


def forget_session(spark: Any) -> None:
    """Let go of a session whose JVM is gone, so that the next one launches a JVM of its own.

    pyspark keeps the session, its context and the JVM gateway in class attributes and would hand the dead
    ones back; stopping is tried, and they are cleared whatever it does.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with contextlib.suppress(Exception):
        spark.stop()
    gateway = SparkContext._gateway
    if gateway is not None:
        with contextlib.suppress(Exception):
            gateway.shutdown()
        with contextlib.suppress(Exception):
            gateway.proc.kill()
    SparkContext._gateway = None
    SparkContext._jvm = None
    SparkContext._active_spark_context = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None


class AutoRunner:
    """DuckDB for a batch of fewer rows than ``transform_duckdb_max_rows``, Spark for a larger one:
    the warm local session, or a Glue job run where ``transform_large_runner`` is ``glue``.

    Only DuckDB is warmed up: Spark's session starts when the first large batch comes, so a stack that
    only sees small batches never pays for it.
    """

    def __init__(self, settings: TransformerSettings, spark: Any = None):
        self.settings = settings
        self.duckdb = DuckDBRunner(settings)
        self.spark: LocalSparkRunner | GlueRunner = (
            GlueRunner(settings)
            if settings.transform_large_runner == "glue"
            else LocalSparkRunner(settings, spark=spark)
        )

    def runner_for(self, job: TransformJob) -> TransformRunner:
        return self.duckdb if job.extracted < self.settings.transform_duckdb_max_rows else self.spark

    def run(self, job: TransformJob) -> TransformResult:
        return self.runner_for(job).run(job)

    def warm_up(self) -> None:
        self.duckdb.warm_up()

    def check(self) -> None:
        self.duckdb.check()


def stage_input(s3: Any, job: TransformJob, destination: Path) -> None:
    """Download ``movies.csv`` and check it is the file the manifest vouches for."""
    try:
        s3.download_file(job.input_bucket, job.input_key, str(destination), Config=DOWNLOADS)
    except ClientError as exc:
        if is_missing(exc):
            raise InputMissing(f"{job.input_uri} does not exist") from exc
        raise StorageUnavailable(f"could not download {job.input_uri}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"could not download {job.input_uri}: {exc}") from exc
    digest, size, not_utf8 = read_checked(destination)
    if job.input_bytes is not None and size != job.input_bytes:
        raise InputCorrupt(f"{job.input_uri} has {size} bytes, the manifest vouches for {job.input_bytes}")
    if job.input_hash and digest != job.input_hash:
        raise InputCorrupt(f"{job.input_uri} hashes to {digest}, the manifest vouches for another hash")
    if not_utf8:
        raise InputCorrupt(f"{job.input_uri} is not UTF-8: {not_utf8}")


def read_checked(path: Path) -> tuple[str, int, str | None]:
    """The file's hash and size, and why it is not UTF-8 (None if it is), in one pass over it.

    A file that is not UTF-8 (a Latin-1 file dropped into processed by hand) would be read by every
    engine with replacement characters, and loaded as data.
    """
    digest = StreamDigest()
    decoder = codecs.getincrementaldecoder("utf-8")()
    problem = None
    with path.open("rb") as handle:
        for chunk in read_chunks(handle):
            digest.update(chunk)
            if problem is not None:
                continue
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:  # exc.object: the bytes held back, then this chunk
                offset = digest.bytes - len(chunk) - pending + exc.start
                problem = f"byte 0x{exc.object[exc.start]:02x} at offset {offset:,} ({exc.reason})"
    if problem is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            problem = "it ends inside a character"
    return digest.hash, digest.bytes, problem


# -- AWS Glue -------------------------------------------------------------------------------------

GLUE_RUNNING = ("STARTING", "RUNNING", "STOPPING", "WAITING")
GLUE_FAILED = ("FAILED", "ERROR", "TIMEOUT", "STOPPED", "EXPIRED")
GLUE_GOING = ("STARTING", "RUNNING", "WAITING")
RECENT_RUNS = 200
"""How many of a job's newest runs are searched for one of the same extract still going."""
_BAD_INPUT_CODE = re.compile(r"\b(" + "|".join(BAD_INPUT_ERRORS) + r"): (.*)", re.DOTALL)


def glue_arguments(
    job: TransformJob,
    year_horizon: int = DEFAULT_YEAR_HORIZON,
    min_votes: int = DEFAULT_MIN_VOTES,
    mean_rating: float | None = None,
) -> dict[str, str]:
    """The job run's arguments, as ``glue_job.parse_args`` reads them."""
    return {
        "--input_path": job.input_uri,
        "--output_path": job.archive_uri,
        "--extract_id": job.extract_id,
        "--source": job.source,
        "--extracted_at": job.extracted_at,
        "--expected_rows": str(job.extracted),
        "--extract_kind": job.extract_kind,
        "--year_horizon": str(year_horizon),
        "--min_votes": str(min_votes),
        "--mean_rating": "batch" if mean_rating is None else repr(float(mean_rating)),
    }


def glue_run_error(job_name: str, run_id: str, state: str, message: str) -> Exception:
    """The error a failed run stands for: the bad input the job reported, else ``GlueJobFailed``."""
    found = _BAD_INPUT_CODE.search(message or "")
    if found:
        return BAD_INPUT_ERRORS[found.group(1)](found.group(2).strip())
    return GlueJobFailed(f"Glue job {job_name} run {run_id} ended {state}: {message or 'no message'}")


class GlueRunner:
    """Starts one AWS Glue job run per extract and waits for it; the job writes the archive itself.

    Before the first run it uploads the job's code (``glue_assets``: once per version) and, where
    ``glue_role_arn`` is set, creates the job if it is missing. A run of the same extract still going
    (a redelivered message, a transformer restarted mid-wait) is followed, not started twice. The run is
    looked at after ``glue_first_poll_seconds``, then less and less often up to ``glue_poll_seconds``;
    past ``glue_deadline_seconds`` it is asked to stop and fails.
    """

    def __init__(
        self,
        settings: TransformerSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self.assets = AssetUploader(settings, settings.glue_assets_location)

    def run(self, job: TransformJob) -> TransformResult:
        glue = client("glue", self.settings)
        name = self.settings.glue_job
        try:
            assets = self.assets.ensure(client("s3", self.settings))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(
                f"could not upload the Glue job's code to {self.settings.glue_assets_location}: {exc}"
            ) from exc
        try:
            self._ensure_job(glue, assets)
            run_id = self._running_run(glue, job) or self._start(glue, job, assets)
            self._wait(glue, job, run_id)
        except (ClientError, BotoCoreError) as exc:
            raise GlueJobFailed(f"Glue job {name} for extract {job.extract_id}: {exc}") from exc
        manifest = self._archive_manifest(job)
        return TransformResult(
            counts=TransformCounts.from_dict(manifest.row_counts),
            manifest=manifest,
            manifest_uri=job.manifest_uri,
        )

    def _ensure_job(self, glue: Any, assets: GlueAssets) -> None:
        name = self.settings.glue_job
        try:
            found = glue.get_job(JobName=name)["Job"]
        except glue.exceptions.EntityNotFoundException:
            if not self.settings.glue_role_arn:
                raise GlueJobFailed(
                    f"the Glue job {name} does not exist: deploy it (deploy/aws) or set "
                    "MOVIEPIPE_GLUE_ROLE_ARN to let the transformer create it"
                ) from None
            glue.create_job(
                Name=name,
                Role=self.settings.glue_role_arn,
                Command={"Name": "glueetl", "ScriptLocation": assets.script_location, "PythonVersion": "3"},
                GlueVersion=GLUE_VERSION,
                WorkerType=self.settings.glue_worker_type,
                NumberOfWorkers=self.settings.glue_workers,
                DefaultArguments={"--job-language": "python", "--conf": GLUE_CONF_ARGUMENT},
            )
            log_event(logger, "glue_job_created", job_name=name, script=assets.script_location)
            return
        script = found.get("Command", {}).get("ScriptLocation")
        if script != assets.script_location:
            log_event(
                logger,
                "glue_job_script_elsewhere",
                f"the Glue job runs {script}, not {assets.script_location}: it must import the job "
                "from --extra-py-files as glue_entry.py does",
                level=logging.WARNING,
                job_name=name,
            )

    def _running_run(self, glue: Any, job: TransformJob) -> str | None:
        """A run of this extract that has not finished (started by an earlier delivery), if any.

        Glue lists a job's runs newest first; a run still going is among the latest, so only those are
        read, not the job's whole history (one page per extract on the hot path).
        """
        pages = glue.get_paginator("get_job_runs").paginate(
            JobName=self.settings.glue_job,
            PaginationConfig={"MaxItems": RECENT_RUNS, "PageSize": RECENT_RUNS},
        )
        for page in pages:
            for run in page.get("JobRuns", []):
                same = (run.get("Arguments") or {}).get("--extract_id") == job.extract_id
                if same and run.get("JobRunState") in GLUE_GOING:
                    log_event(logger, "glue_run_followed", extract_id=job.extract_id, run_id=run["Id"])
                    return run["Id"]
        return None

    def _start(self, glue: Any, job: TransformJob, assets: GlueAssets) -> str:
        arguments = {**assets.run_arguments(), **glue_arguments(job, **self.settings.rule_options())}
        run_id = glue.start_job_run(JobName=self.settings.glue_job, Arguments=arguments)["JobRunId"]
        log_event(
            logger,
            "glue_job_started",
            extract_id=job.extract_id,
            job_name=self.settings.glue_job,
            run_id=run_id,
            version=assets.version,
        )
        return run_id

    def _wait(self, glue: Any, job: TransformJob, run_id: str) -> None:
        name = self.settings.glue_job
        deadline = self.clock() + self.settings.glue_deadline_seconds
        delay = self.settings.glue_first_poll_seconds
        while True:
            run = glue.get_job_run(JobName=name, RunId=run_id, PredecessorsIncluded=False)["JobRun"]
            state = run["JobRunState"]
            if state == "SUCCEEDED":
                return
            if state in GLUE_FAILED:
                raise glue_run_error(name, run_id, state, run.get("ErrorMessage", ""))
            if self.clock() + delay > deadline:
                self._stop(glue, run_id)
                raise GlueJobFailed(
                    f"Glue job {name} run {run_id} was still {state} after "
                    f"{self.settings.glue_deadline_seconds:.0f}s (MOVIEPIPE_GLUE_DEADLINE_SECONDS); "
                    "asked Glue to stop it"
                )
            self.sleep(delay)
            delay = min(delay * 2, self.settings.glue_poll_seconds)

    def _stop(self, glue: Any, run_id: str) -> None:
        try:
            glue.batch_stop_job_run(JobName=self.settings.glue_job, JobRunIds=[run_id])
        except Exception as exc:  # the run is failed either way; stopping it only saves its cost
            log_event(logger, "glue_run_not_stopped", str(exc), level=logging.WARNING, run_id=run_id)

    def warm_up(self) -> None:
        """Nothing to warm: Glue starts a cluster per run."""

    def check(self) -> None:
        client("glue", self.settings).get_job(JobName=self.settings.glue_job)

    def _archive_manifest(self, job: TransformJob) -> Manifest:
        key = f"{job.archive_prefix}/{MANIFEST_NAME}"
        try:
            body = client("s3", self.settings).get_object(Bucket=job.archive_bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing(exc):
                raise ArchiveIncomplete(f"the Glue run succeeded but wrote no {job.manifest_uri}") from exc
            raise StorageUnavailable(f"could not read {job.manifest_uri}: {exc}") from exc
        try:
            return parse_manifest(body)
        except ManifestInvalid as exc:
            raise ArchiveIncomplete(f"the Glue run wrote an invalid {job.manifest_uri}: {exc}") from exc


def make_runner(settings: TransformerSettings, spark: Any = None) -> TransformRunner:
    """The runner the settings ask for (``MOVIEPIPE_TRANSFORM_RUNNER``)."""
    if settings.transform_runner == "glue":
        return GlueRunner(settings)
    if settings.transform_runner == "duckdb":
        return DuckDBRunner(settings)
    if settings.transform_runner == "local":
        return LocalSparkRunner(settings, spark=spark)
    return AutoRunner(settings, spark=spark)

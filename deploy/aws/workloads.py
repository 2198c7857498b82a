"""The services the template runs, and what each may touch: read from their code, declared once here.

Every grant below is something the service's code does (the module that does it is named beside it);
the IAM policies, and the test that checks them, are built from this list. ``settings`` is
``Settings(prefix="${Prefix}")`` when the template is built, so names are ``!Sub`` strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.aws.intrinsics import ref, sub
from services.transformer.catalog import SYMLINK_PREFIX, Catalog
from services.transformer.glue_assets import split_location
from services.transformer.settings import TransformerSettings
from shared.settings import STAGES, Settings

READ, WRITE, DELETE = "read", "write", "delete"
"""Access to a bucket (objects read and listed; objects written, multipart uploads included; objects
deleted) or to a table (described, read and queried; items put, updated and deleted)."""
CONSUME, SEND, WATCH = "consume", "send", "watch"
"""Access to a queue: receive and delete its messages; send to it; read its depth."""

API_TOKEN, WAREHOUSE = "api_token", "warehouse"
"""The secrets a service may be given: the extractor API's bearer token; the Snowflake credentials."""


@dataclass(frozen=True)
class BucketGrant:
    bucket: str
    access: str
    keys: tuple[str, ...] = ("*",)
    """Key patterns the access is limited to (``!Sub`` text: ``${GlueAssetsPrefix}/*``)."""


@dataclass(frozen=True)
class QueueGrant:
    queue: str
    access: str


@dataclass(frozen=True)
class TableGrant:
    table: str
    access: str


@dataclass(frozen=True)
class Grants:
    """Everything one principal may touch; nothing else."""

    buckets: tuple[BucketGrant, ...] = ()
    queues: tuple[QueueGrant, ...] = ()
    tables: tuple[TableGrant, ...] = ()
    topics: tuple[str, ...] = ()
    """Topics it publishes alerts to (``shared.alerts`` finds the ARN from the name and the account)."""
    glue_jobs: tuple[str, ...] = ()
    """Glue jobs whose runs it starts, follows and stops (``services/transformer/runner.py``)."""
    glue_databases: tuple[str, ...] = ()
    """Catalog databases whose tables and partitions it creates and updates (``catalog.py``)."""


@dataclass(frozen=True)
class Service:
    """One long-running FastAPI service on ECS: its size, its grants, its secrets, its own settings."""

    name: str
    cpu: int
    memory: int
    grants: Grants
    secrets: tuple[str, ...] = ()
    load_balanced: bool = False
    """Reachable through the internal load balancer, on a listener at its own port."""
    environment: tuple[tuple[str, object], ...] = ()
    """Settings of its own, as (settings field, value): checked against its settings class."""


def _consumer(settings: Settings, stage: str) -> tuple[QueueGrant, ...]:
    """``shared/consumer.py``: the stage's queue consumed, its dead-letter queue's depth read."""
    return (QueueGrant(settings.queue(stage), CONSUME), QueueGrant(settings.dead_letter_queue(stage), WATCH))


def _both(bucket: str, keys: tuple[str, ...] = ("*",)) -> tuple[BucketGrant, ...]:
    """Read and write: a stage checks what it wrote before (a replay), or reads a ``reason.json`` back."""
    return (BucketGrant(bucket, READ), BucketGrant(bucket, WRITE, keys))


def _alert_claims(settings: Settings) -> TableGrant:
    """``shared/alerts.py``: an alert is claimed once in the alerts table, then published to the topic."""
    return TableGrant(settings.alerts_table, WRITE)


def _progress(settings: Settings) -> tuple[TableGrant, ...]:
    """``shared/progress.py``: each extract's record, read and updated by every stage."""
    return (TableGrant(settings.extracts_table, READ), TableGrant(settings.extracts_table, WRITE))


def glue_assets(settings: Settings) -> tuple[str, str]:
    """The bucket and default key prefix of the Glue job's code, as the transformer uploads it."""
    return split_location(TransformerSettings.model_construct(prefix=settings.prefix).glue_assets_location)


def glue_job_name(settings: Settings) -> str:
    return TransformerSettings.model_construct(prefix=settings.prefix).glue_job


def glue_database(settings: Settings) -> str:
    return Catalog(settings).database


def extractor(settings: Settings) -> Service:
    grants = Grants(
        # extract.py: a bundle already landed is found by a HEAD, else uploaded.
        buckets=_both(settings.bucket("landing")),
        # routes/extracts.py queues each request; the consumer runs it.
        queues=(QueueGrant(settings.queue("extractor"), SEND), *_consumer(settings, "extractor")),
        tables=(
            *_progress(settings),
            # state.py: each source's high-water mark and the extract running it.
            TableGrant(settings.sources_table, READ),
            TableGrant(settings.sources_table, WRITE),
            _alert_claims(settings),
        ),
        topics=(settings.alerts_topic,),
    )
    return Service("extractor", cpu=512, memory=2048, grants=grants, secrets=(API_TOKEN,), load_balanced=True)


def unzipper_grants(settings: Settings) -> Grants:
    """The unzipper's grants, the same on ECS and on Lambda."""
    return Grants(
        buckets=(
            # unzip.py, shared/s3stream.py: ranged reads of the bundle; shared/quarantine.py copies it.
            BucketGrant(settings.bucket("landing"), READ),
            # processed.py: data files streamed in parts, the manifest last; a replay reads it back.
            *_both(settings.bucket("processed")),
            *_both(settings.bucket("quarantine")),
        ),
        queues=_consumer(settings, "unzipper"),
        tables=(
            *_progress(settings),
            # idempotency.py: Powertools' records, one per bundle version.
            TableGrant(settings.idempotency_table, READ),
            TableGrant(settings.idempotency_table, WRITE),
            _alert_claims(settings),
        ),
        topics=(settings.alerts_topic,),
    )


def unzipper(settings: Settings) -> Service:
    return Service("unzipper", cpu=512, memory=1024, grants=unzipper_grants(settings))


def transformer(settings: Settings) -> Service:
    processed = settings.bucket("processed")
    grants = Grants(
        buckets=(
            # processed.py reads the manifest and movies.csv; it writes only the Glue job's code
            # (glue_assets.py) and the catalog's symlink files (catalog.py) there.
            BucketGrant(processed, READ),
            BucketGrant(processed, WRITE, ("${GlueAssetsPrefix}/*", f"{SYMLINK_PREFIX}/*")),
            # archive.py: DuckDB's archive published; runner.py reads a Glue run's manifest.
            *_both(settings.bucket("archive")),
            *_both(settings.bucket("quarantine")),
        ),
        queues=_consumer(settings, "transformer"),
        tables=(*_progress(settings), _alert_claims(settings)),
        topics=(settings.alerts_topic,),
        glue_jobs=(glue_job_name(settings),),
        glue_databases=(glue_database(settings),),
    )
    environment = (
        ("transform_large_runner", "glue"),
        ("glue_job_name", ref("GlueJob")),
        ("glue_assets", sub(f"s3://{processed}/${{GlueAssetsPrefix}}")),
    )
    return Service("transformer", cpu=1024, memory=4096, grants=grants, environment=environment)


def loader(settings: Settings) -> Service:
    grants = Grants(
        # bundle.py reads the archive manifest and checks each part; Snowflake itself reads the
        # archive through its storage integration (the role in deploy/snowflake), not through this one.
        buckets=(BucketGrant(settings.bucket("archive"), READ), *_both(settings.bucket("quarantine"))),
        queues=_consumer(settings, "loader"),
        tables=(*_progress(settings), _alert_claims(settings)),
        topics=(settings.alerts_topic,),
    )
    environment = (("archive_storage_integration", ref("SnowflakeStorageIntegration")),)
    return Service(
        "loader", cpu=512, memory=1024, grants=grants, secrets=(WAREHOUSE,), environment=environment
    )


def dashboard(settings: Settings) -> Service:
    grants = Grants(
        # pipeline.py: quarantined bundles' reason.json, every stage's DLQ depth, extracts and alerts.
        buckets=(BucketGrant(settings.bucket("quarantine"), READ),),
        queues=tuple(QueueGrant(settings.dead_letter_queue(stage), WATCH) for stage in STAGES),
        tables=(TableGrant(settings.extracts_table, READ), TableGrant(settings.alerts_table, READ)),
    )
    return Service("dashboard", cpu=512, memory=1024, grants=grants, secrets=(WAREHOUSE,), load_balanced=True)


def services(settings: Settings) -> tuple[Service, ...]:
    """Every service, in the order the pipeline runs them."""
    return (
        extractor(settings),
        unzipper(settings),
        transformer(settings),
        loader(settings),
        dashboard(settings),
    )


def glue_job_grants(settings: Settings) -> Grants:
    """The Glue job run (``glue_job.py``): movies.csv and its own code from processed; the archive
    written by Spark beside its final place (``_spark/``), published, and the scratch deleted."""
    archive = settings.bucket("archive")
    return Grants(
        buckets=(
            BucketGrant(settings.bucket("processed"), READ),
            *_both(archive),
            BucketGrant(archive, DELETE),
        )
    )


def snowflake_grants(settings: Settings) -> Grants:
    """The role Snowflake's storage integration assumes: the archive, read (``deploy/snowflake``)."""
    return Grants(buckets=(BucketGrant(settings.bucket("archive"), READ),))

"""The transformer's Lambda-style entry point: one processed ``manifest.json`` in, one archive out.

``handler(event, context)`` accepts an S3 notification or an SQS event wrapping them (see
``shared.batch``). Per extract: skip it if its archive (or quarantine) is already there, so a replayed
event changes nothing; check the input cheaply; run the Spark job; record progress. Bad input is
quarantined and alerted once, and the message succeeds (retrying cannot help). Anything else is raised,
so the message is retried and, after repeated failure, dead-lettered.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.transformer.catalog import Catalog
from services.transformer.exceptions import BadInput, GlueJobFailed, StorageUnavailable, UnexpectedKey
from services.transformer.metrics import METRICS
from services.transformer.processed import ProcessedExtract, prepare_job, read_manifest
from services.transformer.quarantine import FOLDER, refusal
from services.transformer.runner import TransformResult, TransformRunner, make_runner
from services.transformer.settings import TransformerSettings, transformer_settings
from shared.alerts import Alert, raise_alert
from shared.aws import client, object_exists
from shared.batch import Handler, s3_event_handler
from shared.events import ObjectCreated
from shared.logs import log_event
from shared.manifest import MANIFEST_NAME, parse_manifest
from shared.metrics import StageMetrics
from shared.progress import RUNNING, SUCCEEDED, ExtractProgress
from shared.quarantine import (
    already_quarantined,
    copy_into_quarantine,
    keep_manifest_folder,
    manifest_folder,
    quarantine,
    replay_command,
)
from shared.settings import Settings

logger = logging.getLogger(__name__)

STAGE = "transformer"


def transformer_metrics() -> StageMetrics:
    """The stage's Prometheus metrics; registered once per process."""
    return METRICS


class ExtractTransformer:
    """Transforms the processed extract a ``manifest.json`` notification points at."""

    def __init__(self, settings: TransformerSettings, runner: TransformRunner, metrics: StageMetrics):
        self.settings = settings
        self.runner = runner
        self.metrics = metrics
        self.progress = ExtractProgress(settings)
        self.catalog = Catalog(settings) if settings.glue_catalog else None

    def process(self, created: ObjectCreated) -> None:
        """Handle one created object; only an extract's processed manifest starts a transform."""
        if not created.key.endswith(MANIFEST_NAME):
            log_event(logger, "object_ignored", level=logging.DEBUG, key=created.key)
            return
        extract = ProcessedExtract.from_manifest_key(created.bucket, created.key)
        if extract is None:
            self._quarantine_stray(created)
            return
        if self._already_archived(extract) or self._already_quarantined(extract):
            self.metrics.extracts.labels("skipped").inc()
            return

        self.progress.record(extract.extract_id, STAGE, RUNNING, source=extract.source, processed=extract.uri)
        log_event(logger, "transform_started", extract_id=extract.extract_id, processed=extract.uri)
        started = time.monotonic()
        s3 = client("s3", self.settings)
        try:
            manifest = read_manifest(s3, extract)
            job = prepare_job(s3, extract, manifest, self.settings.bucket("archive"))
            result = self.runner.run(job)
        except BadInput as error:
            self._quarantine(s3, extract, error)
            return
        except Exception as exc:
            self.metrics.extracts.labels("failed").inc()
            log_event(
                logger,
                "transform_failed",
                str(exc),
                level=logging.ERROR,
                extract_id=extract.extract_id,
                error_code=getattr(exc, "code", type(exc).__name__),
            )
            if isinstance(exc, GlueJobFailed):
                self._alert_glue_failed(extract, exc)
            raise
        self.metrics.bytes.labels("in").inc(job.input_bytes or 0)
        self._register(extract)
        self._succeeded(extract, result, time.monotonic() - started)

    def _alert_glue_failed(self, extract: ProcessedExtract, error: GlueJobFailed) -> None:
        """A Glue run failing alerts once per extract; the message stays for retry (then the DLQ)."""
        raise_alert(
            self.settings,
            Alert(
                stage=STAGE,
                event="glue_run_failed",
                code=error.code,
                message=f"the Glue job run transforming extract {extract.extract_id} failed: {error.message}",
                extract_id=extract.extract_id,
                source=extract.source,
                evidence=f"the Glue job run's logs in CloudWatch (/aws-glue/jobs); input {extract.uri}",
                replay=replay_command(STAGE, extract.extract_id),
            ),
        )

    def _succeeded(self, extract: ProcessedExtract, result: TransformResult, seconds: float) -> None:
        counts = result.counts.as_dict()
        self.progress.record(
            extract.extract_id,
            STAGE,
            SUCCEEDED,
            counts=counts,
            archive=result.manifest_uri,
            seconds=round(seconds, 3),
        )
        for kind in ("extracted", "clean", "rejected", "duplicates"):
            self.metrics.rows.labels(kind).inc(counts[kind])
        self.metrics.bytes.labels("out").inc(sum(resource.bytes for resource in result.manifest.resources))
        self.metrics.extracts.labels("succeeded").inc()
        self.metrics.duration.observe(seconds)
        log_event(
            logger,
            "transform_succeeded",
            extract_id=extract.extract_id,
            counts=counts,
            archive=result.manifest_uri,
            seconds=round(seconds, 3),
        )

    def _already_archived(self, extract: ProcessedExtract) -> bool:
        """True if the extract's archive is committed; then its progress says so too.

        A replay records nothing new. Only if a crash came between committing the archive and recording
        success is the success recorded now, from the archive manifest, so the extract does not stay
        "running" forever.
        """
        archive = self.settings.bucket("archive")
        key = f"{extract.prefix}/{MANIFEST_NAME}"
        if not self._exists(archive, key):
            return False
        log_event(logger, "already_transformed", "already transformed", extract_id=extract.extract_id)
        stages = (self.progress.get(extract.extract_id) or {}).get("stages", {})
        if stages.get(STAGE, {}).get("status") != SUCCEEDED:
            self._register(extract)
            body = client("s3", self.settings).get_object(Bucket=archive, Key=key)["Body"].read()
            counts = parse_manifest(body).row_counts
            self.progress.record(
                extract.extract_id, STAGE, SUCCEEDED, counts=counts, archive=f"s3://{archive}/{key}"
            )
        return True

    def _register(self, extract: ProcessedExtract) -> None:
        """The archived extract in the Glue Data Catalog; a failure fails the message, and the retry
        (which finds the archive done) registers it before recording success."""
        if self.catalog is not None:
            self.catalog.register(extract.source, extract.extract_id)

    def _already_quarantined(self, extract: ProcessedExtract) -> bool:
        s3 = client("s3", self.settings)
        try:
            reason = already_quarantined(s3, self.settings, refusal(extract), progress=self.progress)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"could not read the quarantine of {extract.uri}: {exc}") from exc
        if reason is None:
            return False
        log_event(logger, "already_quarantined", "already quarantined", extract_id=extract.extract_id)
        return True

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            return object_exists(self.settings, bucket, key)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"could not look for s3://{bucket}/{key}: {exc}") from exc

    def _quarantine(self, s3: Any, extract: ProcessedExtract, error: BadInput) -> None:
        def keep(bucket: str, folder: str) -> list[str]:
            return copy_into_quarantine(s3, self.settings, extract.bucket, f"{extract.prefix}/", folder)

        where = quarantine(s3, self.settings, refusal(extract), error, keep, progress=self.progress)
        self.metrics.extracts.labels("quarantined").inc()
        log_event(
            logger,
            "extract_quarantined",
            str(error),
            level=logging.WARNING,
            extract_id=extract.extract_id,
            error_code=error.code,
            quarantine=where,
        )

    def _quarantine_stray(self, created: ObjectCreated) -> None:
        """A manifest where no extract's can be (put there by hand, or by a tool that got the layout
        wrong): kept with its folder under ``transform/``, alerted once; nothing is transformed."""
        error = UnexpectedKey(
            "a manifest that is not at {source}/{extract_id}/manifest.json, where the unzipper publishes "
            "an extract's; nothing was transformed",
            where=created.uri,
        )
        refused = manifest_folder(STAGE, FOLDER, created.bucket, created.key)
        s3 = client("s3", self.settings)
        if already_quarantined(
            s3,
            self.settings,
            refused,
            progress=self.progress,
            same=lambda reason: reason.get("reason") == error.code,
        ):
            return
        keep = keep_manifest_folder(s3, self.settings, created.bucket, created.key)
        where = quarantine(s3, self.settings, refused, error, keep, progress=self.progress)
        self.metrics.extracts.labels("quarantined").inc()
        log_event(
            logger,
            "manifest_quarantined",
            str(error),
            level=logging.WARNING,
            error_code=error.code,
            quarantine=where,
        )


def make_handler(
    settings: Settings, runner: TransformRunner | None = None, metrics: StageMetrics | None = None
) -> Handler:
    """``handler(event, context)`` for these settings; the runner defaults to the one the settings pick."""
    own = transformer_settings(settings)
    transformer = ExtractTransformer(own, runner or make_runner(own), metrics or transformer_metrics())
    return s3_event_handler(transformer.process)


@functools.cache
def _default_handler() -> Handler:
    return make_handler(transformer_settings())


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda contract: settings from the environment, built on first use."""
    return _default_handler()(event, context)

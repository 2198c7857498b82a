"""Unzipping one landed bundle: download, validate against its manifest, publish to processed or quarantine.

Idempotent: a bundle already published (or quarantined) with the same hash is skipped, so duplicate and
replayed events, including the two a multipart upload yields, change nothing. Two events for the same
bundle handled at the same moment by two workers are not locked against each other: both would write
the same files, and the transformer may see manifest.json twice, which it must (and does) tolerate.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from services.unzipper import STAGE
from services.unzipper.exceptions import BadBundle, Reason, UnrecognisedKey
from services.unzipper.locations import BUNDLE_SUFFIX, LandedBundle
from services.unzipper.metrics import METRICS
from services.unzipper.processed import already_unzipped, publish
from services.unzipper.quarantine import already_quarantined, quarantine
from services.unzipper.settings import unzipper_settings
from services.unzipper.validate import ValidBundle, validate_bundle
from shared.aws import client, is_missing
from shared.events import ObjectCreated
from shared.logs import log_event
from shared.manifest import file_digest
from shared.progress import QUARANTINED, RUNNING, SKIPPED, SUCCEEDED, ExtractProgress
from shared.settings import Settings

logger = logging.getLogger(__name__)

UNZIPPED = "unzipped"
IGNORED = "ignored"
GONE = "gone"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class UnzipOutcome:
    """What became of one landed object."""

    outcome: str  # unzipped | skipped | quarantined | ignored | gone
    bundle: LandedBundle
    rows: int = 0
    reason: Reason | None = None
    location: str | None = None


class Unzipper:
    """Unzips landed bundles for one deployment (settings)."""

    def __init__(self, settings: Settings, *, progress: ExtractProgress | None = None):
        self.settings = unzipper_settings(settings)
        self.progress = progress or ExtractProgress(self.settings)

    @property
    def s3(self) -> Any:
        return client("s3", self.settings)

    def unzip(self, created: ObjectCreated) -> UnzipOutcome:
        """Handle one created object; raises only for failures a retry may cure."""
        bundle = LandedBundle.at(created.bucket, created.key)
        if not created.key.endswith(BUNDLE_SUFFIX):
            log_event(logger, "object_ignored", level=logging.DEBUG, bundle=bundle.uri)
            return UnzipOutcome(IGNORED, bundle)
        with tempfile.TemporaryDirectory(prefix="unzip-") as work_dir:
            work = Path(work_dir)
            zip_path = work / "bundle.zip"
            if not self._download(bundle, zip_path):
                log_event(
                    logger,
                    "bundle_gone",
                    level=logging.WARNING,
                    extract_id=bundle.extract_id,
                    bundle=bundle.uri,
                )
                return UnzipOutcome(GONE, bundle)
            bundle_hash, size = file_digest(zip_path)
            METRICS.bytes.labels("in").inc(size)
            if self._already_handled(bundle, bundle_hash):
                METRICS.bundles.labels(SKIPPED, "").inc()
                log_event(logger, "bundle_already_handled", extract_id=bundle.extract_id, bundle=bundle.uri)
                return UnzipOutcome(SKIPPED, bundle)
            return self._unzip(bundle, zip_path, work, bundle_hash=bundle_hash, size=size)

    def _already_handled(self, bundle: LandedBundle, bundle_hash: str) -> bool:
        """Whether this very bundle was published or quarantined before (a duplicate or replayed event)."""
        if bundle.recognised and already_unzipped(self.s3, self.settings, bundle, bundle_hash):
            return True
        return already_quarantined(self.s3, self.settings, self.progress, bundle, bundle_hash) is not None

    def _unzip(
        self, bundle: LandedBundle, zip_path: Path, work: Path, *, bundle_hash: str, size: int
    ) -> UnzipOutcome:
        started = time.perf_counter()
        if bundle.extract_id:
            self.progress.record(bundle.extract_id, STAGE, RUNNING, source=bundle.source, bundle=bundle.uri)
        try:
            valid = self._validate(bundle, zip_path, work / "files")
        except BadBundle as error:
            kept = quarantine(
                self.s3, self.settings, self.progress, bundle, zip_path, bundle_hash=bundle_hash, error=error
            )
            METRICS.bundles.labels(QUARANTINED, str(error.reason)).inc()
            METRICS.extracts.labels(QUARANTINED).inc()
            return UnzipOutcome(QUARANTINED, bundle, reason=error.reason, location=kept)

        manifest = publish(self.s3, self.settings, bundle, valid, bundle_hash=bundle_hash)
        rows = manifest.row_counts["extracted"]
        processed = bundle.processed_uri(self.settings)
        counts = {"extracted": rows, "files": len(valid.files)}
        self.progress.record(bundle.extract_id, STAGE, SUCCEEDED, counts=counts, processed=processed)
        seconds = time.perf_counter() - started
        METRICS.bundles.labels(UNZIPPED, "").inc()
        METRICS.extracts.labels(SUCCEEDED).inc()
        METRICS.rows.labels("unzipped").inc(rows)
        METRICS.bundle_bytes.inc(size)
        METRICS.bytes.labels("out").inc(sum(resource.bytes for resource in manifest.resources))
        METRICS.duration.observe(seconds)
        log_event(
            logger,
            "bundle_unzipped",
            f"extract {bundle.extract_id}: {rows} rows published to {processed}",
            extract_id=bundle.extract_id,
            rows=rows,
            files=len(valid.files),
            seconds=round(seconds, 3),
        )
        return UnzipOutcome(UNZIPPED, bundle, rows=rows, location=processed)

    def _validate(self, bundle: LandedBundle, zip_path: Path, directory: Path) -> ValidBundle:
        if bundle.extract_id is None or bundle.source is None:
            raise UnrecognisedKey(
                f"landing key {bundle.key!r} is not '{{source}}/{{extract_id}}.zip'", file=bundle.key
            )
        return validate_bundle(
            zip_path,
            directory,
            extract_id=bundle.extract_id,
            source=bundle.source,
            max_unzipped_bytes=self.settings.max_unzipped_bytes,
        )

    def _download(self, bundle: LandedBundle, target: Path) -> bool:
        """Fetch the bundle; False if it no longer exists (a missing bucket is an error, retried)."""
        try:
            body = self.s3.get_object(Bucket=bundle.bucket, Key=bundle.key)["Body"]
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise
        with target.open("wb") as out:
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
        return True

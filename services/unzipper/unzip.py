"""Unzipping one landed bundle: stream it from landing, validate it against its manifest as it inflates,
publish it to processed or quarantine it.

The bundle is never held whole, in memory or in ``/tmp``: it is read from S3 in ranges, each data file is
inflated, checked and uploaded in parts as it goes, and the uploads are committed only once every check
passed (an abandoned upload is invisible). Memory stays flat whatever the bundle's size.

Idempotent twice over. Powertools' idempotency record makes one run per bundle version (bucket, key,
ETag) however many workers get its event at once. Later replays are recognised from the result: the
published manifest or the quarantine's reason.json names the bundle's ETag and sha256, so a bundle already
published or quarantined changes nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from services.unzipper import STAGE
from services.unzipper.exceptions import BadBundle, Reason, UnrecognisedKey
from services.unzipper.idempotency import OncePerBundle
from services.unzipper.inflate import InflateLimits
from services.unzipper.locations import BUNDLE_SUFFIX, LandedBundle
from services.unzipper.metrics import METRICS
from services.unzipper.processed import already_unzipped, processed_sink, publish
from services.unzipper.quarantine import already_quarantined, quarantine
from services.unzipper.settings import unzipper_settings
from services.unzipper.validate import ValidBundle, validate_bundle
from shared.aws import client, is_missing
from shared.events import ObjectCreated
from shared.logs import log_event
from shared.progress import QUARANTINED, RUNNING, SKIPPED, SUCCEEDED, ExtractProgress
from shared.s3stream import S3ObjectReader
from shared.settings import Settings

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter: allocations at least this large get their own mapping, returned on free."""
MMAP_THRESHOLD_BYTES = 4 << 20
UNZIPPED = "unzipped"
IGNORED = "ignored"
GONE = "gone"


@dataclass(frozen=True)
class UnzipOutcome:
    """What became of one landed object."""

    outcome: str  # unzipped | skipped | quarantined | ignored | gone
    bundle: LandedBundle
    rows: int = 0
    reason: Reason | None = None
    location: str | None = None

    def stored(self) -> dict[str, Any]:
        """As the idempotency record keeps it."""
        return {"outcome": self.outcome, "rows": self.rows, "reason": self.reason, "location": self.location}


@dataclass(frozen=True)
class BundleVersion:
    """The landed object as it is now: its ETag and sha256 tell it from any other upload under its key."""

    etag: str
    hash: str | None = None

    def matches(self, record: dict[str, Any] | None) -> bool:
        """Whether a published manifest or a reason.json was written for this very bundle."""
        if record is None:
            return False
        if record.get("bundle_etag") == self.etag:
            return True
        return self.hash is not None and record.get("bundle_hash") == self.hash


def keep_large_buffers_apart() -> None:
    """Give upload parts their own memory mappings, so memory stays flat over a long bundle.

    glibc raises its mmap threshold each time a large block is freed, after which 8 MiB parts come from
    the heap and fragment it: a 1 GB bundle peaked at 173 MB RSS, 147 MB with the threshold fixed at
    4 MiB. Elsewhere than glibc this does nothing.
    """
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


class Unzipper:
    """Unzips landed bundles for one deployment (settings)."""

    def __init__(self, settings: Settings, *, progress: ExtractProgress | None = None):
        keep_large_buffers_apart()
        self.settings = unzipper_settings(settings)
        self.progress = progress or ExtractProgress(self.settings)
        self.once = OncePerBundle(self.settings)
        self.limits = InflateLimits(
            max_bytes=self.settings.max_unzipped_bytes, max_ratio=self.settings.max_unzip_ratio
        )

    @property
    def s3(self) -> Any:
        return client("s3", self.settings)

    def unzip(self, created: ObjectCreated) -> UnzipOutcome:
        """Handle one created object; raises only for failures a retry may cure."""
        bundle = LandedBundle.at(created.bucket, created.key)
        if not created.key.endswith(BUNDLE_SUFFIX):
            log_event(logger, "object_ignored", level=logging.DEBUG, bundle=bundle.uri)
            return UnzipOutcome(IGNORED, bundle)
        try:
            reader = S3ObjectReader.open(self.s3, bundle.bucket, bundle.key)
        except ClientError as exc:
            if not is_missing(exc):
                raise
            log_event(
                logger, "bundle_gone", level=logging.WARNING, extract_id=bundle.extract_id, bundle=bundle.uri
            )
            return UnzipOutcome(GONE, bundle)
        with reader:
            version = {"bucket": bundle.bucket, "key": bundle.key, "etag": reader.etag}
            stored, ran = self.once.run(version, lambda: self._unzip_once(bundle, reader).stored())
        if not ran:
            return self._skipped(bundle)
        return UnzipOutcome(
            stored["outcome"],
            bundle,
            rows=stored["rows"],
            reason=Reason(stored["reason"]) if stored["reason"] else None,
            location=stored["location"],
        )

    def _unzip_once(self, bundle: LandedBundle, reader: S3ObjectReader) -> UnzipOutcome:
        version = BundleVersion(reader.etag)
        if self._already_handled(bundle, version):
            return self._skipped(bundle)
        METRICS.bytes.labels("in").inc(reader.size)
        started = time.perf_counter()
        if bundle.extract_id:
            self.progress.record(bundle.extract_id, STAGE, RUNNING, source=bundle.source, bundle=bundle.uri)
        try:
            valid = self._validate(bundle, reader)
        except BadBundle as error:
            version = BundleVersion(reader.etag, reader.digest().hash)
            if self._already_handled(bundle, version):
                return self._skipped(bundle)
            kept = quarantine(
                self.s3,
                self.settings,
                self.progress,
                bundle,
                etag=version.etag,
                bundle_hash=version.hash,
                error=error,
            )
            METRICS.bundles.labels(QUARANTINED, str(error.reason)).inc()
            METRICS.extracts.labels(QUARANTINED).inc()
            return UnzipOutcome(QUARANTINED, bundle, reason=error.reason, location=kept)
        try:
            version = BundleVersion(reader.etag, reader.digest().hash)
            if self._already_handled(bundle, version):  # the same bytes, uploaded again
                valid.abort()
                return self._skipped(bundle)
            manifest = publish(
                self.s3, self.settings, bundle, valid, etag=version.etag, bundle_hash=version.hash
            )
        except BaseException:
            valid.abort()
            raise
        rows = manifest.row_counts["extracted"]
        processed = bundle.processed_uri(self.settings)
        counts = {"extracted": rows, "files": len(valid.sinks)}
        self.progress.record(bundle.extract_id, STAGE, SUCCEEDED, counts=counts, processed=processed)
        seconds = time.perf_counter() - started
        METRICS.bundles.labels(UNZIPPED, "").inc()
        METRICS.extracts.labels(SUCCEEDED).inc()
        METRICS.rows.labels("unzipped").inc(rows)
        METRICS.bundle_bytes.inc(reader.size)
        METRICS.bytes.labels("out").inc(sum(resource.bytes for resource in manifest.resources))
        METRICS.duration.observe(seconds)
        log_event(
            logger,
            "bundle_unzipped",
            f"extract {bundle.extract_id}: {rows} rows published to {processed}",
            extract_id=bundle.extract_id,
            rows=rows,
            files=len(valid.sinks),
            seconds=round(seconds, 3),
        )
        return UnzipOutcome(UNZIPPED, bundle, rows=rows, location=processed)

    def _skipped(self, bundle: LandedBundle) -> UnzipOutcome:
        METRICS.bundles.labels(SKIPPED, "").inc()
        log_event(logger, "bundle_already_handled", extract_id=bundle.extract_id, bundle=bundle.uri)
        return UnzipOutcome(SKIPPED, bundle)

    def _already_handled(self, bundle: LandedBundle, version: BundleVersion) -> bool:
        """Whether this very bundle was published or quarantined before (a duplicate or replayed event)."""
        if bundle.recognised and already_unzipped(self.s3, self.settings, bundle, version.matches):
            return True
        return already_quarantined(self.s3, self.settings, self.progress, bundle, version.matches) is not None

    def _validate(self, bundle: LandedBundle, reader: S3ObjectReader) -> ValidBundle:
        if bundle.extract_id is None or bundle.source is None:
            raise UnrecognisedKey(
                f"landing key {bundle.key!r} is not '{{source}}/{{extract_id}}.zip'", file=bundle.key
            )
        return validate_bundle(
            reader,
            processed_sink(self.s3, self.settings, bundle),
            extract_id=bundle.extract_id,
            source=bundle.source,
            limits=self.limits,
        )

"""Publishing a valid bundle to the processed bucket: data files first, manifest.json last.

Each data file is uploaded while it is inflated and checked (``processed_sink``), and becomes visible only
when ``publish`` commits it, after every check passed. The next stage is triggered by manifest.json, so it
never sees a half-published extract. The published manifest is the extractor's (stage ``extract``, its row
counts), plus where the bundle came from, its ETag and sha256 and when it was unzipped; those are how a
replayed event recognises work already done.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from typing import Any

from services.unzipper.locations import LandedBundle
from services.unzipper.validate import Sink, ValidBundle
from shared.aws import read_json_object
from shared.manifest import MANIFEST_NAME, MEDIA_TYPES, Manifest, Resource
from shared.progress import now
from shared.s3stream import S3ObjectWriter
from shared.settings import Settings


def published_manifest(s3: Any, settings: Settings, bundle: LandedBundle) -> dict[str, Any] | None:
    """The manifest already published for this extract, if any (as JSON)."""
    return read_json_object(s3, settings.bucket("processed"), bundle.processed_prefix() + MANIFEST_NAME)


def already_unzipped(
    s3: Any, settings: Settings, bundle: LandedBundle, same: Callable[[dict[str, Any] | None], bool]
) -> bool:
    """Whether the manifest published for this extract came from this very bundle (``same`` tells)."""
    return same(published_manifest(s3, settings, bundle))


def processed_sink(
    s3: Any, settings: Settings, bundle: LandedBundle
) -> Callable[[Resource, zipfile.ZipInfo], Sink]:
    """Where each data file of ``bundle`` streams: an upload to its processed key, which ``publish``
    commits."""
    bucket, prefix = settings.bucket("processed"), bundle.processed_prefix()

    def open_sink(resource: Resource, info: zipfile.ZipInfo) -> Sink:
        return S3ObjectWriter(
            s3,
            bucket,
            prefix + resource.path,
            content_type=MEDIA_TYPES.get(resource.format),
            expected_bytes=info.file_size,
        )

    return open_sink


def publish(
    s3: Any, settings: Settings, bundle: LandedBundle, valid: ValidBundle, *, etag: str, bundle_hash: str
) -> Manifest:
    """Commit the data files, then write the manifest; returns the manifest as published."""
    bucket, prefix = settings.bucket("processed"), bundle.processed_prefix()
    for sink in valid.sinks.values():
        sink.commit()
    manifest = valid.manifest.model_copy(
        update={"bundle": bundle.uri, "bundle_hash": bundle_hash, "bundle_etag": etag, "unzipped_at": now()}
    )
    s3.put_object(
        Bucket=bucket,
        Key=prefix + MANIFEST_NAME,
        Body=manifest.to_json().encode("utf-8"),
        ContentType="application/json",
    )
    return manifest

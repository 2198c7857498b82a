"""Publishing a valid bundle to the processed bucket: data files first, manifest.json last.

The next stage is triggered by manifest.json, so it never sees a half-published extract. The published
manifest is the extractor's (stage ``extract``, its row counts), plus where the bundle came from, its
hash and when it was unzipped; the hash is how a replayed event recognises work already done.
"""

from __future__ import annotations

from typing import Any

from services.unzipper.locations import LandedBundle
from services.unzipper.validate import ValidBundle
from shared.aws import UPLOADS, read_json_object
from shared.manifest import MANIFEST_NAME, MEDIA_TYPES, Manifest
from shared.progress import now
from shared.settings import Settings


def published_manifest(s3: Any, settings: Settings, bundle: LandedBundle) -> dict[str, Any] | None:
    """The manifest already published for this extract, if any (as JSON)."""
    return read_json_object(s3, settings.bucket("processed"), bundle.processed_prefix() + MANIFEST_NAME)


def already_unzipped(s3: Any, settings: Settings, bundle: LandedBundle, bundle_hash: str) -> bool:
    """Whether exactly this bundle (same hash) has been published for its extract."""
    published = published_manifest(s3, settings, bundle)
    return published is not None and published.get("bundle_hash") == bundle_hash


def publish(
    s3: Any, settings: Settings, bundle: LandedBundle, valid: ValidBundle, *, bundle_hash: str
) -> Manifest:
    """Upload the data files, then the manifest; returns the manifest as published."""
    bucket, prefix = settings.bucket("processed"), bundle.processed_prefix()
    for resource in valid.manifest.resources:
        content_type = MEDIA_TYPES.get(resource.format)
        extra = {"ContentType": content_type} if content_type else {}
        s3.upload_file(
            str(valid.files[resource.path]), bucket, prefix + resource.path, ExtraArgs=extra, Config=UPLOADS
        )
    manifest = valid.manifest.model_copy(
        update={"bundle": bundle.uri, "bundle_hash": bundle_hash, "unzipped_at": now()}
    )
    s3.put_object(
        Bucket=bucket,
        Key=prefix + MANIFEST_NAME,
        Body=manifest.to_json().encode("utf-8"),
        ContentType="application/json",
    )
    return manifest

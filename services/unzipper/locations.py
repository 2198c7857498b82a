"""Where a landed bundle came from, and where its processed files and its quarantine go."""

from __future__ import annotations

from dataclasses import dataclass

from shared.locations import BUNDLE_SUFFIX, bundle_location
from shared.settings import Settings


@dataclass(frozen=True)
class LandedBundle:
    """A zip in landing; source and extract_id are None unless its key is ``{source}/{extract_id}.zip``."""

    bucket: str
    key: str
    source: str | None = None
    extract_id: str | None = None

    @classmethod
    def at(cls, bucket: str, key: str) -> LandedBundle:
        found = bundle_location(key)
        if found is None:
            return cls(bucket, key)
        return cls(bucket, key, found.source, found.extract_id)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def recognised(self) -> bool:
        return self.extract_id is not None

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def processed_prefix(self) -> str:
        """``{source}/{extract_id}/`` in the processed bucket."""
        return f"{self.source}/{self.extract_id}/"

    def processed_uri(self, settings: Settings) -> str:
        return f"s3://{settings.bucket('processed')}/{self.processed_prefix()}"

    def quarantine_prefix(self) -> str:
        """``unzip/{landing key without .zip}/`` in the quarantine bucket; any key gives its own place."""
        return f"unzip/{self.key.removesuffix(BUNDLE_SUFFIX)}/"

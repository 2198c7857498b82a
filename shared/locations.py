"""Where an extract's files live: the key layout every bucket shares, parsed in one place.

- landing: ``{source}/{extract_id}.zip`` (the bundle);
- processed and archive: ``{source}/{extract_id}/…``, committed by ``{source}/{extract_id}/manifest.json``.

A source name and an extract id are each one ``NAME_PATTERN`` segment, so a key names at most one
extract and no key can climb out of its folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.manifest import MANIFEST_NAME

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""A source name or an extract id in a key: letters, digits, `_`, `.`, `-`; a letter or digit first."""
BUNDLE_SUFFIX = ".zip"
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class ExtractLocation:
    """The extract a key belongs to."""

    source: str
    extract_id: str

    @property
    def prefix(self) -> str:
        """``{source}/{extract_id}``: the extract's folder in the processed and archive buckets."""
        return f"{self.source}/{self.extract_id}"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}/{MANIFEST_NAME}"

    @property
    def bundle_key(self) -> str:
        """``{source}/{extract_id}.zip`` in the landing bucket."""
        return f"{self.prefix}{BUNDLE_SUFFIX}"


def _named(source: str, extract_id: str) -> ExtractLocation | None:
    if _NAME.match(source) and _NAME.match(extract_id):
        return ExtractLocation(source, extract_id)
    return None


def bundle_location(key: str) -> ExtractLocation | None:
    """The extract a landing key ``{source}/{extract_id}.zip`` names; None for any other key."""
    parts = key.split("/")
    if len(parts) != 2 or not parts[1].endswith(BUNDLE_SUFFIX):
        return None
    return _named(parts[0], parts[1].removesuffix(BUNDLE_SUFFIX))


def manifest_location(key: str) -> ExtractLocation | None:
    """The extract a ``{source}/{extract_id}/manifest.json`` key commits; None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[2] != MANIFEST_NAME:
        return None
    return _named(parts[0], parts[1])

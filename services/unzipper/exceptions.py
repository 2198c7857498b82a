"""Why a bundle cannot be unzipped: one reason code and one exception class per failure mode.

Every ``BadBundle`` (a ``shared.errors.Refused``) is a poison pill: the bundle is quarantined with its reason
and never retried.
Anything else raised while unzipping (S3 unreachable, disk full) is retried and, failing that, dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import ClassVar

from shared.errors import Refused


class Reason(StrEnum):
    """Reason codes a quarantined bundle carries in its ``reason.json``."""

    UNRECOGNISED_KEY = "UNRECOGNISED_KEY"
    """The landing key is not ``{source}/{extract_id}.zip``."""
    CORRUPT_ZIP = "CORRUPT_ZIP"
    """The bundle is not a readable zip."""
    BUNDLE_TOO_LARGE = "BUNDLE_TOO_LARGE"
    """The bundle would unzip to more than the configured limit (a zip bomb guard)."""
    UNEXPECTED_FILE = "UNEXPECTED_FILE"
    """The zip holds a file the manifest does not list, a directory, or a path leaving the bundle."""
    MISSING_MANIFEST = "MISSING_MANIFEST"
    """The zip has no manifest.json."""
    INVALID_MANIFEST = "INVALID_MANIFEST"
    """manifest.json is not a valid manifest of an extract."""
    MANIFEST_MISMATCH = "MANIFEST_MISMATCH"
    """The manifest's extract_id or source disagrees with where the bundle landed."""
    MISSING_FILE = "MISSING_FILE"
    """A file the manifest lists is not in the zip."""
    HASH_MISMATCH = "HASH_MISMATCH"
    """A file's size or sha256 differs from the manifest's."""
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    """A data file's columns are not the movie record's."""
    ROW_COUNT_MISMATCH = "ROW_COUNT_MISMATCH"
    """A data file holds a different number of rows than the manifest says."""
    MALFORMED_FILE = "MALFORMED_FILE"
    """A data file cannot be parsed as its format."""


class BadBundle(Refused):
    """A bundle that can never be unzipped as it is; quarantined, not retried."""

    code: ClassVar[str] = "BAD_BUNDLE"

    @property
    def reason(self) -> Reason:
        return Reason(self.code)


class UnrecognisedKey(BadBundle):
    """The landing key does not name a source and an extract."""

    code = Reason.UNRECOGNISED_KEY


class CorruptZip(BadBundle):
    """The bundle is not a readable zip."""

    code = Reason.CORRUPT_ZIP


class BundleTooLarge(BadBundle):
    """The bundle unzips to more bytes than allowed."""

    code = Reason.BUNDLE_TOO_LARGE


class UnexpectedFile(BadBundle):
    """The zip holds something that is not one of the bundle's files."""

    code = Reason.UNEXPECTED_FILE


class MissingManifest(BadBundle):
    """The zip has no manifest.json."""

    code = Reason.MISSING_MANIFEST


class InvalidManifest(BadBundle):
    """manifest.json is not a valid manifest of an extract."""

    code = Reason.INVALID_MANIFEST


class ManifestMismatch(BadBundle):
    """The manifest describes another extract than the one the landing key names."""

    code = Reason.MANIFEST_MISMATCH


class MissingFile(BadBundle):
    """A file the manifest lists is not in the zip."""

    code = Reason.MISSING_FILE

    def __init__(self, file: str):
        super().__init__(f"{file} is listed in manifest.json but is not in the bundle", file=file)


class HashMismatch(BadBundle):
    """A file's bytes differ from what the manifest vouches for."""

    code = Reason.HASH_MISMATCH

    def __init__(self, file: str, what: str, expected: str | int, actual: str | int):
        super().__init__(f"{file}: {what} is {actual} but manifest.json says {expected}", file=file)
        self.expected = expected
        self.actual = actual


class SchemaMismatch(BadBundle):
    """A data file's columns are not the movie record's."""

    code = Reason.SCHEMA_MISMATCH

    @classmethod
    def columns(cls, file: str, expected: Sequence[str], actual: Sequence[str]) -> SchemaMismatch:
        """The mismatch between the expected and actual column lists, said in words."""
        missing = [name for name in expected if name not in actual]
        unexpected = [name for name in actual if name not in expected]
        if missing or unexpected:
            parts = [
                f"missing columns {missing}" if missing else "",
                f"unexpected columns {unexpected}" if unexpected else "",
            ]
            detail = ", ".join(part for part in parts if part)
        else:
            detail = f"columns out of order: {list(actual)}, expected {list(expected)}"
        return cls(f"{file}: {detail}", file=file)


class RowCountMismatch(BadBundle):
    """A data file holds a different number of rows than the manifest says."""

    code = Reason.ROW_COUNT_MISMATCH

    def __init__(self, file: str, expected: int, actual: int):
        super().__init__(f"{file} has {actual} data rows but manifest.json says {expected}", file=file)
        self.expected = expected
        self.actual = actual


class MalformedFile(BadBundle):
    """A data file cannot be parsed as its format."""

    code = Reason.MALFORMED_FILE

"""Why a load fails. A ``BadBundle`` is final and goes to quarantine; any other ``LoadError`` is retried."""

from __future__ import annotations


class LoadError(Exception):
    """Root of the loader's errors."""


class BadBundle(LoadError):
    """The archived bundle cannot be loaded as it is; retrying gives the same answer."""

    def __init__(self, message: str, *, where: str):
        super().__init__(f"{message} ({where})")
        self.message = message
        self.where = where

    @property
    def code(self) -> str:
        return type(self).__name__

    def as_error(self) -> dict[str, str]:
        """The error as the progress record and alerts carry it; ``reason.json`` names the code ``reason``."""
        return {"code": self.code, "message": str(self)}


class UnexpectedKey(BadBundle):
    """The manifest is not at ``{source}/{extract_id}/manifest.json`` in the archive bucket."""


class UnreadableManifest(BadBundle):
    """The manifest is missing, not JSON, or not a transform manifest of the extract its key names."""


class MissingFile(BadBundle):
    """A file the manifest lists is not in the archive."""


class FileMismatch(BadBundle):
    """A file's size or sha256 hash differs from what the manifest says."""


class FileChangedAfterLoad(BadBundle):
    """A file already loaded is listed again with a different hash."""


class RowsNotLoadable(BadBundle):
    """The warehouse refused a file's rows (a value that does not fit its column)."""


class LoadConflict(LoadError):
    """A concurrent load of the same files committed first; the retry finds them loaded."""


CONFLICT_STATES = ("40001", "23000")
"""SQL states of a lost race: a serialization failure, a duplicate key (load history, batch, merge)."""

"""Why a load fails. A ``BadBundle`` (a ``shared.errors.Refused``) is final and goes to quarantine; any other
``LoadError`` is retried."""

from __future__ import annotations

from shared.errors import PipelineError, Refused


class LoadError(PipelineError):
    """Root of the loader's errors."""

    code = "LOAD_FAILED"


class BadBundle(LoadError, Refused):
    """The archived bundle cannot be loaded as it is; retrying gives the same answer."""

    code = "BAD_BUNDLE"

    def __init__(self, message: str, *, where: str):
        super().__init__(message, where=where)


class UnexpectedKey(BadBundle):
    """The manifest is not at ``{source}/{extract_id}/manifest.json`` in the archive bucket."""

    code = "UNEXPECTED_KEY"


class UnreadableManifest(BadBundle):
    """The manifest is missing, not JSON, or not a transform manifest of the extract its key names."""

    code = "UNREADABLE_MANIFEST"


class MissingFile(BadBundle):
    """A file the manifest lists is not in the archive."""

    code = "MISSING_FILE"


class FileMismatch(BadBundle):
    """A file's size or sha256 hash differs from what the manifest says."""

    code = "FILE_MISMATCH"


class FileChangedAfterLoad(BadBundle):
    """A file already loaded is listed again with a different hash."""

    code = "FILE_CHANGED_AFTER_LOAD"


class RowsNotLoadable(BadBundle):
    """The warehouse refused a file's rows (a value that does not fit its column)."""

    code = "ROWS_NOT_LOADABLE"


class LoadConflict(LoadError):
    """A concurrent load of the same files committed first; the retry finds them loaded."""

    code = "LOAD_CONFLICT"


CONFLICT_STATES = ("40001", "23000")
"""SQL states of a lost race: a serialization failure, a duplicate key (load history, batch, merge)."""

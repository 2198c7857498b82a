"""Why an extract fails. Every ``ExtractError`` is final: retrying the same request gives the same answer."""

from __future__ import annotations

from collections.abc import Iterable


class ExtractError(Exception):
    """Root of the extractor's errors: the extract failed and will not succeed on retry."""

    code = "EXTRACT_FAILED"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def as_error(self) -> dict[str, str]:
        """The error as the progress record and alerts carry it."""
        return {"code": self.code, "message": self.message}


class UnknownSource(ExtractError):
    """The requested source is not one the extractor knows."""

    code = "UNKNOWN_SOURCE"

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown source {name!r}; known sources: {', '.join(self.known) or 'none'}")


class SourceUnreadable(ExtractError):
    """The source could not be read (missing, corrupt, or rows that do not fit the movie record)."""

    code = "SOURCE_UNREADABLE"

    def __init__(self, source: str, detail: str):
        self.source = source
        super().__init__(f"source {source!r} could not be read: {detail}")


class InvalidExtractRequest(ExtractError):
    """A message on the extractor's queue is not an extract request."""

    code = "INVALID_REQUEST"


class SourcesFileError(ExtractError):
    """The sources file is not valid: unknown kind, a missing setting, a mapping to no field, bad TOML."""

    code = "INVALID_SOURCES_FILE"


class ExtractAlreadyRunning(ExtractError):
    """An extract of the same source is already queued or running."""

    code = "EXTRACT_ALREADY_RUNNING"

    def __init__(self, source: str, running: str):
        self.source = source
        self.running = running
        super().__init__(f"an extract of source {source!r} is already running: {running}")

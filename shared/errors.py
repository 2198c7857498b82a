"""The one shape of every stage's errors: a reason code, a message, and whether a retry can help.

``PipelineError`` is the root; each stage derives its own classes and gives each a ``code`` (upper
snake case, the word that travels in progress records, ``reason.json``, alerts and logs). A ``Refused``
error is final: the input can never be processed as it is, so it is quarantined (``shared.quarantine``)
and not retried. Any other error may pass with a retry: the message comes back, and after its last
allowed receive it goes to the stage's dead-letter queue, with one alert.
"""

from __future__ import annotations

from typing import ClassVar


class PipelineError(Exception):
    """Root of every stage's errors."""

    code: ClassVar[str] = "PIPELINE_ERROR"
    retriable: ClassVar[bool] = True

    def __init__(self, message: str, *, file: str | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        """The file of a bundle the error is about, where it is about one."""
        self.where = where
        """The ``s3://`` URI of what was wrong, where the message does not say it."""

    @property
    def described(self) -> str:
        """The message, with where it happened when that is known apart from it."""
        return f"{self.message} ({self.where})" if self.where else self.message

    def __str__(self) -> str:
        # The code first: a Glue job run reports only a message, and the runner reads the code back.
        return f"{self.code}: {self.described}"

    def as_error(self) -> dict[str, str]:
        """The error as progress records and alerts carry it (``reason.json`` names the code ``reason``)."""
        return {"code": self.code, "message": self.described}


class Refused(PipelineError):
    """Input that can never be processed as it is: quarantined with its reason, never retried."""

    code: ClassVar[str] = "REFUSED"
    retriable: ClassVar[bool] = False

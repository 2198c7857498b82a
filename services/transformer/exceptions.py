"""Why a transform fails: bad input is quarantined and never retried; anything else is retried.

Every error has the shape of ``shared.errors.PipelineError``; a ``BadInput`` (a ``Refused``) carries a
``code`` that travels in the progress record, the quarantine's ``reason.json``
and alerts. A Glue job run reports only a message, so the job puts the code first (``CODE: message``)
and the Glue runner turns it back into the same class.
"""

from __future__ import annotations

from shared.errors import PipelineError, Refused


class TransformError(PipelineError):
    """Root of the transformer's errors."""

    code = "TRANSFORM_FAILED"


class BadInput(TransformError, Refused):
    """The processed extract can never be transformed as it is; it goes to quarantine."""

    code = "BAD_INPUT"


class UnexpectedKey(BadInput):
    """A manifest in the processed bucket that is not at ``{source}/{extract_id}/manifest.json``."""

    code = "UNEXPECTED_KEY"


class ManifestUnreadable(BadInput):
    """The processed manifest is missing, not JSON, or not a valid manifest for its location."""

    code = "MANIFEST_UNREADABLE"


class InputMissing(BadInput):
    """The manifest vouches for a ``movies.csv`` that is not in the processed bucket."""

    code = "INPUT_MISSING"


class InputCorrupt(BadInput):
    """``movies.csv`` differs from what the manifest vouches for (bytes or sha256)."""

    code = "INPUT_CORRUPT"


class InvalidHeader(BadInput):
    """``movies.csv`` has no header row, or its header lacks columns of the movie record."""

    code = "INVALID_HEADER"


class RowCountMismatch(BadInput):
    """The transform read a different number of rows than the manifest says were extracted."""

    code = "ROW_COUNT_MISMATCH"


class StorageUnavailable(TransformError):
    """S3 (or DynamoDB) did not answer as expected; the message is retried."""

    code = "STORAGE_UNAVAILABLE"


class SparkJobFailed(TransformError):
    """The local Spark job crashed; the message is retried."""

    code = "SPARK_JOB_FAILED"


class GlueJobFailed(TransformError):
    """The AWS Glue job run ended FAILED, ERROR, TIMEOUT or STOPPED; the message is retried."""

    code = "GLUE_JOB_FAILED"


class CatalogUnavailable(TransformError):
    """The Glue Data Catalog did not take the extract's tables or partitions; the message is retried."""

    code = "CATALOG_UNAVAILABLE"


class CountsNotConserved(TransformError):
    """The transform's clean rows, rejects and duplicates do not add up to the rows it read: a bug."""

    code = "COUNTS_NOT_CONSERVED"


class ArchiveIncomplete(TransformError):
    """A finished job left no archive manifest, or files that disagree with its counts."""

    code = "ARCHIVE_INCOMPLETE"


BAD_INPUT_ERRORS: dict[str, type[BadInput]] = {
    error.code: error
    for error in (ManifestUnreadable, InputMissing, InputCorrupt, InvalidHeader, RowCountMismatch)
}
"""Each bad-input class by its code, to rebuild the error a Glue job run reported as text."""

"""Reconcile an extract: rows extracted = rows loaded + rows rejected (with a reason) + duplicates removed.

Loaded and rejected rows are counted from what the warehouse holds (``RAW.MOVIES``, ``AUDIT.REJECTS``), the
extracted and duplicate counts come from the manifest; the outcome is MERGEd into the extract's one
``AUDIT.RECONCILIATION`` row. It runs after the load commits (the local warehouse cannot MERGE inside a
transaction that has already written), and only reads committed rows, so running it again after a crash
gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snowflake.connector import SnowflakeConnection
from snowflake.connector.errors import DatabaseError

from services.loader import statements
from services.loader.bundle import ArchiveBundle
from services.loader.exceptions import LoadConflict

RECONCILED = "RECONCILED"
FAILED = "FAILED"

_CONFLICT_STATES = ("40001", "23000")  # lost a race; duplicate key


@dataclass(frozen=True)
class Reconciliation:
    """Rows extracted against rows loaded, rejected and removed as duplicates."""

    extract_id: str
    source: str
    rows_extracted: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int

    @property
    def accounted(self) -> int:
        return self.rows_loaded + self.rows_rejected + self.rows_duplicate

    @property
    def status(self) -> str:
        return RECONCILED if self.rows_extracted == self.accounted else FAILED

    def counts(self) -> dict[str, int]:
        """The counts as the extract's progress record carries them."""
        return {
            "extracted": self.rows_extracted,
            "loaded": self.rows_loaded,
            "rejected": self.rows_rejected,
            "duplicates": self.rows_duplicate,
        }

    def explain(self) -> str:
        return (
            f"extracted {self.rows_extracted} != loaded {self.rows_loaded} + rejected {self.rows_rejected}"
            f" + duplicates {self.rows_duplicate} (= {self.accounted})"
        )

    def parameters(self) -> dict[str, Any]:
        return {
            "extract_id": self.extract_id,
            "source": self.source,
            "rows_extracted": self.rows_extracted,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "rows_duplicate": self.rows_duplicate,
            "status": self.status,
        }


def reconcile(connection: SnowflakeConnection, database: str, bundle: ArchiveBundle) -> Reconciliation:
    """Count the extract's rows in the warehouse, and record the reconciliation."""
    cursor = connection.cursor()
    cursor.execute(statements.count_extract_rows(database), {"extract_id": bundle.extract_id})
    rows_loaded, rows_rejected = cursor.fetchone()
    reconciliation = Reconciliation(
        extract_id=bundle.extract_id,
        source=bundle.source,
        rows_extracted=bundle.row_counts["extracted"],
        rows_loaded=int(rows_loaded),
        rows_rejected=int(rows_rejected),
        rows_duplicate=bundle.row_counts["duplicates"],
    )
    try:
        cursor.execute(statements.merge_reconciliation(database), reconciliation.parameters())
    except DatabaseError as exc:
        if exc.sqlstate in _CONFLICT_STATES:
            raise LoadConflict(f"extract {bundle.extract_id} was reconciled concurrently: {exc.msg}") from exc
        raise
    return reconciliation

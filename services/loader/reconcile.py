"""Reconcile an extract: rows extracted = rows loaded + rows rejected (with a reason) + duplicates removed,
and every loaded row merged into the star schema.

Loaded and rejected rows are counted from what the warehouse holds (``RAW.MOVIES``, ``AUDIT.REJECTS``), what
merging did from ``AUDIT.MERGES``, the extracted and duplicate counts come from the manifest; the outcome is
the extract's one ``AUDIT.BATCHES`` row: inserted the first time, updated only when a later reconciliation
finds other counts (so a replay leaves it, and its RECONCILED_AT, as they were). The same query that counts
reads the row, so the common case is two statements; a MERGE would do the same in one, but the local
warehouse takes 0.1 s to translate one. It runs after the load and the merge commit, and only reads
committed rows, so running it again after a crash gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snowflake.connector import SnowflakeConnection
from snowflake.connector.errors import DatabaseError

from services.loader import statements
from services.loader.bundle import ArchiveBundle
from services.loader.exceptions import CONFLICT_STATES, LoadConflict

RECONCILED = "RECONCILED"
FAILED = "FAILED"


@dataclass(frozen=True)
class Reconciliation:
    """Rows extracted against rows loaded, rejected and removed as duplicates."""

    extract_id: str
    source: str
    rows_extracted: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int
    rows_merged: int | None = None
    """Rows of the extract merged into the star schema; None while it is not merged."""
    versions_opened: int = 0
    changed_in_place: int = 0
    movies_closed: int = 0
    rows_unzipped: int | None = None
    rows_clean: int | None = None
    extract_kind: str = "full"
    extracted_at: str | None = None
    merge_required: bool = True
    """False where Snowflake's tasks merge later: the load reconciles on its own counts."""

    @property
    def accounted(self) -> int:
        return self.rows_loaded + self.rows_rejected + self.rows_duplicate

    @property
    def status(self) -> str:
        conserved = self.rows_extracted == self.accounted
        merged = self.rows_merged == self.rows_loaded or not self.merge_required
        return RECONCILED if conserved and merged else FAILED

    def counts(self) -> dict[str, int]:
        """The counts as the extract's progress record carries them."""
        return {
            "extracted": self.rows_extracted,
            "loaded": self.rows_loaded,
            "rejected": self.rows_rejected,
            "duplicates": self.rows_duplicate,
            "merged": self.rows_merged or 0,
            "versions_opened": self.versions_opened,
            "changed_in_place": self.changed_in_place,
            "movies_closed": self.movies_closed,
        }

    def explain(self) -> str:
        problems = []
        if self.rows_extracted != self.accounted:
            problems.append(
                f"extracted {self.rows_extracted} != loaded {self.rows_loaded}"
                f" + rejected {self.rows_rejected} + duplicates {self.rows_duplicate} (= {self.accounted})"
            )
        if self.merge_required and self.rows_merged is None:
            problems.append("not merged into the star schema")
        elif self.merge_required and self.rows_merged != self.rows_loaded:
            problems.append(
                f"merged {self.rows_merged} of {self.rows_loaded} loaded rows into the star schema"
            )
        return "; ".join(problems) or "reconciled"

    def parameters(self) -> dict[str, Any]:
        return {
            "extract_id": self.extract_id,
            "source": self.source,
            "rows_extracted": self.rows_extracted,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "rows_duplicate": self.rows_duplicate,
            "rows_unzipped": self.rows_unzipped,
            "rows_clean": self.rows_clean,
            "rows_merged": self.rows_merged,
            "versions_opened": self.versions_opened,
            "changed_in_place": self.changed_in_place,
            "movies_closed": self.movies_closed,
            "extract_kind": self.extract_kind,
            "extracted_at": self.extracted_at,
            "status": self.status,
        }


def reconcile(
    connection: SnowflakeConnection, database: str, bundle: ArchiveBundle, *, merged_here: bool = True
) -> Reconciliation:
    """Count the extract's rows in the warehouse, and record the reconciliation.

    ``merged_here``: the loader merged the extract just now, so every loaded row must be merged.
    """
    cursor = connection.cursor()
    cursor.execute(statements.count_extract_rows(database), {"extract_id": bundle.extract_id})
    found = dict(zip((column.name for column in cursor.description), cursor.fetchone(), strict=True))
    rows_loaded, rows_rejected = found["ROWS_LOADED"], found["ROWS_REJECTED"]
    merged = [found[name] for name in ("ROWS_MERGED", "VERSIONS_OPENED", "CHANGED_IN_PLACE", "MOVIES_CLOSED")]
    counts = bundle.row_counts
    reconciliation = Reconciliation(
        extract_id=bundle.extract_id,
        source=bundle.source,
        rows_extracted=counts["extracted"],
        rows_loaded=int(rows_loaded),
        rows_rejected=int(rows_rejected),
        rows_duplicate=counts["duplicates"],
        # The transform read the unzipped file: what it counted in is what unzipping delivered.
        rows_unzipped=counts.get("unzipped", counts["extracted"]),
        rows_clean=counts.get("clean"),
        extract_kind=bundle.extract_kind,
        extracted_at=bundle.extracted_at or None,
        **_merged(tuple(merged) if found["MERGED"] else None, int(rows_loaded)),
        merge_required=merged_here,
    )
    parameters = reconciliation.parameters()
    try:
        if not found["RECORDED"]:
            cursor.execute(statements.insert_batch(database), parameters)
        elif any(found[f"RECORDED_{name.upper()}"] != parameters[name] for name in _RECORDED):
            cursor.execute(statements.update_batch(database), parameters)
    except DatabaseError as exc:
        if exc.sqlstate in CONFLICT_STATES:
            raise LoadConflict(f"extract {bundle.extract_id} was reconciled concurrently: {exc.msg}") from exc
        raise
    return reconciliation


_RECORDED = (
    "rows_extracted",
    "rows_unzipped",
    "rows_clean",
    "rows_rejected",
    "rows_duplicate",
    "rows_loaded",
    "rows_merged",
    "versions_opened",
    "changed_in_place",
    "movies_closed",
    "status",
)
"""What a reconciliation compares with the extract's recorded row (``RECORDED_…`` in the counting query)."""


def _merged(row: tuple | None, rows_loaded: int) -> dict[str, int]:
    """What ``AUDIT.MERGES`` says merging the extract did; nothing while it is not merged."""
    if row is None:
        # An extract whose every row was refused has nothing to merge.
        return {"rows_merged": 0} if rows_loaded == 0 else {}
    merged, opened, changed, closed = (int(value) for value in row)
    return {
        "rows_merged": merged,
        "versions_opened": opened,
        "changed_in_place": changed,
        "movies_closed": closed,
    }

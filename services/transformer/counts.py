"""Where each row of a batch went, and the check that every row went exactly one way."""

from __future__ import annotations

from dataclasses import dataclass

from services.transformer.exceptions import CountsNotConserved, RowCountMismatch

KINDS = ("extracted", "clean", "rejected", "duplicates")


@dataclass(frozen=True)
class TransformCounts:
    """Where each extracted row went; ``extracted == clean + rejected + duplicates`` always."""

    extracted: int
    clean: int
    rejected: int
    duplicates: int

    @property
    def conserved(self) -> bool:
        return self.extracted == self.clean + self.rejected + self.duplicates

    def as_dict(self) -> dict[str, int]:
        return {kind: getattr(self, kind) for kind in KINDS}

    @classmethod
    def from_dict(cls, counts: dict[str, int]) -> TransformCounts:
        return cls(**{kind: int(counts[kind]) for kind in KINDS})


def verified(counts: TransformCounts, *, extract_id: str, expected_rows: int) -> TransformCounts:
    """The counts of a finished transform, once they are shown to account for every row.

    ``RowCountMismatch`` when the rows read differ from the rows the manifest says were extracted (some
    row was split or swallowed, and no count downstream could be trusted); ``CountsNotConserved`` when
    clean rows, rejects and duplicates do not add up to the rows read.
    """
    if counts.extracted != expected_rows:
        raise RowCountMismatch(
            f"movies.csv holds {counts.extracted} rows as the transform reads it, "
            f"but the manifest says {expected_rows} were extracted"
        )
    if not counts.conserved:
        raise CountsNotConserved(
            f"extract {extract_id}: {counts.extracted} rows read but {counts.clean} clean + "
            f"{counts.rejected} rejected + {counts.duplicates} duplicates = "
            f"{counts.clean + counts.rejected + counts.duplicates}"
        )
    return counts

"""Quarantine: keep a processed extract that can never be transformed, with the reason, for a person.

``s3://{prefix}-quarantine/transform/{source}/{extract_id}/`` receives a copy of every file of the
processed extract, then ``reason.json``; the steps and their order are ``shared.quarantine``'s.
"""

from __future__ import annotations

from services.transformer.processed import ProcessedExtract
from shared.quarantine import Refusal

FOLDER = "transform"
STAGE = "transformer"


def refusal(extract: ProcessedExtract) -> Refusal:
    """The processed extract as the quarantine keeps it: ``transform/{source}/{extract_id}/``."""
    return Refusal(
        stage=STAGE,
        folder=f"{FOLDER}/{extract.source}/{extract.extract_id}/",
        origin=extract.uri,
        extract_id=extract.extract_id,
        source=extract.source,
    )

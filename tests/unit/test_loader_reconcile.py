"""Reconciliation and the archive manifest's key, as pure rules."""

from __future__ import annotations

import pytest

from services.loader.bundle import locate
from services.loader.exceptions import UnexpectedKey
from services.loader.reconcile import FAILED, RECONCILED, Reconciliation
from shared.events import ObjectCreated


def reconciliation(
    extracted: int, loaded: int, rejected: int, duplicates: int, merged: int | None = -1
) -> Reconciliation:
    merged = loaded if merged == -1 else merged
    return Reconciliation("e1", "imdb", extracted, loaded, rejected, duplicates, rows_merged=merged)


def test_an_extract_reconciles_when_every_extracted_row_is_accounted_for():
    # GIVEN 10 rows extracted: 7 loaded, 2 rejected with a reason, 1 duplicate removed
    # WHEN reconciled
    outcome = reconciliation(10, 7, 2, 1)

    # THEN it is RECONCILED, with the counts the progress record shows
    assert outcome.status == RECONCILED
    assert outcome.counts() == {
        "extracted": 10,
        "loaded": 7,
        "rejected": 2,
        "duplicates": 1,
        "merged": 7,
        "versions_opened": 0,
        "changed_in_place": 0,
        "movies_closed": 0,
    }


@pytest.mark.parametrize(("loaded", "rejected", "duplicates"), [(6, 2, 1), (8, 2, 1), (0, 0, 0)])
def test_an_extract_fails_when_rows_are_missing_or_extra(loaded, rejected, duplicates):
    # GIVEN counts that do not add up to the 10 rows extracted
    # WHEN reconciled
    outcome = reconciliation(10, loaded, rejected, duplicates)

    # THEN it FAILED, and says by how much
    assert outcome.status == FAILED
    assert outcome.explain().startswith("extracted 10 != loaded")
    assert f"(= {loaded + rejected + duplicates})" in outcome.explain()


@pytest.mark.parametrize(("merged", "why"), [(None, "not merged"), (6, "merged 6 of 7 loaded rows")])
def test_an_extract_fails_when_its_loaded_rows_are_not_all_merged(merged, why):
    # GIVEN every row accounted for, but the star schema short of the loaded rows
    # WHEN reconciled
    outcome = reconciliation(10, 7, 2, 1, merged=merged)

    # THEN it FAILED, saying what is missing
    assert outcome.status == FAILED
    assert why in outcome.explain()


def test_the_manifest_key_names_source_and_extract():
    # GIVEN the transformer's archive layout
    created = ObjectCreated("p-archive", "imdb/20261126T041700Z-3f9c2a1b/manifest.json")

    # WHEN located
    location = locate(created)

    # THEN the source and extract come from the key
    assert (location.source, location.extract_id) == ("imdb", "20261126T041700Z-3f9c2a1b")


@pytest.mark.parametrize(
    "key", ["manifest.json", "imdb/manifest.json", "imdb/e1/x/manifest.json", "../e1/manifest.json"]
)
def test_a_manifest_elsewhere_is_refused_naming_where_it_was(key):
    # WHEN a manifest lands outside {source}/{extract_id}/manifest.json
    # THEN it is refused as bad input, naming the object
    with pytest.raises(UnexpectedKey, match=f"s3://p-archive/{key}"):
        locate(ObjectCreated("p-archive", key))

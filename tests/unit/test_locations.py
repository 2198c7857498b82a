"""``shared.locations``: the one parsing of where an extract's files live, for every stage."""

from __future__ import annotations

import pytest

from shared.locations import ExtractLocation, bundle_location, manifest_location


def test_a_landing_key_names_its_extract():
    found = bundle_location("imdb/20261126T041700Z-1a2b3c4d.zip")
    assert found == ExtractLocation("imdb", "20261126T041700Z-1a2b3c4d")
    assert found.bundle_key == "imdb/20261126T041700Z-1a2b3c4d.zip"
    assert found.manifest_key == "imdb/20261126T041700Z-1a2b3c4d/manifest.json"


def test_a_manifest_key_names_its_extract():
    assert manifest_location("my-source/e.1_2/manifest.json") == ExtractLocation("my-source", "e.1_2")


@pytest.mark.parametrize(
    "key",
    [
        "e1.zip",
        "imdb/e1.tar",
        "imdb/nested/e1.zip",
        "imdb/.zip",
        "../e1.zip",
        "imdb/-e1.zip",
        "im db/e1.zip",
    ],
)
def test_other_landing_keys_name_no_extract(key):
    assert bundle_location(key) is None


@pytest.mark.parametrize(
    "key",
    [
        "imdb/e1/movies.csv",
        "imdb/manifest.json",
        "imdb/e1/x/manifest.json",
        "/e1/manifest.json",
        "imdb/../manifest.json",
        "imdb/e 1/manifest.json",
        "_glue/v1/manifest.json",
    ],
)
def test_other_keys_commit_no_extract(key):
    assert manifest_location(key) is None

"""The extractor API under load on loopback: no 5xx, 409 for a source already running, every accepted
extract completes. A short run here; ``moviepipe bench --only load`` runs the full minute and reports
p50/p99."""

from __future__ import annotations

import itertools
import os

import pytest

from moviepipe.client import ExtractorClient
from moviepipe.loadtest import get_at_rate, post_storm
from services.extractor.sources.scaled import register_source

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("MOVIEPIPE_LOAD_SECONDS", "10"))


def test_fifty_concurrent_requests_and_a_steady_read_rate_get_no_5xx(stack_settings, loaded_extract):
    # GIVEN five sources (the IMDb sample under five names, the first seeded by an earlier extract)
    sources = [f"load_{n}" for n in range(5)]
    for name in sources:
        register_source(
            stack_settings.home / "sources.toml",
            name,
            {"kind": "sqlite", "url": "sqlite:///sources/imdb.sqlite", "table": "movies"},
        )

    # WHEN 50 POST /extracts arrive at once, then GET /extracts/{id} runs at 200 requests a second
    storm = post_storm(stack_settings, sources, requests=50)
    reads = get_at_rate(stack_settings, [loaded_extract[0], *storm["accepted"]], rate=200, seconds=SECONDS)
    # (every accepted extract is followed to its end first, so none is left running for later tests)
    client = ExtractorClient(stack_settings)
    records = [client.follow(extract, lambda _: None, timeout=600) for extract in storm["accepted"]]
    print(f"POST storm {storm}; reads {reads}")

    # THEN each source took a request and refused the rest with 409 while its extract ran (one that
    # finished before the storm did frees its source, so a later request may start another); no 5xx
    assert set(storm["statuses"]) <= {202, 409}, storm
    assert {record["source"] for record in records} == set(sources), storm
    for source in sources:
        runs = sorted(
            (r["stages"]["extractor"]["started_at"], r["stages"]["extractor"]["at"])
            for r in records
            if r["source"] == source
        )
        assert all(ended <= began for (_, ended), (began, _) in itertools.pairwise(runs)), (source, runs)
    assert set(reads["statuses"]) == {"200"}, reads
    # AND every accepted extract completed, loaded
    assert [record["status"] for record in records] == ["loaded"] * len(records)

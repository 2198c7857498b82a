"""The unzipper as a service: fed from its queue by S3 notifications, and fed the extractor's real bundle."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from services.extractor.extract import run_extract
from services.extractor.settings import extractor_settings
from services.extractor.sources import default_sources
from services.unzipper.app import create_app
from services.unzipper.handler import make_handler
from shared.progress import ExtractProgress
from shared.settings import Settings
from tests.factories import keys, land, landed_event, new_extract_id, valid_bundle

pytestmark = pytest.mark.integration


def wait_for_stage(progress: ExtractProgress, extract_id: str, stage: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        extract = progress.get(extract_id)
        entry = (extract or {}).get("stages", {}).get(stage, {})
        if entry.get("status") not in (None, "running"):
            return entry
        time.sleep(0.2)
    raise TimeoutError(
        f"{stage} of {extract_id} did not finish within {timeout}s: {progress.get(extract_id)}"
    )


def test_the_service_unzips_what_lands_through_the_queue(provisioned: Settings):
    # GIVEN the unzipper service running (consuming its queue)
    progress = ExtractProgress(provisioned)
    with TestClient(create_app(provisioned)) as service:
        # WHEN a bundle lands (S3 notifies the unzipper's queue)
        extract_id = new_extract_id()
        progress.begin(extract_id, "imdb")
        land(provisioned, valid_bundle(extract_id=extract_id), extract_id=extract_id)
        # THEN the extract is unzipped, and the service says it is ready and counts the bundle
        assert wait_for_stage(progress, extract_id, "unzipper")["status"] == "succeeded"
        assert service.get("/ready").status_code == 200
        assert (
            'moviepipe_unzipper_bundles_total{outcome="unzipped",reason=""}' in service.get("/metrics").text
        )
    assert f"imdb/{extract_id}/manifest.json" in keys(provisioned, "processed")


def test_the_extractors_imdb_bundle_passes_the_unzipper(provisioned: Settings):
    # GIVEN a real extract of the imdb source in landing
    settings = extractor_settings(provisioned)
    extract_id = new_extract_id()
    progress = ExtractProgress(settings)
    progress.begin(extract_id, "imdb")
    result = run_extract(settings, default_sources().get("imdb", settings), extract_id, progress=progress)
    # WHEN the unzipper handles its landing event
    key = result.landing.split("/", 3)[3]
    assert make_handler(provisioned)(landed_event(provisioned.bucket("landing"), key), None) == {
        "batchItemFailures": []
    }
    # THEN all 58,788 movies are published, counted the same by both stages
    stage = progress.get(extract_id)["stages"]["unzipper"]
    assert stage["status"] == "succeeded"
    assert stage["counts"] == {"extracted": 58_788, "files": 2}
    assert keys(provisioned, "processed", f"imdb/{extract_id}/") == [
        f"imdb/{extract_id}/{name}" for name in ("manifest.json", "movies.csv", "movies.parquet")
    ]

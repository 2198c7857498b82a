"""The extractor through its HTTP API, with its queue consumer running against a real moto server."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile

import pytest
from fastapi.testclient import TestClient

from services.extractor.app import create_app
from shared.aws import client
from shared.manifest import Manifest
from shared.settings import Settings
from tests.factories import drain_queue, keys

pytestmark = pytest.mark.integration


def wait_for_extractor(service: TestClient, status_url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        extract = service.get(status_url).json()
        if extract["stages"].get("extractor", {}).get("status") in ("succeeded", "failed"):
            return extract
        time.sleep(0.25)
    raise TimeoutError(f"extract at {status_url} did not finish within {timeout}s")


def test_post_extracts_lands_the_imdb_bundle_and_reports_its_progress(provisioned: Settings):
    # GIVEN the extractor service running
    with TestClient(create_app(provisioned)) as service:
        # WHEN a user requests an extract of the bundled IMDb source
        response = service.post("/extracts", json={"source": "imdb"})
        # THEN it is accepted at once, with where to follow it
        assert response.status_code == 202
        accepted = response.json()
        extract_id = accepted["extract_id"]
        assert accepted["status_url"] == f"/extracts/{extract_id}"
        # AND the extract runs to completion in the background
        extract = wait_for_extractor(service, accepted["status_url"])
        listed = service.get("/extracts").json()["extracts"]
    stage = extract["stages"]["extractor"]
    assert stage["status"] == "succeeded", stage
    assert stage["counts"] == {"extracted": 58_788}
    landing = f"s3://{provisioned.bucket('landing')}/imdb/{extract_id}.zip"
    assert stage["landing"] == landing
    assert extract["source"] == "imdb" and extract["requested_at"]
    assert [e["extract_id"] for e in listed] == [extract_id]

    # AND the landed zip holds both data files and a manifest vouching for them
    assert keys(provisioned, "landing") == [f"imdb/{extract_id}.zip"]
    body = client("s3", provisioned).get_object(
        Bucket=provisioned.bucket("landing"), Key=f"imdb/{extract_id}.zip"
    )
    with zipfile.ZipFile(io.BytesIO(body["Body"].read())) as archive:
        manifest = Manifest.from_json(archive.read("manifest.json"))
        assert manifest.extract_id == extract_id and manifest.source == "imdb" and manifest.stage == "extract"
        assert manifest.row_counts == {"extracted": 58_788}
        for resource in manifest.resources:
            data = archive.read(resource.path)
            assert resource.hash == "sha256:" + hashlib.sha256(data).hexdigest()
            assert resource.bytes == len(data) and resource.rows == 58_788


def test_an_unknown_source_is_refused_naming_the_known_ones(provisioned: Settings):
    service = TestClient(create_app(provisioned))
    response = service.post("/extracts", json={"source": "netflix"})
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown source 'netflix'; known sources: imdb"
    # AND no extract was recorded or queued
    assert service.get("/extracts").json() == {"extracts": []}
    assert drain_queue(provisioned, provisioned.queue("extractor")) == []


def test_an_unknown_extract_is_404(provisioned: Settings):
    response = TestClient(create_app(provisioned)).get("/extracts/20200101T000000Z-00000000")
    assert response.status_code == 404
    assert "20200101T000000Z-00000000" in response.json()["detail"]


def test_requesting_an_extract_needs_the_token_when_one_is_set(provisioned: Settings):
    # GIVEN an extractor with an API token
    settings = Settings(**{**provisioned.model_dump(), "api_token": "t0ken"})
    service = TestClient(create_app(settings))
    # WHEN a request comes without it THEN it is refused, and nothing is queued
    assert service.post("/extracts", json={"source": "imdb"}).status_code == 401
    assert drain_queue(settings, settings.queue("extractor")) == []
    # WHEN it comes with it THEN it is accepted and the request waits on the extractor's queue
    response = service.post("/extracts", json={"source": "imdb"}, headers={"Authorization": "Bearer t0ken"})
    assert response.status_code == 202
    [queued] = drain_queue(settings, settings.queue("extractor"))
    assert json.loads(queued) == {
        "extract_id": response.json()["extract_id"],
        "source": "imdb",
        "full_refresh": False,
    }
    # AND reading progress needs no token
    assert service.get(response.json()["status_url"]).status_code == 200

"""The loader as a service: fed from its queue by the archive bucket's S3 notifications."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

import services.loader.app as loader_app
from services.loader.app import create_app
from shared.settings import Settings
from tests.conftest import free_port
from tests.integration.test_loader_handler import (  # the fixture is used by name
    archive_bundle,  # noqa: F401
    count,
    loader_progress,
    reconciliation,
)

pytestmark = pytest.mark.integration


def wait_for_loader(settings: Settings, extract_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = loader_progress(settings, extract_id)
        if progress.get("status") not in (None, "running"):
            return progress
        time.sleep(0.2)
    raise TimeoutError(f"the loader did not finish {extract_id} within {timeout}s")


def test_the_service_loads_what_the_archive_announces(warehouse_settings: Settings, archive_bundle):  # noqa: F811
    # GIVEN the loader service running: warehouse bootstrapped, consuming its queue
    settings = warehouse_settings
    with TestClient(create_app(settings)) as service:
        # WHEN a bundle is archived, manifest last (S3 notifies the loader's queue)
        bundle = archive_bundle(movies=7, rejects=2, duplicates=1)

        # THEN the extract is loaded and reconciled, and the service says so on /ready and /metrics
        assert wait_for_loader(settings, bundle.extract_id)["status"] == "succeeded"
        assert count(settings, "RAW.MOVIES", bundle.extract_id) == 7
        assert reconciliation(settings, bundle.extract_id)[0]["STATUS"] == "RECONCILED"
        ready = service.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["warehouse"] == "ok"
        metrics = service.get("/metrics").text
        assert 'moviepipe_loader_files_total{outcome="loaded"}' in metrics
        assert 'moviepipe_loader_extracts_total{outcome="succeeded"}' in metrics
        # ... with the time of this last success, for the "no successful load" alert
        (last_success,) = [
            line for line in metrics.splitlines() if line.startswith("moviepipe_loader_last_success_")
        ]
        assert time.time() - float(last_success.split()[1]) < 60


def test_the_service_reports_a_down_warehouse_as_not_ready(provisioned: Settings, monkeypatch):
    # GIVEN the loader service with no warehouse where it looks for one (its start-up bootstrap gives up
    # at once here, instead of waiting for the warehouse; the first load would try again)
    settings = provisioned.model_copy(update={"warehouse_port": free_port()})
    monkeypatch.setattr(loader_app, "BOOTSTRAP_WAIT_SECONDS", 0)
    with TestClient(loader_app.create_app(settings)) as service:
        # WHEN it is asked whether it is ready
        ready = service.get("/ready")

    # THEN it says no, naming the warehouse and where it looked
    assert ready.status_code == 503
    assert f"127.0.0.1:{settings.warehouse_port}" in ready.json()["checks"]["warehouse"]

"""The transformer as a service: healthy at once, ready once Spark is warm, and fed by its queue."""

from __future__ import annotations

import importlib
import logging
import time

import pytest
from fastapi.testclient import TestClient

from shared.aws import client, object_exists
from tests.integration.test_transformer_handler import SOURCE, movies_csv, put_processed

pytestmark = pytest.mark.integration


@pytest.fixture
def service_app(provisioned, spark, monkeypatch):
    """``services.transformer.app:app`` configured from the environment, as uvicorn would load it."""
    monkeypatch.setenv("MOVIEPIPE_PREFIX", provisioned.prefix)
    monkeypatch.setenv("MOVIEPIPE_AWS_ENDPOINT_URL", provisioned.aws_endpoint_url)
    monkeypatch.setenv("MOVIEPIPE_POLL_WAIT_SECONDS", "1")
    monkeypatch.setenv("MOVIEPIPE_LOG_LEVEL", "WARNING")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    import services.transformer.app as module

    yield importlib.reload(module).app
    root.handlers[:], root.level = handlers, level


def wait_until(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_service_is_healthy_at_once_ready_when_warm_and_transforms_what_lands(
    service_app, provisioned, tmp_path
):
    with TestClient(service_app) as http:
        # GIVEN the service just started
        # WHEN / THEN it answers /health while Spark warms up, and becomes ready
        assert http.get("/health").json() == {"status": "ok", "stage": "transformer"}
        assert wait_until(lambda: http.get("/ready").status_code == 200), http.get("/ready").json()
        assert http.get("/ready").json()["checks"]["duckdb"] == "ok"

        # WHEN a processed extract lands (S3 notifies the transformer's queue)
        extract_id = put_processed(provisioned, tmp_path, movies_csv(["Alpha", "Beta"]))

        # THEN its archive is committed, and the metrics count it
        key = f"{SOURCE}/{extract_id}/manifest.json"
        assert wait_until(lambda: object_exists(provisioned, provisioned.bucket("archive"), key))
        # (the counts follow the archive: the extract is registered in the Data Catalog in between)
        succeeded = 'moviepipe_transformer_extracts_total{outcome="succeeded"}'
        assert wait_until(lambda: succeeded in http.get("/metrics").text)
        metrics = http.get("/metrics").text
        assert 'moviepipe_transformer_rows_total{kind="clean"}' in metrics
        assert 'moviepipe_transformer_extracts_total{outcome="succeeded"}' in metrics
    listing = client("s3", provisioned).list_objects_v2(Bucket=provisioned.bucket("archive"))
    assert listing["KeyCount"] == 3

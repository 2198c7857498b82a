"""Secrets in the sources file: read from the environment when used, never in a log line or an API answer."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient

from services.extractor.app import create_app
from services.extractor.settings import extractor_settings
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.integration

PASSWORD = "hunter2-pg-secret"
TOKEN = "tok-9f8e7d-partner-secret"


def test_secrets_from_the_environment_appear_in_no_log_line_and_no_api_answer(
    provisioned, monkeypatch, caplog, capsys, tmp_path
):
    # GIVEN a PostgreSQL source whose URL (with a password) and an HTTP source whose token come from
    # the environment; trust auth lets the password through, and the table does not exist
    monkeypatch.setenv("FILMS_DATABASE_URL", POSTGRES_URL.replace("postgres@", f"postgres:{PASSWORD}@"))
    monkeypatch.setenv("PARTNER_TOKEN", TOKEN)
    sources = tmp_path / "sources.toml"
    sources.write_text(
        "[sources.films]\n"
        'kind = "postgres"\n'
        'url = { env = "FILMS_DATABASE_URL" }\n'
        'table = "no_such_schema.films"\n'
        "[sources.partner]\n"
        'kind = "http"\n'
        'url = "http://127.0.0.1:9/movies"\n'
        'auth = { kind = "bearer", token = { env = "PARTNER_TOKEN" } }\n'
        "max_attempts = 1\n"
    )
    settings = extractor_settings(provisioned).model_copy(update={"sources": sources})
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings)) as service:
        # WHEN the sources are listed, and both are extracted (and fail)
        listed = service.get("/sources")
        extracts = [
            service.post("/extracts", json={"source": name}).json()["extract_id"]
            for name in sources_of(listed)
        ]
        records = [wait_until_failed(service, extract_id) for extract_id in extracts]
    # THEN the listing names where each secret comes from, never its value
    assert listed.status_code == 200
    assert PASSWORD not in listed.text and TOKEN not in listed.text
    shown = {source["name"]: source["settings"] for source in listed.json()["sources"]}
    assert shown["films"]["url"] == {"env": "FILMS_DATABASE_URL"}
    assert shown["partner"]["auth"] == {"kind": "bearer"}
    # AND the failures say what went wrong without either secret, in the API and in every log line
    for record in records:
        assert record["stages"]["extractor"]["status"] == "failed"
        assert PASSWORD not in str(record) and TOKEN not in str(record)
    assert "no_such_schema" in records[0]["stages"]["extractor"]["error"]["message"]
    logged = caplog.text + capsys.readouterr().err
    assert "extract_failed" in logged
    assert PASSWORD not in logged and TOKEN not in logged


def sources_of(listed) -> list[str]:
    return sorted(source["name"] for source in listed.json()["sources"])


def wait_until_failed(service: TestClient, extract_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = service.get(f"/extracts/{extract_id}").json()
        if record["stages"].get("extractor", {}).get("status") in ("failed", "succeeded"):
            return record
        time.sleep(0.2)
    raise TimeoutError(f"extract {extract_id} did not finish within {timeout}s")

"""One whole local stack per test session, on free ports and a temporary home."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from moviepipe import stack
from moviepipe.client import ExtractorClient
from shared.settings import Settings
from tests.conftest import free_port


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory) -> Iterator[Settings]:
    """Settings of a running stack (moto, warehouse, four services), started like `moviepipe up --detach`."""
    home = tmp_path_factory.mktemp("moviepipe-home")
    ports = {f"{name}_port": free_port() for name in ("moto", "warehouse", "dashboard", *stack.SERVICES)}
    settings = Settings(
        home=home, poll_wait_seconds=1, aws_endpoint_url=f"http://127.0.0.1:{ports['moto_port']}", **ports
    )
    try:
        stack.start_detached(settings, lambda step: None)
        yield settings
    finally:
        stack.stop_detached(settings, lambda step: None)


@pytest.fixture(scope="session")
def loaded_extract(stack_settings) -> tuple[str, dict]:
    """One real IMDb extract, requested with POST /extracts and followed until it is loaded."""
    response = httpx.post(f"{stack_settings.service_url('extractor')}/extracts", json={"source": "imdb"})
    assert response.status_code == 202, response.text
    extract_id = response.json()["extract_id"]
    record = ExtractorClient(stack_settings).follow(extract_id, lambda _: None, timeout=600)
    return extract_id, record


def run_cli(settings: Settings, *args: str, columns: int = 80) -> subprocess.CompletedProcess:
    """Run ``moviepipe ARGS`` as a user would, configured for the test stack through its environment.

    ``columns`` is the width of the user's terminal (tables are cut to it).
    """
    return subprocess.run(
        [sys.executable, "-m", "moviepipe.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**stack.child_environment(settings), "COLUMNS": str(columns)},
    )

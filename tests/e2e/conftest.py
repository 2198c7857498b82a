"""One whole local stack per test session, on free ports and a temporary home."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from moviepipe import stack
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

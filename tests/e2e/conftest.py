"""One whole local stack per test session, on free ports and a temporary home."""

from __future__ import annotations

import os
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
    # The services read the same values from their environment.
    saved = dict(os.environ)
    os.environ.update(stack.child_environment(settings))
    try:
        stack.start_detached(settings, lambda step: None)
        yield settings
    finally:
        stack.stop_detached(settings, lambda step: None)
        os.environ.clear()
        os.environ.update(saved)

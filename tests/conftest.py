"""Fixtures shared by every test layer: one moto server per test session, uniquely named resources."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.aws import LOCAL_CREDENTIALS
from shared.settings import Settings

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
for _name, _value in LOCAL_CREDENTIALS.items():
    os.environ.setdefault(_name, _value)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server process (S3, SQS, SNS, DynamoDB, Glue) on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{endpoint}/moto-api/")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def settings(moto_endpoint: str, tmp_path: Path) -> Settings:
    """Settings with a unique resource prefix, so tests never see each other's buckets or queues."""
    return Settings(
        prefix=f"t{uuid.uuid4().hex[:10]}",
        aws_endpoint_url=moto_endpoint,
        home=tmp_path / "home",
        poll_wait_seconds=1,
    )


@pytest.fixture
def provisioned(settings: Settings) -> Settings:
    """The settings, with every declared resource created on the moto server."""
    from deploy.provision import provision

    provision(settings)
    return settings

"""Fixtures shared by every test layer: one moto server per test session, uniquely named resources."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy
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


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """A real moto server process (S3, SQS, SNS, DynamoDB, Glue) on a free port; its endpoint. Stopping it
    loses everything it held, as moto does."""
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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the whole session."""
    with moto_process() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def smtp_url() -> Iterator[str]:
    """A real SMTP server (aiosmtpd) on a free port; it keeps what it receives in ``RECEIVED_EMAILS``."""
    from aiosmtpd.controller import Controller

    from tests.factories import RECEIVED_EMAILS

    class Collect:
        async def handle_DATA(self, server, session, envelope):
            RECEIVED_EMAILS.append(message_from_bytes(envelope.content, policy=email_policy.default))
            return "250 OK"

    controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


@pytest.fixture
def settings(moto_endpoint: str, smtp_url: str, tmp_path: Path) -> Settings:
    """Settings with a unique resource prefix, so tests never see each other's buckets or queues; every
    alert is emailed to the test SMTP server too."""
    return Settings(
        prefix=f"t{uuid.uuid4().hex[:10]}",
        aws_endpoint_url=moto_endpoint,
        home=tmp_path / "home",
        poll_wait_seconds=1,
        smtp_url=smtp_url,
    )


@pytest.fixture
def provisioned(settings: Settings) -> Settings:
    """The settings, with every declared resource created on the moto server."""
    from deploy.provision import provision

    provision(settings)
    return settings


# -- PostgreSQL: a real external source database (127.0.0.1:5432, trust auth; `.ci/run` starts it) -----
POSTGRES_URL = os.environ.get(
    "MOVIEPIPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
POSTGRES_TYPES = {"string": "text", "integer": "bigint", "number": "double precision", "boolean": "boolean"}
IMDB_UPDATED_FROM = "2026-01-01 00:00:00+00"
"""Row ``id`` of the IMDb table in PostgreSQL was last updated ``id`` seconds after this."""


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[object]:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed at {POSTGRES_URL} (`.ci/run` starts it): {exc}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def imdb_arrow() -> object:
    """The bundled IMDb movies as one Arrow table in the movie record's schema."""
    from services.extractor.sources.scaled import imdb_table

    return imdb_table()


@pytest.fixture(scope="session")
def imdb_postgres_csv(imdb_arrow) -> bytes:
    """The IMDb rows as ``COPY`` takes them: ``id``, the record's fields, ``updated_at``."""
    import io
    from datetime import datetime, timedelta

    import pyarrow as pa
    import pyarrow.csv as pa_csv

    ids = range(1, imdb_arrow.num_rows + 1)
    start = datetime.fromisoformat(IMDB_UPDATED_FROM)
    table = imdb_arrow.add_column(0, "id", pa.array(ids, pa.int64())).append_column(
        "updated_at", pa.array([start + timedelta(seconds=n) for n in ids], pa.timestamp("s", tz="UTC"))
    )
    data = io.BytesIO()
    pa_csv.write_csv(table, data, pa_csv.WriteOptions(include_header=False))
    return data.getvalue()


@pytest.fixture
def imdb_postgres(postgres_engine, imdb_postgres_csv) -> Iterator[str]:
    """A schema of the test's own holding ``movies``: the 58,788 IMDb rows, an ``id`` and an ``updated_at``.

    Yields the schema's name; the schema is dropped afterwards.
    """
    from shared.schema import MOVIE_FIELDS, field_names

    schema = f"t_{uuid.uuid4().hex[:12]}"
    columns = ", ".join(f'"{f.name}" {POSTGRES_TYPES[f.kind]}' for f in MOVIE_FIELDS)
    names = ", ".join(f'"{name}"' for name in ["id", *field_names(), "updated_at"])
    with postgres_engine.begin() as connection:
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {schema}")
            cursor.execute(
                f"CREATE TABLE {schema}.movies (id bigint PRIMARY KEY, {columns}, updated_at timestamptz)"
            )
            with cursor.copy(f"COPY {schema}.movies ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(imdb_postgres_csv)
    try:
        yield schema
    finally:
        with postgres_engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")

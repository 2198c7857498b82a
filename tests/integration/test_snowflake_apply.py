"""``python -m deploy.snowflake.apply``: deploy/snowflake/ applied in order through the Snowflake connector,
credentials from the environment, stopping at the first failing statement with its file and number.

The warehouse stand-in runs what a plain database has (database, schemas, warehouse, file format, stage,
tables, views); it has no storage integrations, pipes, streams or tasks, and refuses them, which is how
the failure path is exercised here. A real account was not available to this suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.snowflake import apply as snowflake_apply
from deploy.snowflake import generate
from shared.settings import Settings
from shared.warehouse import connect, query
from tests.integration.conftest import warehouse_process

pytestmark = pytest.mark.integration

ROLE_ARN = "arn:aws:iam::123456789012:role/moviepipe-snowflake"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def account(moto_endpoint: str, tmp_path: Path):
    """A warehouse stand-in of this test's own, empty: the "account" the command sets up."""
    with warehouse_process(tmp_path / "warehouse", moto_endpoint) as port:
        yield Settings(aws_endpoint_url=moto_endpoint, warehouse_port=port)


def run_apply(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """The command as an admin runs it: settings only from the environment."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "MOVIEPIPE_ENVIRONMENT": "local",
        "MOVIEPIPE_WAREHOUSE_PORT": str(settings.warehouse_port),
        "MOVIEPIPE_AWS_ENDPOINT_URL": settings.aws_endpoint_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "deploy.snowflake.apply", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tables_of(settings: Settings) -> set[str]:
    _, rows = query(
        settings,
        "SELECT table_schema || '.' || table_name FROM MOVIES.information_schema.tables "
        "WHERE table_schema IN ('RAW', 'AUDIT', 'ANALYTICS')",
    )
    return {row[0] for row in rows}


def test_the_files_a_plain_database_runs_are_applied_and_can_run_again(account):
    # GIVEN an empty account WHEN the database, stage and tables are applied, twice
    first = run_apply(account, "--only", "00,02,03")
    second = run_apply(account, "--only", "00,02,03")

    # THEN both runs succeed, reporting each statement, and the loader's tables and views exist
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    planned = snowflake_apply.plan(
        ["00_database.sql", "02_stage.sql", "03_tables.sql"], archive_bucket="b", archive_role_arn=None
    )
    assert first.stdout.count("\nok  ") == len(planned) == second.stdout.count("\nok  ")
    found = tables_of(account)
    assert {"RAW.MOVIES", "AUDIT.REJECTS", "AUDIT.BATCHES", "ANALYTICS.DIM_MOVIE"} <= found
    _, rows = query(account, "SELECT count(*) FROM MOVIES.ANALYTICS.V_TOP_MOVIES")  # the BI views too
    assert rows == [(0,)]


def test_the_first_failing_statement_stops_the_run_and_is_named(account):
    # GIVEN an account without storage integrations (the stand-in has none)
    # WHEN the loader's files are applied in full
    result = run_apply(account, "--archive-role-arn", ROLE_ARN)

    # THEN it fails at 01's one statement, naming it; 00 ran before it, and nothing after it did
    assert result.returncode == 1
    assert "01_storage_integration.sql statement 1 of 1 failed" in result.stderr
    assert "CREATE STORAGE INTEGRATION IF NOT EXISTS MOVIEPIPE_ARCHIVE" in result.stderr
    assert "ok  00_database.sql statement 5 of 5" in result.stdout
    assert "ok  02_stage.sql" not in result.stdout
    with connect(account.model_copy(update={"warehouse_database": "MOVIES"})) as connection:
        schemas = connection.cursor().execute("SELECT schema_name FROM MOVIES.information_schema.schemata")
        assert {"RAW", "AUDIT", "ANALYTICS"} <= {row[0] for row in schemas.fetchall()}
    assert tables_of(account) == set()


def test_a_missing_role_arn_or_unknown_file_is_refused_before_connecting(moto_endpoint):
    # GIVEN no warehouse at all (port 9 answers nothing)
    nowhere = Settings(aws_endpoint_url=moto_endpoint, warehouse_port=9)

    # WHEN the storage integration's file is asked for without its role, or a file that does not exist
    no_role = run_apply(nowhere)
    unknown = run_apply(nowhere, "--only", "07")

    # THEN each is refused with what is missing, before any connection
    assert no_role.returncode == 2
    assert "01_storage_integration.sql needs --archive-role-arn" in no_role.stderr
    assert unknown.returncode == 2
    assert "no file '07' in deploy/snowflake" in unknown.stderr


def test_each_way_of_merging_runs_its_files_in_order_with_placeholders_filled():
    tasks = snowflake_apply.file_names("tasks")
    assert snowflake_apply.file_names("loader") == list(snowflake_apply.ALWAYS)
    assert tasks == [*snowflake_apply.ALWAYS, "05_stream.sql", "06_tasks.sql"]
    assert "04_pipe.sql" in snowflake_apply.file_names("snowpipe")
    statements = snowflake_apply.plan(tasks, archive_bucket="acme-archive", archive_role_arn=ROLE_ARN)
    text = "\n".join(statement.sql for statement in statements)
    assert "&{" not in text
    assert "s3://acme-archive/" in text and ROLE_ARN in text
    # A task's transaction block (semicolons inside $$ … $$) stays one statement.
    task_bodies = [s for s in statements if s.file == "06_tasks.sql" and "$$" in s.sql]
    assert task_bodies and all(s.sql.count("$$") == 2 for s in task_bodies)
    assert len(task_bodies) == len(generate.task_groups())  # one child task per transaction

"""The warehouse stand-in as a process, through the real Snowflake connector: what survives, what it reads."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import snowflake.connector
from snowflake.connector.constants import FIELD_ID_TO_NAME

from shared.aws import client
from shared.settings import Settings
from shared.warehouse import ConnectionPool, connect, connection_parameters, query
from tests.conftest import free_port, wait_for_http
from tests.integration.conftest import warehouse_process

pytestmark = pytest.mark.integration

CSV = b'ID,NAME\n1,"Heat, ""the"" movie"\n2,\n'


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    """A bucket on moto holding one small CSV file at ``data/part-00000.csv``."""
    settings = Settings(aws_endpoint_url=moto_endpoint)
    name = f"wh-{uuid.uuid4().hex[:10]}"
    s3 = client("s3", settings)
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="data/part-00000.csv", Body=CSV)
    return name


def at(port: int, database: str = "KEEP") -> Settings:
    return Settings(warehouse_port=port, warehouse_database=database)


def test_data_load_history_stages_and_formats_survive_a_restart(moto_endpoint, bucket, tmp_path):
    # GIVEN a warehouse process holding a table loaded by COPY through a stage and a named file format
    data_dir = tmp_path / "warehouse"
    copy = (
        "COPY INTO KEEP.RAW.T (ID, NAME) FROM '@KEEP.RAW.SRC/data/' FILES = ('part-00000.csv') "
        "FILE_FORMAT = (FORMAT_NAME = 'KEEP.RAW.CSV')"
    )
    with warehouse_process(data_dir, moto_endpoint) as port, connect(at(port)) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE SCHEMA IF NOT EXISTS KEEP.RAW")
        cursor.execute("CREATE TABLE KEEP.RAW.T (ID NUMBER(38,0), NAME VARCHAR)")
        cursor.execute(f"CREATE STAGE KEEP.RAW.SRC URL = 's3://{bucket}/'")
        cursor.execute(
            "CREATE FILE FORMAT KEEP.RAW.CSV TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"'"
        )
        first = cursor.execute(copy).fetchall()
    assert first[0][1] == "LOADED" and first[0][3] == 2

    # WHEN the process is stopped and started again on the same data directory
    with warehouse_process(data_dir, moto_endpoint) as port:
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        # THEN the database is there without anyone naming it, with its rows
        assert "KEEP" in health["databases"]
        _, rows = query(at(port, "OTHER"), "SELECT ID, NAME FROM KEEP.RAW.T ORDER BY ID")
        assert rows == [(1, 'Heat, "the" movie'), (2, None)]

        # AND the load history still knows the file, and the stage and file format still resolve
        _, again = query(at(port), copy)
        assert again[0][1] == "LOAD_SKIPPED" and again[0][6] == "File was loaded before."
        _, rows = query(at(port), "SELECT COUNT(*) FROM KEEP.RAW.T")
        assert rows == [(2,)]


def test_committed_data_survives_a_killed_process(moto_endpoint, tmp_path):
    # GIVEN a warehouse process with a committed row
    data_dir = tmp_path / "warehouse"
    data_dir.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moviepipe.warehouse", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AWS_ENDPOINT_URL": moto_endpoint},
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health")
        query(at(port), "CREATE TABLE KEEP.PUBLIC.T (ID NUMBER(38,0))")
        query(at(port), "INSERT INTO KEEP.PUBLIC.T VALUES (7)")
    finally:
        # WHEN it is killed, with no chance to shut down
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    # THEN a new process finds the row
    with warehouse_process(data_dir, moto_endpoint) as port:
        assert query(at(port), "SELECT ID FROM KEEP.PUBLIC.T")[1] == [(7,)]


def test_sigterm_stops_the_process_cleanly(moto_endpoint, tmp_path):
    # GIVEN a running warehouse process
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moviepipe.warehouse",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "wh"),
            "--aws-endpoint-url",
            moto_endpoint,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_http(f"http://127.0.0.1:{port}/health")
    query(at(port), "SELECT 1")

    # WHEN it gets SIGTERM
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)

    # THEN it exits 0, saying it stopped, and leaves its database file checkpointed
    assert process.returncode == 0
    assert b"warehouse_stopped" in stderr
    assert (tmp_path / "wh" / "KEEP.db").exists()
    assert not (tmp_path / "wh" / "KEEP.db.wal").exists()


def test_copy_reads_s3_urls_from_moto_through_the_connector(warehouse, bucket):
    # GIVEN a table, and a file in a bucket on moto
    settings = at(warehouse, f"S3_{uuid.uuid4().hex[:8].upper()}")
    db = settings.warehouse_database
    query(settings, f"CREATE TABLE {db}.PUBLIC.T (ID NUMBER(38,0), NAME VARCHAR)")

    # WHEN a session copies it by its s3:// URL (DuckDB reads it through the registered s3fs filesystem)
    copied = query(
        settings,
        f"COPY INTO {db}.PUBLIC.T FROM 's3://{bucket}/data/part-00000.csv' "
        "FILE_FORMAT = (TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"')",
    )

    # THEN the rows are in the table
    assert copied[1][0][:4] == (f"s3://{bucket}/data/part-00000.csv", "LOADED", 2, 2)
    assert query(settings, f"SELECT NAME FROM {db}.PUBLIC.T WHERE ID = 1")[1] == [('Heat, "the" movie',)]


def test_copy_reads_a_whole_local_copy_and_leaves_none_behind(moto_endpoint, bucket, tmp_path):
    # GIVEN a warehouse process, a table, and in the bucket a gzipped file beside the plain one
    s3 = client("s3", Settings(aws_endpoint_url=moto_endpoint))
    s3.put_object(Bucket=bucket, Key="data/part-00001.csv.gz", Body=gzip.compress(b"ID,NAME\n3,Ran\n"))
    data_dir = tmp_path / "wh"
    with warehouse_process(data_dir, moto_endpoint) as port:
        settings = at(port, "LOCAL")
        query(settings, "CREATE TABLE LOCAL.PUBLIC.T (ID NUMBER(38,0), NAME VARCHAR)")
        copy = (
            "COPY INTO LOCAL.PUBLIC.T FROM 's3://{bucket}/data/{file}' "
            "FILE_FORMAT = (TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"')"
        )
        # WHEN both are copied
        for file in ("part-00000.csv", "part-00001.csv.gz"):
            query(settings, copy.format(bucket=bucket, file=file))
        # THEN the rows of both are loaded (the compression still told by the name)
        assert query(settings, "SELECT ID FROM LOCAL.PUBLIC.T ORDER BY ID")[1] == [(1,), (2,), (3,)]
        # AND the load history names the s3:// URLs, not the local copies
        history = query(settings, "SELECT FILE_NAME FROM LOCAL.INFORMATION_SCHEMA.LOAD_HISTORY")[1]
        assert sorted(name for (name,) in history) == [
            f"s3://{bucket}/data/part-00000.csv",
            f"s3://{bucket}/data/part-00001.csv.gz",
        ]
        # AND no local copy is left in the warehouse's folder
        assert [path.name for path in data_dir.iterdir() if path.name.startswith("copy-")] == []


def test_copy_parses_text_into_the_column_types_not_guessed_ones(warehouse, bucket, moto_endpoint):
    # GIVEN a one-row file whose key and title look like numbers, and a table of more than ten columns
    s3 = client("s3", Settings(aws_endpoint_url=moto_endpoint))
    header = ",".join(f"C{n}" for n in range(12))
    s3.put_object(
        Bucket=bucket, Key="data/numbers.csv", Body=f"{header}\n0042,007,true,,{',' * 7}9\n".encode()
    )
    settings = at(warehouse, f"TYPES_{uuid.uuid4().hex[:8].upper()}")
    db = settings.warehouse_database
    columns = ", ".join(
        f"C{n} {kind}" for n, kind in enumerate(["VARCHAR", "VARCHAR", "BOOLEAN"] + ["FLOAT"] * 9)
    )
    query(
        settings,
        f"CREATE TABLE {db}.PUBLIC.T ({columns}, LOADED_AT TIMESTAMP_NTZ DEFAULT CURRENT_TIMESTAMP())",
    )

    # WHEN it is copied into the table's first twelve columns
    column_list = ", ".join(f"C{n}" for n in range(12))
    query(
        settings,
        f"COPY INTO {db}.PUBLIC.T ({column_list}) FROM 's3://{bucket}/data/numbers.csv' "
        "FILE_FORMAT = (TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"')",
    )

    # THEN the text keeps its leading zeros, empty fields are NULL, and the rest is typed by the table
    _, rows = query(settings, f"SELECT C0, C1, C2, C3, C11, LOADED_AT IS NOT NULL FROM {db}.PUBLIC.T")
    assert rows == [("0042", "007", True, None, 9.0, True)]


def test_snowflake_only_ddl_runs_as_a_no_op(warehouse):
    # GIVEN DDL for Snowflake features DuckDB lacks (streams, tasks, virtual warehouses)
    settings = at(warehouse, "NOPS")
    query(settings, "CREATE TABLE NOPS.PUBLIC.T (ID NUMBER(38,0))")
    statements = [
        "CREATE OR REPLACE STREAM NOPS.PUBLIC.T_CHANGES ON TABLE NOPS.PUBLIC.T",
        "CREATE TASK IF NOT EXISTS NOPS.PUBLIC.MERGE_T WAREHOUSE = LOAD_WH AS SELECT 1",
        "ALTER TASK NOPS.PUBLIC.MERGE_T RESUME",
        "CREATE WAREHOUSE IF NOT EXISTS LOAD_WH WITH WAREHOUSE_SIZE = 'XSMALL'",
        "USE WAREHOUSE LOAD_WH",
    ]

    # WHEN each runs, THEN each succeeds
    for statement in statements:
        _, rows = query(settings, statement)
        assert rows, statement


def test_a_statement_run_again_from_its_kept_translation_acts_as_the_first_run(warehouse):
    # GIVEN a table, and one session that runs the same statements again and again
    settings = at(warehouse, f"KEPT_{uuid.uuid4().hex[:8].upper()}")
    db = settings.warehouse_database
    query(settings, f"CREATE TABLE {db}.PUBLIC.T (ID NUMBER(38,0), N NUMBER(38,0))")
    query(settings, f"INSERT INTO {db}.PUBLIC.T VALUES (1, 0), (2, 10)")
    with connect(settings) as connection:
        cursor = connection.cursor()

        # WHEN an update runs three times, THEN each run updates the row again and reports it
        for _ in range(3):
            cursor.execute(f"UPDATE {db}.PUBLIC.T SET N = N + 1 WHERE ID = 1")
            assert cursor.rowcount == 1
        cursor.execute(f"SELECT N FROM {db}.PUBLIC.T WHERE ID = 1")
        assert cursor.fetchall() == [(3,)]

        # WHEN the same text reads a session variable that changed, THEN it reads the new value
        seen = []
        for wanted in (1, 2, 1):
            cursor.execute(f"SET WANTED = {wanted}")
            cursor.execute(f"SELECT N FROM {db}.PUBLIC.T WHERE ID = $WANTED")
            seen.append(cursor.fetchall())
        assert seen == [[(3,)], [(10,)], [(3,)]]

        # WHEN the table it ran on is gone, THEN it fails as a statement on a missing table does
        cursor.execute(f"DROP TABLE {db}.PUBLIC.T")
        with pytest.raises(snowflake.connector.errors.ProgrammingError) as failed:
            cursor.execute(f"UPDATE {db}.PUBLIC.T SET N = N + 1 WHERE ID = 1")
        assert failed.value.sqlstate == "42S02"
        assert "T" in failed.value.msg


def test_a_lost_write_race_is_reported_not_hidden(warehouse):
    # GIVEN two sessions updating the same row in overlapping transactions
    settings = at(warehouse, f"RACE_{uuid.uuid4().hex[:8].upper()}")
    db = settings.warehouse_database
    query(settings, f"CREATE TABLE {db}.PUBLIC.T (ID NUMBER(38,0), N NUMBER(38,0))")
    query(settings, f"INSERT INTO {db}.PUBLIC.T VALUES (1, 0)")
    first = snowflake.connector.connect(**connection_parameters(settings))
    second = snowflake.connector.connect(**connection_parameters(settings))
    try:
        a, b = first.cursor(), second.cursor()
        a.execute("BEGIN")
        b.execute("BEGIN")
        a.execute(f"UPDATE {db}.PUBLIC.T SET N = 1 WHERE ID = 1")

        # WHEN the second writes the same row, and commits after the first
        # THEN the second is told its transaction failed (instead of a COMMIT that silently did nothing)
        with pytest.raises(snowflake.connector.errors.ProgrammingError, match="40001"):
            b.execute(f"UPDATE {db}.PUBLIC.T SET N = 2 WHERE ID = 1")
            a.execute("COMMIT")
            b.execute("COMMIT")
        b.execute("ROLLBACK")
        a.execute("COMMIT")
    finally:
        first.close()
        second.close()
    assert query(settings, f"SELECT N FROM {db}.PUBLIC.T")[1] == [(1,)]


def test_a_session_that_ends_mid_transaction_gives_its_rows_back(warehouse):
    # GIVEN a session that updated a row in a transaction, then logged out without committing
    settings = at(warehouse, f"ENDS_{uuid.uuid4().hex[:8].upper()}")
    db = settings.warehouse_database
    query(settings, f"CREATE TABLE {db}.PUBLIC.T (ID NUMBER(38,0), N NUMBER(38,0))")
    query(settings, f"INSERT INTO {db}.PUBLIC.T VALUES (1, 0)")
    sessions = httpx.get(f"http://127.0.0.1:{warehouse}/health").json()["sessions"]
    gone = snowflake.connector.connect(**connection_parameters(settings))
    cursor = gone.cursor()
    cursor.execute("BEGIN")
    cursor.execute(f"UPDATE {db}.PUBLIC.T SET N = 1 WHERE ID = 1")
    gone.close()

    # WHEN another session updates the same row
    query(settings, f"UPDATE {db}.PUBLIC.T SET N = 2 WHERE ID = 1")

    # THEN it is not blocked by the ended session's transaction, which was rolled back, and no session
    # outlives its client
    assert query(settings, f"SELECT N FROM {db}.PUBLIC.T")[1] == [(2,)]
    assert httpx.get(f"http://127.0.0.1:{warehouse}/health").json()["sessions"] == sessions


def test_a_session_whose_client_dies_mid_transaction_gives_its_rows_back_after_it_goes_silent(
    moto_endpoint, tmp_path
):
    # GIVEN a warehouse that ends sessions idle inside a transaction for 2 s, and a client that updated a
    # row in a transaction and then went silent without committing or logging out (as a killed one does)
    with warehouse_process(
        tmp_path / "warehouse", moto_endpoint, None, "--idle-transaction-seconds", "2"
    ) as port:
        settings = at(port, "IDLE")
        query(settings, "CREATE TABLE IDLE.PUBLIC.T (ID NUMBER(38,0), N NUMBER(38,0))")
        query(settings, "INSERT INTO IDLE.PUBLIC.T VALUES (1, 0)")
        dead = snowflake.connector.connect(**connection_parameters(settings))
        try:
            cursor = dead.cursor()
            cursor.execute("BEGIN")
            cursor.execute("UPDATE IDLE.PUBLIC.T SET N = 1 WHERE ID = 1")
            # a session without a transaction is never ended for being idle
            idle = snowflake.connector.connect(**connection_parameters(settings))
            idle.cursor().execute("SELECT 1")
            sessions = httpx.get(f"http://127.0.0.1:{port}/health").json()["sessions"]

            # WHEN another session writes the same row: at first it conflicts with the open transaction
            with pytest.raises(snowflake.connector.errors.ProgrammingError, match="40001"):
                query(settings, "UPDATE IDLE.PUBLIC.T SET N = 2 WHERE ID = 1")
            deadline = time.monotonic() + 20
            while True:
                try:
                    query(settings, "UPDATE IDLE.PUBLIC.T SET N = 2 WHERE ID = 1")
                    break
                except snowflake.connector.errors.ProgrammingError:
                    assert time.monotonic() < deadline, "the silent session's transaction was never ended"
                    time.sleep(0.5)

            # THEN once the silent session is ended its update is rolled back and the write goes through,
            # the idle session without a transaction lives on, and the silent client is refused (401)
            assert query(settings, "SELECT N FROM IDLE.PUBLIC.T")[1] == [(2,)]
            assert httpx.get(f"http://127.0.0.1:{port}/health").json()["sessions"] == sessions - 1
            assert idle.cursor().execute("SELECT 2").fetchall() == [(2,)]
            with pytest.raises(snowflake.connector.errors.Error, match="401 Unauthorized"):
                cursor.execute("COMMIT")
            log = (tmp_path / "warehouse-warehouse.log").read_text()
            assert '"event": "idle_transaction_ended"' in log
        finally:
            idle.close()
            dead.close()


def test_the_module_can_run_in_process(moto_endpoint, tmp_path: Path):
    # GIVEN the warehouse started in a thread of this process (handy for experiments)
    from moviepipe.warehouse import running

    # WHEN a connection queries it
    # THEN it answers like the process does
    with running(tmp_path / "wh", moto_endpoint) as port:
        assert query(at(port, "INPROC"), "SELECT 41 + 1")[1] == [(42,)]


def test_the_connection_pool_reuses_connections_and_survives_a_warehouse_restart(moto_endpoint, tmp_path):
    from services.dashboard.queries import warehouse_reader

    # GIVEN a pool and a reader of one table, as the dashboard holds them
    data_dir, port = tmp_path / "warehouse", free_port()
    with warehouse_process(data_dir, port=port, aws_endpoint_url=moto_endpoint):
        query(at(port), "CREATE TABLE KEEP.PUBLIC.T (ID NUMBER(38,0))")
        query(at(port), "INSERT INTO KEEP.PUBLIC.T VALUES (7)")
        pool = ConnectionPool(at(port))
        reader = warehouse_reader(at(port), {"rows": "SELECT ID FROM KEEP.PUBLIC.T"}, pool)
        # WHEN it reads twice
        assert reader.read()["rows"].value == [{"ID": 7}]
        with pool.connection() as first:
            pass
        with pool.connection() as second:
            pass
        # THEN the second read had the first's connection, not a new login
        assert first is second and not first.is_closed()
        # AND a statement's own error fails its section but keeps the connection
        broken = warehouse_reader(at(port), {"bad": "SELECT NOPE FROM KEEP.PUBLIC.T"}, pool)
        assert broken.read()["bad"].failed
        with pool.connection() as third:
            assert third is first

    # WHEN the warehouse restarts on the same port, the kept connection's session gone with it
    with warehouse_process(data_dir, port=port, aws_endpoint_url=moto_endpoint):
        # THEN the next read still answers, on a new connection
        assert reader.read()["rows"].value == [{"ID": 7}]
    pool.close()


def test_a_result_is_described_from_its_run_with_the_types_describe_gives(
    moto_endpoint, tmp_path, monkeypatch
):
    # GIVEN the warehouse in this process, watched for DESCRIBE statements, and a table of many types
    import fakesnow.cursor
    import sqlglot

    from moviepipe.warehouse import running

    described: list[str] = []
    parse_one = sqlglot.parse_one

    def watched(sql: str, *args, **kwargs):
        if sql.startswith("DESCRIBE "):
            described.append(sql)
        return parse_one(sql, *args, **kwargs)

    monkeypatch.setattr(fakesnow.cursor.sqlglot, "parse_one", watched)
    with running(tmp_path / "wh", moto_endpoint) as port, connect(at(port, "TYPES")) as connection:
        cursor = connection.cursor()
        cursor.execute(
            "CREATE TABLE TYPES.PUBLIC.T (ID NUMBER(38,0), PRICE NUMBER(10,2), NAME VARCHAR,"
            " SEEN TIMESTAMP_NTZ, OK BOOLEAN, SCORE FLOAT, DAY DATE, EXTRA VARIANT)"
        )
        # WHEN rows are written and read back
        cursor.execute(
            "INSERT INTO TYPES.PUBLIC.T SELECT 1, 9.99, 'a', '2026-01-02 03:04:05'::TIMESTAMP_NTZ, TRUE, 0.5,"
            " '2026-01-02'::DATE, PARSE_JSON('{\"k\": 1}')"
        )
        inserted = [(column.name, column.type_code) for column in cursor.description]
        cursor.execute("SELECT * FROM TYPES.PUBLIC.T")
        rows = cursor.fetchall()
        columns = {column.name: column for column in cursor.description}
        scanned_id = cursor.sfqid
        described_before_scan = list(described)
        # and an earlier result is read again through RESULT_SCAN (its columns are not at hand: DESCRIBE)
        cursor.execute(f"SELECT * FROM TABLE(RESULT_SCAN('{scanned_id}'))")
        scanned = cursor.fetchall()
        scanned_types = [FIELD_ID_TO_NAME[column.type_code] for column in cursor.description]

    # THEN every column has the type, precision and scale the table gave it, and no DESCRIBE ran for them
    assert inserted == [("number of rows inserted", 0)]
    assert {name: FIELD_ID_TO_NAME[column.type_code] for name, column in columns.items()} == {
        "ID": "FIXED",
        "PRICE": "FIXED",
        "NAME": "TEXT",
        "SEEN": "TIMESTAMP_NTZ",
        "OK": "BOOLEAN",
        "SCORE": "REAL",
        "DAY": "DATE",
        "EXTRA": "VARIANT",
    }
    assert (columns["PRICE"].precision, columns["PRICE"].scale) == (10, 2)
    assert (columns["ID"].precision, columns["ID"].scale) == (38, 0)
    assert rows[0][:3] == (1, Decimal("9.99"), "a")
    assert described_before_scan == []
    assert scanned == rows
    assert scanned_types == [FIELD_ID_TO_NAME[column.type_code] for column in columns.values()]

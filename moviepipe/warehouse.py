"""The local Snowflake stand-in: fakesnow's server over DuckDB files that survive restarts.

    python -m moviepipe.warehouse --host 127.0.0.1 --port 8090 --data-dir DIR [--aws-endpoint-url URL]

Every connection shares one DuckDB instance: each database is a file ``DIR/<NAME>.db`` (attached again at
start), and fakesnow's global catalog of stages and file formats is kept in ``DIR/_fs_global.fsdb`` rather
than in memory, so a restart keeps data, COPY load history, stages and file formats, as Snowflake does.
``s3://`` URLs (``COPY INTO … FROM 's3://…'`` and external stages) are read through an fsspec ``s3fs``
filesystem registered on that DuckDB instance, pointed at moto locally; COPY downloads each file whole
first and reads the local copy, which is ten times faster than DuckDB's small reads through fsspec.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import contextvars
import functools
import gc
import json
import logging
import os
import posixpath
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import snowflake.connector.errors
import uvicorn
from fakesnow import copy_into as copy_into_module
from fakesnow import cursor as fakesnow_cursor
from fakesnow import info_schema, macros
from fakesnow import server as fakesnow_server
from fakesnow.cursor import FakeSnowflakeCursor
from fakesnow.instance import GLOBAL_DATABASE_NAME, FakeSnow
from fakesnow.transforms import show
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.logs import configure_logging, log_event
from shared.settings import Settings

logger = logging.getLogger(__name__)

GLOBAL_CATALOG_FILE = "_fs_global.fsdb"
CHECKPOINT_THRESHOLD = "256MB"
IDLE_TRANSACTION_SECONDS = 30.0
"""A session that leaves a transaction open and sends nothing for this long is ended (its transaction
rolled back): its client died. Every client here runs a transaction's statements back to back."""
REAPER_INTERVAL_SECONDS = 1.0
GC_THRESHOLDS = (50_000, 20, 20)
"""The warehouse process's garbage collector thresholds. fakesnow builds a sqlglot tree for every statement
(thousands of objects, with cycles); with Python's defaults (700, 10, 10) a full collection over the kept
translations ran every other IMDb load, pausing a statement for 0.1-0.2 s. Young objects collected 50,000
at a time leave full collections rare (8 loads: none; the young collections take 11-19 ms)."""
DATABASE_SUFFIX = ".db"

# Snowflake-only DDL that fakesnow cannot run becomes a successful no-op (fakesnow matches these with
# re.match, IGNORECASE, against the statement text).
NOP_REGEXES = (
    r"\s*(create(\s+or\s+replace)?|alter|drop)\s+(stream|task|warehouse)\b",
    r"\s*(execute\s+task|use\s+warehouse)\b",
)


def open_warehouse(
    data_dir: Path, aws_endpoint_url: str | None = None, region: str = "us-east-1"
) -> FakeSnow:
    """A fakesnow instance whose databases, load history, stages and file formats live under ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # fakesnow hands every result over through DuckDB's DB-API arrow export, which warns on each query.
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
    warehouse = FakeSnow(db_path=data_dir, nop_regexes=list(NOP_REGEXES))
    duck = warehouse.duck_conn
    # fakesnow keeps stages and file formats in an in-memory catalog; a file makes them survive restarts.
    duck.execute(f"DETACH {GLOBAL_DATABASE_NAME}")
    duck.execute(f"ATTACH '{data_dir / GLOBAL_CATALOG_FILE}' AS {GLOBAL_DATABASE_NAME}")
    duck.execute(info_schema.fs_global_creation_sql())
    duck.execute(show.fs_global_creation_sql())
    # A database exists until it is dropped, whether or not a session names it when logging in.
    for db_file in sorted(data_dir.glob(f"*{DATABASE_SUFFIX}")):
        name = db_file.name.removesuffix(DATABASE_SUFFIX)
        duck.execute(f"ATTACH IF NOT EXISTS '{db_file}' AS {name}")
        duck.execute(info_schema.per_db_creation_sql(name))
        duck.execute(macros.creation_sql(name))
    # DuckDB checkpoints whenever its write-ahead log passes 16 MB, which a load of the IMDb sample does,
    # inside its commit: 0.15-0.45 s per commit on a warehouse of 7M rows, against 0.08 s without. The
    # log is checkpointed when the warehouse stops, and replayed if it was killed.
    duck.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
    s3 = s3_filesystem(aws_endpoint_url, region)
    duck.register_filesystem(s3)
    _COPY_STAGING.update(filesystem=s3, directory=data_dir)
    _report_duckdb_errors_as_sql_errors()
    _describe_results_as_run()
    _copy_csv_like_snowflake()
    _copy_from_local_copies()
    _remember_translations()
    return warehouse


def s3_filesystem(aws_endpoint_url: str | None, region: str = "us-east-1") -> Any:
    """The fsspec filesystem DuckDB reads ``s3://`` through (its httpfs extension is not available here)."""
    import s3fs

    options: dict[str, Any] = {"client_kwargs": {"region_name": region}, "use_listings_cache": False}
    if aws_endpoint_url:
        options["endpoint_url"] = aws_endpoint_url
        options["key"] = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        options["secret"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    # A fresh instance: fsspec would otherwise hand back one cached with another endpoint.
    return s3fs.S3FileSystem(skip_instance_cache=True, **options)


def _report_duckdb_errors_as_sql_errors() -> None:
    """Report DuckDB's commit conflicts, constraint violations, bad input and missing files as SQL errors.

    fakesnow lets them escape as HTTP 500s, which the connector retries; a retried COMMIT then finds no
    transaction and "succeeds", so a transaction that was rolled back would look committed to the client,
    and a retried statement inside a failed transaction hides the first error behind "transaction aborted".
    """
    original = FakeSnowflakeCursor._execute
    if getattr(original, "moviepipe_patched", False):
        return

    @functools.wraps(original)
    def _execute(self: FakeSnowflakeCursor, transformed: Any, params: Any = None) -> None:
        try:
            return original(self, transformed, params)
        except duckdb.TransactionException as exc:
            # A lost race (write-write conflict, duplicate key at commit) is worth retrying; anything else
            # (e.g. a transaction writing to two databases, which DuckDB refuses) is not.
            conflict = any(word in str(exc).lower() for word in ("conflict", "constraint violation"))
            raise snowflake.connector.errors.ProgrammingError(
                msg=f"Transaction aborted: {exc}", errno=625, sqlstate="40001" if conflict else "25000"
            ) from exc
        except duckdb.ConstraintException as exc:
            raise snowflake.connector.errors.ProgrammingError(
                msg=f"Constraint violated: {exc}", errno=100072, sqlstate="23000"
            ) from exc
        except duckdb.InvalidInputException as exc:
            # e.g. a CSV DuckDB cannot parse: bad data, as Snowflake reports it.
            raise snowflake.connector.errors.ProgrammingError(
                msg=str(exc), errno=100016, sqlstate="22000"
            ) from exc
        except duckdb.IOException as exc:
            # e.g. a file COPY names that is not there (fakesnow maps only HTTP errors itself).
            raise snowflake.connector.errors.ProgrammingError(
                msg=str(exc), errno=91016, sqlstate="58030"
            ) from exc

    _execute.moviepipe_patched = True  # type: ignore[attr-defined]
    FakeSnowflakeCursor._execute = _execute  # type: ignore[method-assign]


def _describe_results_as_run() -> None:
    """Describe a statement's result columns from its run, not by running ``DESCRIBE`` on it again.

    fakesnow answers every statement with its columns' types, found by parsing the DuckDB text it ran and
    running ``DESCRIBE`` over it: some 2 ms a statement, 0.07 s of every IMDb load. DuckDB
    already knows them when the statement has run (the cursor's ``description``), and they are the same
    binder's answer; they are kept with the result, and ``DESCRIBE`` runs only where they are not at hand
    (a result restored by ``RESULT_SCAN``, or one whose columns do not match what was kept).
    """
    original_execute = FakeSnowflakeCursor._execute
    original_describe = FakeSnowflakeCursor._describe_last_sql
    if getattr(original_describe, "moviepipe_patched", False):
        return

    @functools.wraps(original_execute)
    def _execute(self: FakeSnowflakeCursor, transformed: Any, params: Any = None) -> None:
        self._moviepipe_described = None
        original_execute(self, transformed, params)
        if transformed.args.get("result_scan_sfqid") or self._arrow_table is None:
            return
        columns = [(name, str(kind)) for name, kind, *_ in self._duck_conn.description or ()]
        if [name for name, _ in columns] == self._arrow_table.column_names:
            self._moviepipe_described = (self._sfqid, columns)

    @functools.wraps(original_describe)
    def _describe_last_sql(self: FakeSnowflakeCursor) -> list:
        sfqid, columns = getattr(self, "_moviepipe_described", None) or (None, None)
        if sfqid is None or sfqid != self._sfqid:
            return original_describe(self)
        # The rows of DuckDB's DESCRIBE: name, type, null, key, default, extra.
        return [(name, kind, "YES", None, None, None) for name, kind in columns]

    _describe_last_sql.moviepipe_patched = True  # type: ignore[attr-defined]
    FakeSnowflakeCursor._execute = _execute  # type: ignore[method-assign]
    FakeSnowflakeCursor._describe_last_sql = _describe_last_sql  # type: ignore[method-assign]


_CACHED_KINDS = (exp.Insert, exp.Update, exp.Delete, exp.Select)
_TRANSLATIONS_KEPT = 256


def _remember_translations() -> None:
    """Translate a statement to DuckDB once, as a warehouse keeps a statement's plan.

    fakesnow runs some fifty sqlglot transforms over every statement it is sent; for the star schema's
    merge (the same long statements after every load) that took longer than running them. A statement
    without parameters that reads or writes rows (no DDL: some transforms have side effects) is kept by
    its text, database, schema and session variables. Once every part of such a statement has been kept
    (fakesnow splits some statements, e.g. MERGE, in parts), it runs straight from its parts and their
    DuckDB text: no parse, no copy of its syntax tree, no SQL generated again (for the merge's twenty
    statements that was 0.06 s of every load). The parse of any statement is kept by its text, for the
    cursor and for the server, which parses each statement first to tell its type.
    """
    original_execute = FakeSnowflakeCursor.execute
    original_transform = FakeSnowflakeCursor._transform
    if getattr(original_transform, "moviepipe_patched", False):
        return
    kept: collections.OrderedDict[tuple, exp.Expr] = collections.OrderedDict()
    ready: collections.OrderedDict[tuple, tuple[exp.Expr, ...]] = collections.OrderedDict()

    @functools.wraps(original_execute)
    def execute(
        self: FakeSnowflakeCursor, command: str, params: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        key = None
        if not params and not kwargs.get("binding_params"):
            key = _statement_key(self, command)
            if (parts := _recall(ready, key)) is not None:
                return _run_translated(self, parts)
        self._moviepipe_statement = (command, 0)
        self._moviepipe_parts = []
        try:
            original_execute(self, command, params, *args, **kwargs)
        finally:
            parts = tuple(self._moviepipe_parts)
            self._moviepipe_statement = self._moviepipe_parts = None
        if key is not None and parts and None not in parts and key == _statement_key(self, command):
            _keep(ready, key, tuple(_with_duckdb_text(part) for part in parts))
        return self

    @functools.wraps(original_transform)
    def _transform(self: FakeSnowflakeCursor, expression: Any, params: Any) -> Any:
        statement = getattr(self, "_moviepipe_statement", None)
        parts = getattr(self, "_moviepipe_parts", None)
        if statement is None or params or not isinstance(expression, _CACHED_KINDS):
            if parts is not None:
                parts.append(None)  # a part that is translated afresh each time: the statement is not kept
            return original_transform(self, expression, params)
        command, part = statement
        self._moviepipe_statement = (command, part + 1)  # a statement fakesnow splits is kept per part
        key = (*_statement_key(self, command), part)
        if (translation := _recall(kept, key)) is None:
            translation = _keep(kept, key, original_transform(self, expression, params))
        if parts is not None:
            parts.append(translation)
        return translation.copy()

    parsed: collections.OrderedDict[str, exp.Expr] = collections.OrderedDict()
    original_parse = fakesnow_cursor.parse_one

    def parsed_once(command: str) -> exp.Expr:
        if (expression := _recall(parsed, command)) is None:
            expression = _keep(parsed, command, original_parse(command))
        return expression

    @functools.wraps(original_parse)
    def parse_one(command: str, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return original_parse(command, *args, **kwargs)
        return parsed_once(command).copy()  # the cursor's transforms change the tree they are given

    @functools.wraps(original_parse)
    def parse_for_server(command: str, *args: Any, **kwargs: Any) -> Any:
        # The server only reads the tree (the statement's type), so it gets the kept one itself.
        return original_parse(command, *args, **kwargs) if args or kwargs else parsed_once(command)

    _transform.moviepipe_patched = True  # type: ignore[attr-defined]
    FakeSnowflakeCursor.execute = execute  # type: ignore[method-assign]
    FakeSnowflakeCursor._transform = _transform  # type: ignore[method-assign]
    fakesnow_cursor.parse_one = parse_one
    fakesnow_server.parse_one = parse_for_server
    _generate_kept_text_once()


def _statement_key(cursor: FakeSnowflakeCursor, command: str) -> tuple:
    """What a statement's translation depends on: its text, the session's database, schema, variables."""
    variables = tuple(sorted(getattr(cursor._conn.variables, "_variables", {}).items()))
    return (command, cursor._conn.database, cursor._conn.schema, repr(variables))


_KEPT_LOCK = threading.Lock()
"""Guards the kept parses and translations: sessions run in threads, and the server parses in its loop."""


def _recall(cache: collections.OrderedDict, key: Any) -> Any:
    with _KEPT_LOCK:
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
        return found


def _keep(cache: collections.OrderedDict, key: Any, value: Any, limit: int = _TRANSLATIONS_KEPT) -> Any:
    with _KEPT_LOCK:
        cache[key] = value
        cache.move_to_end(key)
        if len(cache) > limit:
            cache.popitem(last=False)
        return value


_DUCKDB_TEXTS: collections.OrderedDict[int, tuple[exp.Expr, str]] = collections.OrderedDict()
"""The DuckDB text of each kept translation, by the translation's identity (it is kept alive here)."""


def _with_duckdb_text(translation: exp.Expr) -> exp.Expr:
    """``translation``, whose ``sql(dialect="duckdb")`` answers with the text it gave the first time."""
    _keep(
        _DUCKDB_TEXTS,
        id(translation),
        (translation, translation.sql(dialect="duckdb")),
        4 * _TRANSLATIONS_KEPT,
    )
    return translation


def _generate_kept_text_once() -> None:
    """DuckDB's SQL generator answers a kept translation with its kept text (``_with_duckdb_text``).

    The memo lives on the dialect, not on the tree: compiled sqlglot's trees take no new attributes.
    """
    original = DuckDB.generate
    if getattr(original, "moviepipe_patched", False):
        return

    @functools.wraps(original)
    def generate(self: DuckDB, expression: exp.Expr, copy: bool = True, **opts: Any) -> str:
        if (
            not opts
            and (kept := _recall(_DUCKDB_TEXTS, id(expression))) is not None
            and kept[0] is expression
        ):
            return kept[1]
        return original(self, expression, copy=copy, **opts)

    generate.moviepipe_patched = True  # type: ignore[attr-defined]
    DuckDB.generate = generate  # type: ignore[method-assign]


def _run_translated(cursor: FakeSnowflakeCursor, parts: tuple[exp.Expr, ...]) -> FakeSnowflakeCursor:
    """Run a kept statement's parts as fakesnow's ``execute`` runs a statement's parts."""
    cursor._sqlstate = None
    try:
        for part in parts:
            cursor._execute(part, None)
    except snowflake.connector.errors.ProgrammingError as exc:
        cursor._sqlstate = exc.sqlstate
        raise
    return cursor


MAX_LINE_BYTES = 64 << 20
"""The longest CSV line COPY reads: room for a field of Snowflake's largest VARCHAR (16 MB) and more."""


def _copy_csv_like_snowflake() -> None:
    """Make COPY of a CSV file parse text into the table's column types, as Snowflake does.

    fakesnow lets DuckDB guess each column's type from a sample of the file, so a file whose titles
    all look like numbers loads "007" as "7"; reading every field as text leaves the conversion to the
    insert, which casts into the column's type (or fails the COPY). And fakesnow selects a column list's
    fields as ``column0 … columnN``, which DuckDB names ``column00 …`` once there are more than ten;
    selecting ``*`` keeps the file's column order, which is what COPY means.
    """
    original = copy_into_module._inserts
    if getattr(original, "moviepipe_patched", False):
        return

    @functools.wraps(original)
    def _inserts(expr: exp.Copy, params: Any, urls: list[str], parquet_info: Any = None) -> list[exp.Expr]:
        inserts = original(expr, params, urls, parquet_info)
        target = expr.this
        plain_file = parquet_info is None and not isinstance(expr.args["files"][0], exp.Subquery)
        for insert in inserts:
            for read_csv in insert.find_all(exp.ReadCSV):
                read_csv.append(
                    "expressions",
                    exp.EQ(this=exp.Literal(this="all_varchar", is_string=False), expression=exp.true()),
                )
                # Snowflake reads a field of up to 16 MB (its VARCHAR); DuckDB stops at a 2 MB line.
                read_csv.append(
                    "expressions",
                    exp.EQ(
                        this=exp.Literal(this="max_line_size", is_string=False),
                        expression=exp.Literal.number(MAX_LINE_BYTES),
                    ),
                )
            if plain_file and isinstance(target, exp.Schema) and target.expressions:
                insert.expression.set("expressions", [exp.Star()])
        return inserts

    _inserts.moviepipe_patched = True  # type: ignore[attr-defined]
    copy_into_module._inserts = _inserts


_COPY_STAGING: dict[str, Any] = {}
"""The s3 filesystem COPY downloads with, and the folder its copies are made in (``open_warehouse``)."""
_copy_folder: contextvars.ContextVar[Path | None] = contextvars.ContextVar("copy_folder", default=None)


def _copy_from_local_copies() -> None:
    """Make COPY read each ``s3://`` file from a whole local copy, removed when the COPY ends.

    DuckDB reads a registered fsspec filesystem in small blocks, each a Python call and often an HTTP
    request: a 126 MB file took 10.6 s that way, against 4 s to download it and 0.5 s to read it from
    disk. The load history still names the ``s3://`` URL; a file that is not there fails the COPY as
    DuckDB's own read would (an IO error).
    """
    original_copy = fakesnow_cursor.copy_into
    if getattr(original_copy, "moviepipe_patched", False):
        return
    original_inserts = copy_into_module._inserts

    @functools.wraps(original_copy)
    def copy_into(*args: Any, **kwargs: Any) -> Any:
        directory = _COPY_STAGING.get("directory")
        with tempfile.TemporaryDirectory(prefix="copy-", dir=directory) as folder:
            token = _copy_folder.set(Path(folder))
            try:
                return original_copy(*args, **kwargs)
            finally:
                _copy_folder.reset(token)

    @functools.wraps(original_inserts)
    def _inserts(*args: Any, **kwargs: Any) -> list[exp.Expr]:
        inserts = original_inserts(*args, **kwargs)
        folder = _copy_folder.get()
        if folder is None:
            return inserts
        for number, read in enumerate(
            node for insert in inserts for node in insert.find_all(exp.ReadCSV, exp.ReadParquet)
        ):
            source = read.this
            if isinstance(source, exp.Literal) and source.is_string and source.this.startswith("s3://"):
                local = folder / f"{number}-{posixpath.basename(source.this)}"
                _download(source.this, local)
                read.set("this", exp.Literal.string(str(local)))
        return inserts

    copy_into.moviepipe_patched = True  # type: ignore[attr-defined]
    fakesnow_cursor.copy_into = copy_into
    copy_into_module._inserts = _inserts


def _download(url: str, local: Path) -> None:
    """One streaming GET: s3fs's default, ten ranged GETs of 50 MB at a time, costs moto a pass over the
    whole object for each (a 1.07 GB archive file: 18.5 s, against 2.3 s streamed)."""
    try:
        _COPY_STAGING["filesystem"].get_file(url, str(local), max_concurrency=1)
    except FileNotFoundError as exc:
        raise duckdb.IOException(f'No files found that match the pattern "{url}"') from exc


class WarehouseApp:
    """fakesnow's server app, plus ``GET /health``, and sessions that end when their client does.

    fakesnow's login answer has no master token, without which the connector never sends its logout
    (``POST /session?delete=true``), so every session stayed open for good: its DuckDB connection, and
    any transaction a client left behind holding the rows it wrote. Here the login answer carries one,
    and a logout closes the session's DuckDB connection, rolling back what it left, as Snowflake does.

    A client killed inside a transaction never logs out, and its open transaction would make every other
    session's write to the same rows fail as a conflict, for good. So a session idle inside a transaction
    for ``idle_transaction_seconds`` is ended the same way (PostgreSQL's
    ``idle_in_transaction_session_timeout``); its client, if it comes back, is told to log in again.
    """

    def __init__(
        self, app: ASGIApp, warehouse: FakeSnow, idle_transaction_seconds: float = IDLE_TRANSACTION_SECONDS
    ):
        self.app = app
        self.warehouse = warehouse
        self.idle_transaction_seconds = idle_transaction_seconds
        self._busy: collections.Counter[str] = collections.Counter()
        self._last_seen: dict[str, float] = {}
        self._reaper: asyncio.Task | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import fakesnow.server as server
        from starlette.responses import JSONResponse

        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._end_idle_transactions())
        path = scope.get("path") if scope["type"] == "http" else None
        if path == "/health":
            body = {"status": "ok", "databases": self.databases(), "sessions": len(server.sessions)}
            await JSONResponse(body)(scope, receive, send)
        elif path == "/session/v1/login-request":
            await self.app(scope, receive, _with_master_token(send))
        elif path == "/session" and b"delete=" in scope["query_string"]:
            # Closed before the answer, so the client's next statement finds the rows given back.
            if (ending := server.sessions.get(token := _token(scope))) is not None:
                with contextlib.suppress(Exception):
                    ending.close()
            self._forget(token)
            await self.app(scope, receive, send)
        elif scope["type"] == "http" and (token := _token(scope)):
            self._busy[token] += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self._busy[token] -= 1
                self._last_seen[token] = time.monotonic()
        else:
            await self.app(scope, receive, send)

    async def _end_idle_transactions(self) -> None:
        """Every second, end the sessions idle inside a transaction for too long.

        It runs on the event loop, as requests start, so no statement of the session can begin while it
        is being ended."""
        import fakesnow.server as server

        while True:
            await asyncio.sleep(REAPER_INTERVAL_SECONDS)
            now = time.monotonic()
            for token, session in list(server.sessions.items()):
                idle = now - self._last_seen.get(token, now)
                if self._busy[token] or idle < self.idle_transaction_seconds:
                    continue
                if not _in_transaction(session):
                    continue
                with contextlib.suppress(Exception):
                    session.close()
                server.sessions.pop(token, None)
                self._forget(token)
                log_event(
                    logger,
                    "idle_transaction_ended",
                    "a session left a transaction open and went silent: its client is taken for dead, "
                    "the session ended and its transaction rolled back",
                    level=logging.WARNING,
                    idle_seconds=round(idle, 1),
                    sessions=len(server.sessions),
                )

    def _forget(self, token: str) -> None:
        self._busy.pop(token, None)
        self._last_seen.pop(token, None)

    def databases(self) -> list[str]:
        """The warehouse's databases (attached DuckDB files)."""
        with self.warehouse.duck_conn.cursor() as cursor:
            rows = cursor.execute(
                "SELECT database_name FROM duckdb_databases() "
                "WHERE NOT internal AND database_name NOT IN (?, ?)",
                [GLOBAL_DATABASE_NAME, "memory"],
            ).fetchall()
        return sorted(name for (name,) in rows)


def _in_transaction(session: Any) -> bool:
    """Whether a session (not running a statement) holds an open transaction.

    fakesnow tracks it only with autocommit off; DuckDB tells by refusing a second BEGIN."""
    if getattr(session, "_in_transaction", False):
        return True
    try:
        session._duck_conn.begin()
    except duckdb.TransactionException:
        return True
    except duckdb.Error:
        return False
    session._duck_conn.rollback()
    return False


def _token(scope: Scope) -> str:
    """The session token a request carries: its header reads Snowflake Token="<token>" (as
    fakesnow.server.to_token reads it); empty when there is none."""
    auth = dict(scope.get("headers") or []).get(b"authorization", b"").decode()
    return auth[17:-1] if auth.startswith('Snowflake Token="') else ""


def _with_master_token(send: Send) -> Send:
    """``send`` for a login answer, adding the session token as its master token."""
    start: dict[str, Any] = {}
    body = b""

    async def send_with_master_token(message: dict[str, Any]) -> None:
        nonlocal start, body
        if message["type"] == "http.response.start":
            start = message
            return
        body += message.get("body", b"")
        if message.get("more_body"):
            return
        answer = json.loads(body or b"{}")
        if answer.get("success") and isinstance(data := answer.get("data"), dict) and "token" in data:
            data.setdefault("masterToken", data["token"])
        payload = json.dumps(answer).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return send_with_master_token


def create_app(
    data_dir: Path,
    aws_endpoint_url: str | None = None,
    region: str = "us-east-1",
    idle_transaction_seconds: float = IDLE_TRANSACTION_SECONDS,
) -> WarehouseApp:
    """The ASGI app; one per process, since fakesnow's server keeps its sessions in module globals."""
    import fakesnow.server as server

    warehouse = open_warehouse(data_dir, aws_endpoint_url, region)
    server.shared_fs = warehouse
    return WarehouseApp(server.app, warehouse, idle_transaction_seconds)


def close(app: WarehouseApp) -> None:
    """Close every session, then checkpoint and close the database files."""
    import fakesnow.server as server

    for token, session in list(server.sessions.items()):
        with contextlib.suppress(Exception):
            session.close()
        server.sessions.pop(token, None)
    with contextlib.suppress(duckdb.Error):
        app.warehouse.duck_conn.execute("CHECKPOINT")
    app.warehouse.duck_conn.close()


def serve(
    host: str,
    port: int,
    data_dir: Path,
    aws_endpoint_url: str | None,
    region: str = "us-east-1",
    idle_transaction_seconds: float = IDLE_TRANSACTION_SECONDS,
) -> None:
    """Run the warehouse until SIGTERM or SIGINT, then close it cleanly and exit 0."""

    def _exit(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    # uvicorn shuts down gracefully on these, then raises the signal again with the handlers it found
    # installed: these, so that the database files are closed below rather than the process killed.
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, _exit)
    app = create_app(data_dir, aws_endpoint_url, region, idle_transaction_seconds)
    # What starting made lives as long as the process: kept out of the collector's way.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log_event(
        logger,
        "warehouse_started",
        host=host,
        port=port,
        data_dir=str(data_dir),
        databases=app.databases(),
        idle_transaction_seconds=idle_transaction_seconds,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
    finally:
        close(app)
        log_event(logger, "warehouse_stopped", data_dir=str(data_dir))


@contextlib.contextmanager
def running(
    data_dir: Path, aws_endpoint_url: str | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[int]:
    """The warehouse in a thread of this process, for quick experiments; yields the port it listens on."""
    app = create_app(data_dir, aws_endpoint_url)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, name="warehouse", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the warehouse did not start")
        time.sleep(0.05)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        close(app)


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m moviepipe.warehouse", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default=defaults.warehouse_host)
    parser.add_argument("--port", type=int, default=defaults.warehouse_port)
    parser.add_argument("--data-dir", type=Path, default=defaults.home / "warehouse")
    parser.add_argument(
        "--aws-endpoint-url",
        default=defaults.aws_endpoint_url,
        help="S3 endpoint for s3:// URLs (moto locally); AWS's own when omitted",
    )
    parser.add_argument("--region", default=defaults.region)
    parser.add_argument(
        "--idle-transaction-seconds",
        type=float,
        default=IDLE_TRANSACTION_SECONDS,
        help="end a session idle this long inside a transaction (its client died); default %(default)s",
    )
    parser.add_argument("--log-level", default=defaults.log_level)
    args = parser.parse_args(argv)
    configure_logging("warehouse", args.log_level)
    serve(
        args.host, args.port, args.data_dir, args.aws_endpoint_url, args.region, args.idle_transaction_seconds
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

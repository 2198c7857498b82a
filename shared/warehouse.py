"""How any process talks to the warehouse: Snowflake in AWS, the fakesnow stand-in locally.

Connections are opened through a context manager that commits or rolls back and always closes; a
warehouse that does not answer raises ``WarehouseUnavailable`` naming where it was looked for. Nothing
here logs a password.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import snowflake.connector
from snowflake.connector import SnowflakeConnection
from snowflake.connector.errors import HttpError, InterfaceError, OperationalError

from shared.logs import log_event
from shared.settings import Settings

logger = logging.getLogger(__name__)

# Locally a warehouse that is down should say so at once, not after the connector's long retries.
LOCAL_TIMEOUTS = {"login_timeout": 5, "network_timeout": 2, "socket_timeout": 600}

Params = Sequence[Any] | dict[str, Any] | None


SESSION_GONE = {390111, 390112, 390114}
"""Snowflake's error numbers for a session that ended or whose token expired."""


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection (not the statement) is unusable: drop it, open another."""
    if isinstance(exc, OperationalError | InterfaceError | HttpError):
        return True
    return getattr(exc, "errno", None) in SESSION_GONE


class WarehouseError(Exception):
    """Root of the warehouse access errors."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse did not answer: down, unreachable, or dropped the connection."""


def address(settings: Settings) -> str:
    return f"{settings.warehouse_protocol}://{settings.warehouse_host}:{settings.warehouse_port}"


def connection_parameters(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``snowflake.connector.connect`` (these include the password: never log them)."""
    parameters: dict[str, Any] = {
        "account": settings.warehouse_account,
        "user": settings.warehouse_user,
        "password": settings.warehouse_password,
        "host": settings.warehouse_host,
        "port": settings.warehouse_port,
        "protocol": settings.warehouse_protocol,
        "database": settings.warehouse_database,
        # Every Snowflake database has PUBLIC; a session without a current schema trips fakesnow's MERGE.
        "schema": "PUBLIC",
        "application": "moviepipe",
    }
    if settings.warehouse_role:
        parameters["role"] = settings.warehouse_role
    if settings.warehouse_name:
        parameters["warehouse"] = settings.warehouse_name
    if settings.environment == "local":
        parameters["session_parameters"] = {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}
        parameters.update(LOCAL_TIMEOUTS)
    return parameters


def _open(settings: Settings) -> SnowflakeConnection:
    try:
        return snowflake.connector.connect(**connection_parameters(settings))
    except (OperationalError, InterfaceError) as exc:
        where = address(settings)
        log_event(logger, "warehouse_unavailable", level=logging.WARNING, warehouse=where, error=str(exc))
        raise WarehouseUnavailable(f"the warehouse at {where} did not answer: {exc}") from exc


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[SnowflakeConnection]:
    """An open connection: committed when the block ends, rolled back if it raises, closed either way."""
    where = address(settings)
    connection = _open(settings)
    try:
        yield connection
        connection.commit()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            connection.rollback()
        if isinstance(exc, OperationalError | InterfaceError):
            raise WarehouseUnavailable(f"lost the warehouse at {where}: {exc}") from exc
        raise
    finally:
        with contextlib.suppress(Exception):
            connection.close()


class ConnectionPool:
    """Open connections kept between uses, as a BI tool keeps them: a login costs more than a query.

    ``connection()`` lends an idle connection (or opens one); it goes back when the block ends, unless
    it failed on the way (a connection-level error closes it) or was idle past ``idle_seconds`` (the
    warehouse may have ended the session). At most ``size`` are kept; more may be open at once. For
    reads: nothing is committed on return.
    """

    def __init__(self, settings: Settings, *, size: int = 4, idle_seconds: float = 600):
        self.settings = settings
        self.size = size
        self.idle_seconds = idle_seconds
        self._idle: list[tuple[float, SnowflakeConnection]] = []
        self._lock = threading.Lock()

    def _take(self) -> SnowflakeConnection | None:
        with self._lock:
            while self._idle:
                since, connection = self._idle.pop()
                if time.monotonic() - since < self.idle_seconds and not connection.is_closed():
                    return connection
                with contextlib.suppress(Exception):
                    connection.close()
        return None

    def _give_back(self, connection: SnowflakeConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append((time.monotonic(), connection))
                # Registered again, so that it runs before the exit handler of any connection opened since.
                atexit.unregister(self._close_at_exit)
                atexit.register(self._close_at_exit)
                return
        with contextlib.suppress(Exception):
            connection.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[SnowflakeConnection]:
        where = address(self.settings)
        connection = self._take() or _open(self.settings)
        try:
            yield connection
        except BaseException as exc:
            if lost_connection(exc):
                with contextlib.suppress(Exception):
                    connection.close()
                raise WarehouseUnavailable(f"lost the warehouse at {where}: {exc}") from exc
            with contextlib.suppress(Exception):
                connection.rollback()
            self._give_back(connection)
            raise
        self._give_back(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            with contextlib.suppress(Exception):
                connection.close()

    def _close_at_exit(self) -> None:
        """Log the kept sessions out as the process ends, quietly: the warehouse may be gone by then, and
        the connector's own exit handler would log each failed logout with its traceback."""
        logging.disable(logging.CRITICAL)
        try:
            self.close()
        finally:
            logging.disable(logging.NOTSET)


@contextlib.contextmanager
def transaction(connection: SnowflakeConnection) -> Iterator[Any]:
    """An explicit transaction on ``connection``, yielding a cursor: all of it commits, or none of it."""
    cursor = connection.cursor()
    cursor.execute("BEGIN")
    try:
        yield cursor
    except BaseException:
        with contextlib.suppress(Exception):
            cursor.execute("ROLLBACK")
        raise
    cursor.execute("COMMIT")


def query(settings: Settings, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]:
    """Run one statement; the result's column names and rows."""
    with connect(settings) as connection:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description or []]
        return columns, [tuple(row) for row in cursor.fetchall()] if columns else []

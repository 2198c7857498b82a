"""Copy a verified bundle into the warehouse exactly once.

The whole bundle loads in one transaction: for each file not yet in ``AUDIT.LOAD_HISTORY``, COPY INTO its
table, stamp the copied rows with the file's name, and record the file in the load history. A crash
anywhere before the commit leaves nothing behind; a replay after it finds every file in the load history
and copies nothing. ``AUDIT.LOAD_HISTORY.FILE_NAME`` is a key, so a concurrent second load of the same
file fails to commit (locally; Snowflake records keys without enforcing them) and is retried; the
warehouse's own COPY load history is a second guard.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from snowflake.connector import SnowflakeConnection
from snowflake.connector.errors import DatabaseError, ProgrammingError

from services.loader import statements
from services.loader.bundle import ArchiveBundle, ArchiveFile
from services.loader.exceptions import CONFLICT_STATES, FileChangedAfterLoad, LoadConflict, RowsNotLoadable
from shared.logs import log_event
from shared.warehouse import transaction

logger = logging.getLogger(__name__)

LOADED = "LOADED"
LOAD_SKIPPED = "LOAD_SKIPPED"  # the warehouse's load history already had the file


@dataclass(frozen=True)
class FileLoad:
    """What the load did with one file: copied it now, or found it loaded before (``already``)."""

    file: ArchiveFile
    table: str
    status: str
    rows_loaded: int
    already: bool


@dataclass(frozen=True)
class LoadResult:
    """What the load did with each file of the bundle."""

    files: tuple[FileLoad, ...]

    @property
    def copied(self) -> list[FileLoad]:
        return [load for load in self.files if not load.already]

    def rows_copied(self, role: str) -> int:
        return sum(load.rows_loaded for load in self.copied if load.file.role == role)


def load_bundle(connection: SnowflakeConnection, database: str, bundle: ArchiveBundle) -> LoadResult:
    """Copy every file of the bundle not loaded before, all in one transaction."""
    try:
        with transaction(connection) as cursor:
            cursor.execute(statements.loaded_files(database), {"extract_id": bundle.extract_id})
            history = {row[0]: row for row in cursor.fetchall()}
            loads = tuple(
                _already_loaded(file, history[file.uri])
                if file.uri in history
                else _copy_file(cursor, database, bundle, file)
                for file in bundle.files
            )
    except DatabaseError as exc:
        if exc.sqlstate in CONFLICT_STATES:
            raise LoadConflict(f"extract {bundle.extract_id} was loaded concurrently: {exc.msg}") from exc
        raise
    return LoadResult(files=loads)


def _already_loaded(file: ArchiveFile, row: tuple) -> FileLoad:
    _file_name, file_hash, table, status, rows_loaded = row
    if file_hash != file.hash:
        raise FileChangedAfterLoad(
            f"loaded before with hash {file_hash}, listed now with {file.hash}", where=file.uri
        )
    return FileLoad(file=file, table=table, status=status, rows_loaded=int(rows_loaded), already=True)


def _copy_file(cursor: Any, database: str, bundle: ArchiveBundle, file: ArchiveFile) -> FileLoad:
    target = statements.TARGETS[file.role]
    if file.rows == 0:
        # A header-only file (an extract without rejects) has nothing to copy, and the local warehouse
        # cannot COPY one (it reads no columns from it); it is recorded as loaded with no rows.
        _record_load(cursor, database, bundle, file, target, LOADED, 0)
        return FileLoad(file=file, table=target.table, status=LOADED, rows_loaded=0, already=False)
    try:
        stage_path = f"{bundle.stage_prefix}/{file.path}"
        started = time.perf_counter()
        cursor.execute(statements.copy_into(database, target, stage_path, file.columns))
    except ProgrammingError as exc:
        if (exc.sqlstate or "").startswith("22"):  # a data exception: a value that does not fit its column
            raise RowsNotLoadable(exc.msg or str(exc), where=file.uri) from exc
        raise
    result = _copy_result(cursor)
    copied = time.perf_counter()
    status = str(result.get("status", "")).upper()
    rows_loaded = int(result.get("rows_loaded") or 0) if status == LOADED else 0
    if status != LOADED:
        # The warehouse's own load history has the file though ours does not: record what it said, and let
        # the reconciliation (now short of these rows) fail and raise the alert.
        log_event(
            logger,
            "copy_skipped",
            level=logging.WARNING,
            extract_id=bundle.extract_id,
            file=file.uri,
            copy_status=status,
            first_error=result.get("first_error"),
        )
        status = LOAD_SKIPPED
    cursor.execute(
        statements.stamp_copied_rows(database, target),
        {
            "file_name": file.uri,
            "extract_id": bundle.extract_id,
            "source": bundle.source,
            "extract_kind": bundle.extract_kind,
            "extracted_at": bundle.extracted_at,
        },
    )
    stamped = time.perf_counter()
    _record_load(cursor, database, bundle, file, target, status, rows_loaded)
    log_event(
        logger,
        "file_copied",
        extract_id=bundle.extract_id,
        file=file.uri,
        table=target.table,
        copy_status=status,
        rows=rows_loaded,
        copy_seconds=round(copied - started, 3),
        stamp_seconds=round(stamped - copied, 3),
        level=logging.DEBUG,
    )
    return FileLoad(file=file, table=target.table, status=status, rows_loaded=rows_loaded, already=False)


def _record_load(
    cursor: Any,
    database: str,
    bundle: ArchiveBundle,
    file: ArchiveFile,
    target: statements.LoadTarget,
    status: str,
    rows_loaded: int,
) -> None:
    cursor.execute(
        statements.record_load(database),
        {
            "file_name": file.uri,
            "file_hash": file.hash,
            "table_name": target.table,
            "extract_id": bundle.extract_id,
            "status": status,
            "rows_loaded": rows_loaded,
        },
    )


def _copy_result(cursor: Any) -> dict[str, Any]:
    """COPY's one result row (one file copied) by lower-cased column name."""
    names = [column.name.lower() for column in cursor.description or []]
    row = cursor.fetchone() or ()
    return dict(zip(names, row, strict=False))

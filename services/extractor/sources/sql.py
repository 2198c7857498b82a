"""A SQL source: a table or query in any database SQLAlchemy reaches (SQLite, PostgreSQL through psycopg).

Rows stream in batches, so memory stays flat however large the table: PostgreSQL sends them with
``COPY (SELECT …) TO STDOUT`` in binary, decoded into Arrow by ADBC's driver (rows are never Python
objects: several times faster than a server-side cursor here), SQLite through ADBC's SQLite driver where
its typing is safe (see ``_sqlite_batches``), any other database through a server-side cursor
(``stream_results``). SQLAlchemy parses the URL, finds the fields and quotes names;
only the fields the extract needs are selected.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from services.extractor.exceptions import SourceUnreadable
from services.extractor.sources.config import GENRE_LIST, SqlSourceConfig, resolve
from shared.schema import field_names

logger = logging.getLogger(__name__)

_ADBC_BATCH_BYTES = 2 << 20


class SqlSource:
    """Movies from a SQL table or query; ``config.seed`` creates a missing SQLite database first."""

    def __init__(self, config: SqlSourceConfig):
        self.name = config.name
        self.config = config
        self.unread_fields: list[str] = []
        self.filters_since = True  # the mark is a WHERE clause

    def __repr__(self) -> str:
        return f"SqlSource({self.name!r}, kind={self.config.kind!r})"

    def _engine(self) -> Engine:
        url_text = resolve(self.config.url, self.name, "url")
        assert url_text is not None
        try:
            url = make_url(url_text)
        except sa.exc.ArgumentError as exc:
            raise SourceUnreadable(self.name, f"url is not a SQLAlchemy URL: {exc}") from None
        if self.config.kind == "postgres" and url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if self.config.kind == "sqlite":
            self._prepare_sqlite(url)
        try:
            return sa.create_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise SourceUnreadable(self.name, f"cannot use url {url!r}: {exc}") from None

    def _prepare_sqlite(self, url: sa.URL) -> None:
        from pathlib import Path

        if not url.database or url.database == ":memory:":
            return
        database = Path(url.database)
        if database.exists():
            return
        if self.config.seed == "imdb":
            from services.extractor.sources.imdb import seed_imdb_database

            seed_imdb_database(database)
            return
        raise SourceUnreadable(self.name, f"database {database} does not exist")

    # -- the statement -------------------------------------------------------------------------
    def _relation(self, engine: Engine) -> str:
        if self.config.query is not None:
            # The newline ends a trailing "-- comment" before the wrapper's closing parenthesis.
            return f"({self.config.query.strip().rstrip(';')}\n) AS source_rows"
        quote = engine.dialect.identifier_preparer.quote
        assert self.config.table is not None
        return ".".join(quote(part) for part in self.config.table.split("."))

    def source_fields(self, connection: Connection, relation: str) -> list[str]:
        """The fields the table or query has, from a statement that returns no rows."""
        statement = f"SELECT * FROM {relation} WHERE 1 = 0"
        if connection.dialect.paramstyle in ("format", "pyformat"):
            statement = statement.replace("%", "%%")  # psycopg reads % as a placeholder (LIKE '10%', a % b)
        result = connection.exec_driver_sql(statement)
        fields = list(result.keys())
        result.close()
        return fields

    def wanted_fields(self, fields: Sequence[str]) -> list[str]:
        """The source fields the movie record needs: mapped ones, same-named ones, and the cursor."""
        canonical = {*field_names(), GENRE_LIST}
        wanted = []
        for name in fields:
            same_named = name not in self.config.columns and name.lower() in canonical
            if name in self.config.columns or same_named or name == self.config.cursor:
                wanted.append(name)
        missing = sorted(set(self.config.columns) - set(fields))
        if missing:
            raise SourceUnreadable(
                self.name,
                f"[sources.{self.name}.columns] maps {', '.join(repr(name) for name in missing)}, which the "
                f"source does not have (its fields: {', '.join(fields)})",
            )
        if self.config.cursor and self.config.cursor not in fields:
            raise SourceUnreadable(
                self.name,
                f"the cursor column {self.config.cursor!r} is not among the source's fields {fields}",
            )
        return wanted

    def select(self, engine: Engine, relation: str, fields: Sequence[str], since: str | None) -> str:
        """``SELECT`` of ``fields``, at or above the mark when there is one, in cursor order."""
        quote = engine.dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in fields) or "*"
        statement = f"SELECT {columns} FROM {relation}"
        if self.config.cursor:
            cursor = quote(self.config.cursor)
            if since is not None:
                statement += f" WHERE {cursor} >= {_PLACEHOLDER}"
            statement += f" ORDER BY {cursor}"
        return statement

    # -- reading -------------------------------------------------------------------------------
    def read_batches(self, batch_rows: int, since: str | None = None) -> Iterator[pa.RecordBatch]:
        engine = self._engine()
        try:
            with engine.connect() as connection:
                relation = self._relation(engine)
                fields = self.source_fields(connection, relation)
                wanted = self.wanted_fields(fields)
                self.unread_fields = [name for name in fields if name not in wanted]
                statement = self.select(engine, relation, wanted, since)
                if engine.dialect.name == "postgresql":
                    yield from _postgres_batches(connection, statement, since, batch_rows)
                elif engine.dialect.name == "sqlite" and _adbc_can_read(
                    connection, qmarked := _qmark(statement, since), since, wanted, batch_rows
                ):
                    yield from _sqlite_batches(engine.url, qmarked, since, batch_rows)
                else:
                    yield from _cursor_batches(connection, statement, since, wanted, batch_rows)
        except sa.exc.SQLAlchemyError as exc:
            # Neither the password nor the query string (which may carry one) is shown.
            where = engine.url.set(query={}).render_as_string(hide_password=True)
            raise SourceUnreadable(self.name, f"{where}: {_database_error(exc)}") from None
        finally:
            engine.dispose()


_PLACEHOLDER = "%(since)s"
_STYLES = {
    "qmark": lambda since: ("?", (since,)),
    "numeric": lambda since: (":1", (since,)),
    "named": lambda since: (":since", {"since": since}),
    "format": lambda since: ("%s", (since,)),
    "pyformat": lambda since: (_PLACEHOLDER, {"since": since}),
}


def _database_error(exc: sa.exc.SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cursor_batches(
    connection: Connection, statement: str, since: str | None, fields: list[str], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Rows through a server-side cursor, ``batch_rows`` at a time."""
    parameters: Any = ()
    if since is not None:
        # The driver's own parameter style, so nothing in a user's query is taken for a bind.
        style = connection.dialect.paramstyle
        if style in ("format", "pyformat"):
            statement = statement.replace("%", "%%").replace(f"%{_PLACEHOLDER}", _PLACEHOLDER)
        placeholder, parameters = _STYLES[style](since)
        statement = statement.replace(_PLACEHOLDER, placeholder)
    result = connection.execution_options(stream_results=True, yield_per=batch_rows).exec_driver_sql(
        statement, parameters
    )
    names = list(result.keys())
    for rows in result.partitions(batch_rows):
        yield rows_to_batch(rows, names)


def rows_to_batch(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> pa.RecordBatch:
    """Rows as one record batch, each column typed as its values are, or text where they are mixed."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for values in columns:
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # SQLite types each value, not the column: 1999 and 'unknown' may share one.
            arrays.append(pa.array([None if value is None else str(value) for value in values], pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _postgres_batches(
    connection: Connection, statement: str, since: str | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Rows through ADBC's PostgreSQL driver: ``COPY … TO STDOUT (FORMAT binary)`` decoded into Arrow in C.

    psycopg hands a ``COPY`` over one Python call per row, which caps a read near 200,000 rows/s on
    this machine's hardware; ADBC reads the same stream without a Python object per row. The mark is
    quoted by psycopg as a literal, so PostgreSQL types it as the cursor column's own type.
    """
    import adbc_driver_postgresql.dbapi as adbc
    from psycopg import sql as psycopg_sql

    raw = connection.connection.driver_connection
    if since is not None:
        literal = psycopg_sql.Literal(since).as_string(raw)
        statement = statement.replace(_PLACEHOLDER, literal)
    uri = connection.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with adbc.connect(uri) as database, database.cursor() as cursor:
            # Smaller batches than the driver's default (16 MB) keep the extract's memory flat.
            cursor.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(_ADBC_BATCH_BYTES)}
            )
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute(statement)
            reader = cursor.fetch_record_batch()
            yield from rebatch(_money_as_amounts(reader, reader.schema, connection), batch_rows)
    except adbc.Error as exc:
        raise sa.exc.DBAPIError(statement, None, exc) from exc


_POSTGRES_TYPE = b"POSTGRESQL:type"


def _money_as_amounts(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, connection: Connection
) -> Iterator[pa.RecordBatch]:
    """The batches with each ``money`` column as amounts: ADBC hands money over as a count of the
    currency's smallest unit (a budget of $1,234,567.00 as 123456700), in as many digits as PostgreSQL's
    ``lc_monetary`` gives the fraction."""
    money = [n for n, field in enumerate(schema) if (field.metadata or {}).get(_POSTGRES_TYPE) == b"money"]
    if not money:
        yield from batches
        return
    import pyarrow.compute as pc

    digits = connection.exec_driver_sql("SELECT scale('1'::money::numeric)").scalar_one()
    unit = pa.scalar(Decimal(1).scaleb(-digits), pa.decimal128(digits + 1, digits))
    for batch in batches:
        columns = list(batch.columns)
        for n in money:
            columns[n] = pc.multiply(pc.cast(columns[n], pa.decimal128(19, 0)), unit)
        yield pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _adbc_can_read(
    connection: Connection, statement: str, since: str | None, names: Sequence[str], batch_rows: int
) -> bool:
    """Whether ADBC's SQLite driver reads ``statement`` into the same values as the DB-API cursor.

    SQLite types each value, not the column. The driver types a column by the values of the first batch
    (an all-null column as integers), joins other types within a batch as text (a real as ``4.0e+00``),
    and fails on a later batch whose values do not fit. So it reads only a database file where each
    column holds one storage class (besides null), and a column whose first batch is all null holds
    integers or nothing; anything else goes through the cursor, which types each batch by its values.
    A scan of the rows in SQLite decides; its answer is kept while the file (and its write-ahead log)
    is unchanged, so extracts of an unchanged file scan once.
    """
    url = connection.engine.url
    if not names or not url.database or url.database == ":memory:" or url.query:
        return False
    key = (url.database, _file_state(url.database), statement, since, batch_rows)
    if key not in _ADBC_CAN_READ:
        if len(_ADBC_CAN_READ) >= _ADBC_CAN_READ_SIZE:
            _ADBC_CAN_READ.pop(next(iter(_ADBC_CAN_READ)))
        _ADBC_CAN_READ[key] = _one_class_a_column(connection, statement, since, names, batch_rows)
    return _ADBC_CAN_READ[key]


_ADBC_CAN_READ: dict[tuple, bool] = {}
_ADBC_CAN_READ_SIZE = 64


def _file_state(database: str) -> tuple:
    """What changes when a SQLite database does: the file's and its write-ahead log's identity, size
    and time of change."""
    state = []
    for path in (database, f"{database}-wal"):
        try:
            found = os.stat(path)
        except OSError:
            state.append(None)
            continue
        state.append((found.st_ino, found.st_size, found.st_mtime_ns))
    return tuple(state)


def _one_class_a_column(
    connection: Connection, statement: str, since: str | None, names: Sequence[str], batch_rows: int
) -> bool:
    quote = connection.dialect.identifier_preparer.quote
    columns = [f"source_rows.{quote(name)}" for name in names]
    kinds = ", ".join(
        f"count(DISTINCT CASE WHEN typeof({column}) <> 'null' THEN typeof({column}) END), "
        f"max(typeof({column}) NOT IN ('null', 'integer'))"
        for column in columns
    )
    found = connection.exec_driver_sql(
        f"SELECT {kinds} FROM ({statement}) AS source_rows", _bound(since)
    ).one()
    if any(classes > 1 for classes in found[0::2]):
        return False
    not_integer = [column for column, other in zip(columns, found[1::2], strict=True) if other]
    if not not_integer:
        return True
    first = ", ".join(f"count({column})" for column in not_integer)
    present = connection.exec_driver_sql(
        f"SELECT {first} FROM ({statement} LIMIT {int(batch_rows)}) AS source_rows", _bound(since)
    ).one()
    return all(present)


def _bound(since: str | None) -> tuple[str, ...]:
    return () if since is None else (since,)


def _qmark(statement: str, since: str | None) -> str:
    """The statement with SQLite's placeholder for the mark."""
    return statement if since is None else statement.replace(_PLACEHOLDER, "?")


def _sqlite_batches(
    url: sa.URL, statement: str, since: str | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Rows through ADBC's SQLite driver, decoded into Arrow in C (the cursor makes a Python object of
    every value, about four times slower); only where ``_adbc_can_read`` says it types them alike."""
    import adbc_driver_sqlite.dbapi as adbc

    try:
        with adbc.connect(url.database) as database, database.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
            cursor.execute(statement, parameters=_bound(since) or None)
            yield from cursor.fetch_record_batch()
    except adbc.Error as exc:
        raise sa.exc.DBAPIError(statement, None, exc) from exc


def rebatch(batches: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of ``batch_rows`` (the last one shorter)."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= batch_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, batch_rows).combine_chunks().to_batches()[0]
            rest = table.slice(batch_rows)
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            pending_rows = rest.num_rows
    if pending_rows:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]

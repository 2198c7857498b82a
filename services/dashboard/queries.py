"""What the dashboard asks the warehouse, as a BI tool would: plain SELECTs on the views and audit tables.

SQL comes from small pure functions (tested as text); ``warehouse_reader`` runs a page's statements on
one connection through the Snowflake connector, each statement a section that may fail on its own.
"""

from __future__ import annotations

import re
from typing import Any

from services.dashboard.sections import Reader, Section, describe, failed
from shared.settings import Settings
from shared.warehouse import ConnectionPool, WarehouseUnavailable, lost_connection

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _schema(database: str, schema: str) -> str:
    if not _IDENTIFIER.match(database):
        raise ValueError(f"not a plain Snowflake identifier: {database!r}")
    return f"{database}.{schema}"


def analytics_queries(database: str, *, top: int, points: int, recent: int) -> dict[str, str]:
    """The analytics page's statements, by section."""
    a = _schema(database, "ANALYTICS")
    return {
        "counts": (
            "SELECT "
            f"(SELECT COUNT(*) FROM {a}.DIM_MOVIE WHERE IS_CURRENT AND NOT IS_DELETED) AS MOVIES_CURRENT, "
            f"(SELECT COUNT(*) FROM {a}.DIM_MOVIE) AS MOVIE_VERSIONS, "
            f"(SELECT COUNT(*) FROM (SELECT MOVIE_KEY FROM {a}.DIM_MOVIE GROUP BY MOVIE_KEY "
            "HAVING COUNT(*) > 1)) AS MOVIES_WITH_VERSIONS, "
            f"(SELECT COUNT(*) FROM {a}.V_BUDGET_VS_RATING) AS MOVIES_WITH_BUDGET"
        ),
        "genre_decade": (
            "SELECT GENRE, DECADE, DECADE_LABEL, MOVIES, AVG_RATING, VOTE_WEIGHTED_RATING, VOTES "
            f"FROM {a}.V_RATINGS_BY_GENRE_DECADE ORDER BY GENRE, DECADE"
        ),
        "top_movies": (
            "SELECT RANK, MOVIE_KEY, TITLE, YEAR, MPAA, RATING, VOTES, WEIGHTED_RATING "
            f"FROM {a}.V_TOP_MOVIES ORDER BY RANK, TITLE, MOVIE_KEY LIMIT {int(top)}"
        ),
        # A fixed sample (ordered by a hash of the key), not the most voted: the shape of the whole cloud.
        "budget_rating": (
            "SELECT MOVIE_KEY, TITLE, YEAR, BUDGET, RATING, VOTES "
            f"FROM {a}.V_BUDGET_VS_RATING WHERE RATING IS NOT NULL AND BUDGET > 0 "
            f"ORDER BY MD5(MOVIE_KEY) LIMIT {int(points)}"
        ),
        "history": (
            "SELECT MOVIE_KEY, TITLE, YEAR, VERSION, VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED, CHANGE, "
            f"SOURCE, OPENED_BY_EXTRACT FROM {a}.V_MOVIE_HISTORY "
            f"ORDER BY VALID_FROM DESC, MOVIE_KEY LIMIT {int(recent)}"
        ),
    }


def pipeline_queries(database: str, *, recent: int) -> dict[str, str]:
    """The pipeline page's statements, by section."""
    audit = _schema(database, "AUDIT")
    return {
        "rejects": (
            "SELECT REASON, FIELD, COUNT(*) AS ROWS_REJECTED "
            f"FROM {audit}.REJECTS GROUP BY REASON, FIELD ORDER BY ROWS_REJECTED DESC, REASON, FIELD"
        ),
        "batches": (
            "SELECT EXTRACT_ID, SOURCE, EXTRACT_KIND, EXTRACTED_AT, ROWS_EXTRACTED, ROWS_LOADED, "
            "ROWS_REJECTED, ROWS_DUPLICATE, ROWS_MERGED, VERSIONS_OPENED, CHANGED_IN_PLACE, MOVIES_CLOSED, "
            f"STATUS, RECONCILED_AT FROM {audit}.BATCHES "
            f"ORDER BY RECONCILED_AT DESC NULLS LAST, EXTRACT_ID DESC LIMIT {int(recent)}"
        ),
        "batch_status": (
            f"SELECT STATUS, COUNT(*) AS BATCHES FROM {audit}.BATCHES GROUP BY STATUS ORDER BY STATUS"
        ),
    }


def warehouse_reader(
    settings: Settings, queries: dict[str, str], pool: ConnectionPool | None = None
) -> Reader:
    """Run ``queries`` in turn on one connection; each result is a section of rows keyed by column name.

    The connection comes from ``pool`` (the dashboard keeps one, so a page does not pay a login), or is
    opened for this read. A statement that fails fails its own section; a warehouse that does not
    answer fails them all.
    """
    names = tuple(queries)
    what = f"the warehouse ({settings.warehouse_database})"

    def attempt(connection: Any) -> dict[str, Section]:
        sections: dict[str, Section] = {}
        for name, sql in queries.items():
            try:
                cursor = connection.cursor()
                cursor.execute(sql)
                columns = [column.name.upper() for column in cursor.description or []]
                rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
                sections[name] = Section(name, value=rows)
            except Exception as exc:
                if lost_connection(exc):
                    raise  # the connection, not the statement: the pool drops it
                sections.update(failed((name,), f"{what}: {describe(exc)}"))
        return sections

    def read() -> dict[str, Section]:
        lender = pool or ConnectionPool(settings, size=0)
        try:
            with lender.connection() as connection:
                return attempt(connection)
        except WarehouseUnavailable:
            # A kept connection may have outlived its session (a warehouse restart): once more, anew.
            with lender.connection() as connection:
                return attempt(connection)

    return Reader("warehouse", what, names, read)

"""Create what the loader needs in the warehouse: database, schemas, file format, stage, tables, views.

Every statement is idempotent, so this runs at each start (and before the first load of a process).
"""

from __future__ import annotations

import logging

from services.loader import statements
from shared.logs import log_event
from shared.settings import Settings
from shared.warehouse import connect

logger = logging.getLogger(__name__)


def bootstrap(settings: Settings, *, storage_integration: str | None = None) -> list[str]:
    """Create whatever of the loader's warehouse objects is missing; the statements run."""
    database = settings.warehouse_database
    with connect(settings) as connection:
        cursor = connection.cursor()
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {statements.identifier(database)}")
        cursor.execute(statements.existing_tables(database))
        existing = frozenset(row[0] for row in cursor.fetchall())
        run = statements.bootstrap_statements(
            database,
            settings.bucket("archive"),
            storage_integration=storage_integration,
            existing_tables=existing,
        )
        if existing:
            # Tables an earlier version made: add the columns it did not have.
            cursor.execute(statements.table_column_names(database))
            present: dict[str, set[str]] = {}
            for table, column in cursor.fetchall():
                present.setdefault(table, set()).add(column)
            run += [
                statement
                for table in sorted(existing & set(statements.table_columns()))
                for statement in statements.add_missing_columns(database, table, present.get(table, set()))
            ]
        for statement in run:
            cursor.execute(statement)
    log_event(
        logger,
        "warehouse_bootstrapped",
        database=database,
        created_tables=sorted(set(statements.table_columns()) - existing),
    )
    return run

"""Apply the production Snowflake SQL of ``deploy/snowflake/`` to an account, in order, in one command.

    python -m deploy.snowflake.apply --archive-role-arn arn:aws:iam::123456789012:role/moviepipe-snowflake

The account and the credentials come from the environment, the very variables the loader reads
(``MOVIEPIPE_WAREHOUSE_ACCOUNT``, ``_USER``, ``_PASSWORD``, ``_ROLE``, ``_HOST``, ``_PORT``,
``_PROTOCOL``; see ``deploy/snowflake/README.md``); ``--role`` runs as another role, e.g. one allowed to
create the storage integration. Which files run follows ``--merge``:

- ``loader`` (the default): ``00`` to ``03``; the loader loads and merges.
- ``tasks``: also ``05`` and ``06``, the stream and the task graph that merge instead of the loader
  (which then runs with ``MOVIEPIPE_MERGE_STAR=false``).
- ``snowpipe``: also ``04``, Snowpipe loading instead of the loader.

``--only 02,03`` runs just those files. The files' placeholders are filled in from the options (the
archive bucket defaults to ``{MOVIEPIPE_PREFIX}-archive``). Each statement runs on its own, and the
first that fails stops the run with an error naming its file, its number and its first line; every
statement may run again (``IF NOT EXISTS`` / ``OR REPLACE``), so the fix is to run the command again.
``--dry-run`` prints what would run and connects to nothing.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass

import snowflake.connector
from snowflake.connector.errors import Error as SnowflakeError
from snowflake.connector.util_text import split_statements

from deploy.snowflake import generate
from shared.settings import Settings
from shared.warehouse import address, connection_parameters

ALWAYS = ("00_database.sql", "01_storage_integration.sql", "02_stage.sql", "03_tables.sql")
MERGES = {
    "loader": ALWAYS,
    "tasks": (*ALWAYS, "05_stream.sql", "06_tasks.sql"),
    "snowpipe": (*ALWAYS, "04_pipe.sql", "05_stream.sql", "06_tasks.sql"),
}
"""The files each way of loading and merging needs, in the order they run (the README's table)."""
NEEDS_ROLE_ARN = "01_storage_integration.sql"


class ApplyFailed(Exception):
    """A statement failed; what ran before it stays (each statement commits on its own)."""


@dataclass(frozen=True)
class Statement:
    file: str
    number: int
    """1-based, within its file."""
    of: int
    sql: str

    @property
    def first_line(self) -> str:
        return self.sql.strip().splitlines()[0][:100]


def file_names(merge: str, only: list[str] | None = None) -> list[str]:
    """The files to run, in order: those of ``merge``, narrowed to ``only`` (by name or leading number)."""
    names = list(MERGES[merge])
    if not only:
        return names
    known = set(generate.files())
    picked = []
    for wanted in only:
        matches = [name for name in sorted(known) if name == wanted or name.split("_")[0] == wanted.zfill(2)]
        if not matches:
            raise ValueError(f"no file {wanted!r} in deploy/snowflake (files: {', '.join(sorted(known))})")
        picked += matches
    return [name for name in sorted(known) if name in picked]


def plan(files: list[str], *, archive_bucket: str, archive_role_arn: str | None) -> list[Statement]:
    """Every statement of ``files``, placeholders filled in, in the order they run."""
    if NEEDS_ROLE_ARN in files and not archive_role_arn:
        raise ValueError(
            f"{NEEDS_ROLE_ARN} needs --archive-role-arn (the IAM role Snowflake assumes to read "
            f"s3://{archive_bucket}); leave the file out with --only if the integration exists"
        )
    texts = generate.files(archive_bucket, archive_role_arn or generate.ARCHIVE_ROLE_ARN)
    found = []
    for name in files:
        statements = [sql for sql, _ in split_statements(io.StringIO(texts[name]), remove_comments=True)]
        statements = [sql for sql in statements if sql.strip().rstrip(";").strip()]
        found += [Statement(name, n, len(statements), sql) for n, sql in enumerate(statements, 1)]
    return found


def apply(connection, statements: list[Statement], say: Callable[[str], None] = print) -> None:
    """Run ``statements`` one by one on ``connection``; ``ApplyFailed`` at the first that fails."""
    cursor = connection.cursor()
    for statement in statements:
        where = f"{statement.file} statement {statement.number} of {statement.of}"
        try:
            cursor.execute(statement.sql)
        except SnowflakeError as exc:
            raise ApplyFailed(f"{where} failed ({statement.first_line} …): {exc.msg or exc}") from exc
        say(f"ok  {where}: {statement.first_line}")


def _connection(settings: Settings, role: str | None) -> snowflake.connector.SnowflakeConnection:
    parameters = connection_parameters(settings)
    # The database is what 00 creates: the session starts without one (every name is qualified).
    parameters.pop("database")
    parameters.pop("schema")
    if role:
        parameters["role"] = role
    return snowflake.connector.connect(**parameters)


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    settings = settings or Settings()
    parser = argparse.ArgumentParser(
        prog="python -m deploy.snowflake.apply", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--merge", choices=sorted(MERGES), default="loader", help="default: %(default)s")
    parser.add_argument("--archive-role-arn", help="the IAM role Snowflake assumes to read the archive")
    parser.add_argument("--archive-bucket", default=settings.bucket("archive"), help="default: %(default)s")
    parser.add_argument("--only", help="comma-separated files to run, by name or number (e.g. 02,03)")
    parser.add_argument("--role", help="run as this role (default: MOVIEPIPE_WAREHOUSE_ROLE)")
    parser.add_argument("--dry-run", action="store_true", help="print the statements; connect to nothing")
    args = parser.parse_args(argv)

    if settings.warehouse_database != generate.DATABASE:
        print(
            f"error: MOVIEPIPE_WAREHOUSE_DATABASE is {settings.warehouse_database}, but deploy/snowflake "
            f"creates {generate.DATABASE}",
            file=sys.stderr,
        )
        return 2
    try:
        files = file_names(args.merge, args.only.split(",") if args.only else None)
        statements = plan(files, archive_bucket=args.archive_bucket, archive_role_arn=args.archive_role_arn)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for statement in statements:
            print(f"-- {statement.file} statement {statement.number} of {statement.of}\n{statement.sql}\n")
        return 0
    where = f"{settings.warehouse_account} at {address(settings)}"
    print(f"applying {', '.join(files)} ({len(statements)} statements) to {where}")
    try:
        connection = _connection(settings, args.role)
    except SnowflakeError as exc:
        print(f"error: could not connect to {where}: {exc.msg or exc}", file=sys.stderr)
        return 1
    try:
        apply(connection, statements)
    except ApplyFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("what ran before it stays; fix the cause and run the command again", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if args.merge == "tasks":
        print("the tasks merge now: run the loader with MOVIEPIPE_MERGE_STAR=false")
    print(f"done: {len(statements)} statements")
    return 0


if __name__ == "__main__":
    sys.exit(main())

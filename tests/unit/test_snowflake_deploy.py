"""The production Snowflake SQL in deploy/snowflake/: generated from the loader's own SQL, kept in step,
the merge tasks running the loader's merge files as they are, every statement parseable Snowflake SQL.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlglot
from snowflake.connector.util_text import split_statements as connector_split
from sqlglot import exp

from deploy.snowflake import generate
from services.loader import star, statements

FOLDER = Path(generate.__file__).parent
ROOT = "MOVIES.AUDIT.MERGE_STAR"
STREAM = "MOVIES.RAW.MOVIES_STREAM"

# What sqlglot may keep as an opaque Command (it has no grammar for them), and whether it has a body
# after AS that must then parse for real; anything else must parse as a whole.
COMMANDS = {
    "CREATE PIPE ": True,
    "CREATE OR REPLACE TASK ": True,
    "CREATE STREAM ": False,
    "ALTER TASK ": False,
}


def split_statements(text: str) -> list[str]:
    """A file's statements, each with the comment lines before it, split where Snowflake's clients split.

    Every statement ends with ';' at a line end; a task's transaction block, semicolons and all, is one
    statement (its body is a ``$$`` string).
    """
    assert text.endswith(";\n")
    return [
        found.removesuffix(";").strip()
        for found, _ in connector_split(io.StringIO(text), remove_comments=False)
        if found.strip()
    ]


def block_statements(body: str) -> list[str] | None:
    """The statements of a task's ``EXECUTE IMMEDIATE $$`` transaction block; None for a plain body."""
    match = re.fullmatch(
        r"EXECUTE IMMEDIATE \$\$\nBEGIN\n    BEGIN TRANSACTION;\n(.*)    COMMIT;\nEXCEPTION\n"
        r"    WHEN OTHER THEN\n        ROLLBACK;\n        RAISE;\nEND;\n\$\$",
        body,
        flags=re.DOTALL,
    )
    if not match:
        return None
    return [statement.strip() for statement in match.group(1).split(";\n") if statement.strip()]


def outside_blocks(text: str) -> str:
    """``text`` less its ``$$ … $$`` strings."""
    return re.sub(r"\$\$.*?\$\$", "$$$$", text, flags=re.DOTALL)


def without_comments(text: str) -> str:
    """A statement without the comment (and blank) lines it starts with, a merge file's or a deploy file's."""
    lines = text.strip().splitlines(keepends=True)
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines).strip()


def sql_files() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(FOLDER.glob("*.sql"))}


@dataclass(frozen=True)
class Task:
    name: str
    properties: list[str]
    body: str


def tasks_in(text: str) -> list[Task]:
    """The CREATE TASK statements of a file, in order: name, one property a line, the body after AS."""
    found = []
    for statement in map(without_comments, split_statements(text)):
        match = re.fullmatch(r"CREATE OR REPLACE TASK (\S+)\n(.*?)\nAS\n(.*)", statement, flags=re.DOTALL)
        if match:
            name, properties, body = match.groups()
            found.append(Task(name, [line.strip() for line in properties.splitlines()], body))
    return found


def test_the_committed_files_are_what_the_generator_writes_from_the_loaders_sql_now():
    # GIVEN the SQL files an admin runs, as committed
    on_disk = sql_files()

    # WHEN the generator runs on the loader's SQL as it is now
    generated = generate.files()

    # THEN they are the same files, word for word (else: python -m deploy.snowflake.generate),
    # numbered in the order they are run
    assert on_disk == generated
    assert list(generated) == sorted(generated)
    assert [name[:3] for name in generated] == [f"{n:02d}_" for n in range(len(generated))]


def test_each_child_task_runs_one_transaction_of_merge_files_as_they_are_in_order():
    # GIVEN the loader's merge files: the pending fill from RAW first, which the stream replaces
    merge_files = sorted(star.sql_folder().glob("*.sql"))
    assert merge_files[0].name == "00_pending_from_raw.sql"
    expected = [without_comments(path.read_text().format(database="MOVIES")) for path in merge_files[1:]]

    # WHEN the committed task graph is read
    root, *children = tasks_in((FOLDER / "06_tasks.sql").read_text())

    # THEN one child per transaction of the merge, each running its files' statements in one transaction,
    # character for character, and all of them together every file after 00 in the files' order
    assert [task.name for task in children] == [f"{ROOT}_{group.upper()}" for group, _ in star.TRANSACTIONS]
    blocks = [block_statements(task.body) for task in children]
    assert all(block is not None for block in blocks)
    assert [statement for block in blocks for statement in block] == expected
    assert [len(block) for block in blocks] == [len(steps) for _, steps in star.TRANSACTIONS]
    # AND each runs after the one before it, the first after the root
    for before, task in zip([root, *children], children, strict=False):
        assert f"AFTER {before.name}" in task.properties
        assert not any(p.startswith(("SCHEDULE", "WHEN")) for p in task.properties)


def test_the_root_task_runs_each_minute_that_the_stream_has_data_and_consumes_it_into_pending():
    # WHEN the committed task graph is read
    root, *_ = tasks_in((FOLDER / "06_tasks.sql").read_text())

    # THEN the root is scheduled, runs only when the stream on RAW.MOVIES has rows, and follows nothing
    assert root.name == ROOT
    assert "SCHEDULE = '1 MINUTE'" in root.properties
    assert f"WHEN SYSTEM$STREAM_HAS_DATA('{STREAM}')" in root.properties
    assert "WAREHOUSE = MOVIEPIPE_WH" in root.properties
    assert not any(p.startswith("AFTER") for p in root.properties)
    # AND its condition is an expression Snowflake can evaluate
    (condition,) = [p.removeprefix("WHEN ") for p in root.properties if p.startswith("WHEN ")]
    assert isinstance(sqlglot.parse_one(f"SELECT {condition}", read="snowflake"), exp.Select)

    # AND its body fills AUDIT.MERGE_PENDING from the stream's inserted rows, less what was merged
    body = sqlglot.parse_one(root.body, read="snowflake")
    assert isinstance(body, exp.Insert)
    assert body.this.this.sql() == "MOVIES.AUDIT.MERGE_PENDING"
    read = {table.sql(comments=False).split(" AS ")[0] for table in body.expression.find_all(exp.Table)}
    assert {STREAM, "MOVIES.RAW.MOVIES", "MOVIES.AUDIT.MERGES", "MOVIES.AUDIT.MERGE_PENDING"} <= read
    assert "METADATA$ACTION = 'INSERT'" in root.body


def test_the_children_are_resumed_before_the_root_and_the_root_suspended_before_any_is_replaced():
    # GIVEN the statements of the tasks file, in order
    text = (FOLDER / "06_tasks.sql").read_text()
    code = [without_comments(statement) for statement in split_statements(text)]
    names = [task.name for task in tasks_in(text)]

    # THEN the root is suspended first (a graph's tasks can only be replaced then)
    assert code[0] == f"ALTER TASK IF EXISTS {ROOT} SUSPEND"
    # AND every task is resumed at the end, the children first and the root last
    resumed = [s.removeprefix("ALTER TASK ").removesuffix(" RESUME") for s in code if s.endswith(" RESUME")]
    assert resumed == [*names[1:], ROOT]
    assert code[-len(resumed) :] == [f"ALTER TASK {name} RESUME" for name in resumed]


@pytest.mark.parametrize("name", sorted(generate.files()))
def test_every_statement_parses_as_snowflake_sql_and_no_statement_holds_a_semicolon(name):
    # GIVEN one deploy file, split into statements at the ';' that ends each
    text = sql_files()[name]
    chunks = split_statements(text)

    # THEN a plain split at each ';' that ends a line outside a $$ block finds the same statements as
    # the Snowflake connector's own splitter (what `snow sql -f` runs)
    plain = [chunk.strip() for chunk in outside_blocks(text).split(";\n") if chunk.strip()]
    assert [outside_blocks(chunk) for chunk in chunks] == plain

    for chunk in chunks:
        # AND no statement (nor its comments) holds a ';' outside a transaction block
        assert ";" not in outside_blocks(chunk), chunk[:80]
        code = without_comments(chunk)

        # AND sqlglot reads it as one Snowflake statement
        parsed = sqlglot.parse(code, read="snowflake")
        assert len(parsed) == 1, code[:80]
        (expression,) = parsed
        if isinstance(expression, exp.Command):
            # an opaque command only where sqlglot has no grammar, and then its body must parse for real
            (has_body,) = [has for command, has in COMMANDS.items() if code.startswith(command)]
            assert ("\nAS\n" in code) == has_body, code[:80]
            if has_body:
                body = code.split("\nAS\n", 1)[1]
                block = block_statements(body)
                for statement in block if block is not None else [body]:
                    parsed_body = sqlglot.parse(statement, read="snowflake")
                    assert len(parsed_body) == 1 and not isinstance(parsed_body[0], exp.Command), code[:80]
        else:
            assert expression.sql(dialect="snowflake"), code[:80]


@pytest.mark.parametrize(
    ("pipe", "role"), [("MOVIES.RAW.MOVIES_PIPE", "movies"), ("MOVIES.AUDIT.REJECTS_PIPE", "rejects")]
)
def test_a_pipe_copies_the_files_columns_by_position_and_stamps_load_metadata_from_the_file(pipe, role):
    # GIVEN the table one role of archive file loads into, and its columns
    target = statements.TARGETS[role]
    metadata = [column.split()[0] for column in statements.LOAD_METADATA_COLUMNS]

    # WHEN the pipe's COPY is read from the committed file
    (statement,) = [
        without_comments(s)
        for s in split_statements((FOLDER / "04_pipe.sql").read_text())
        if without_comments(s).startswith(f"CREATE PIPE IF NOT EXISTS {pipe}\n")
    ]
    assert "AUTO_INGEST = TRUE" in statement.split("\nAS\n")[0]
    copy = sqlglot.parse_one(statement.split("\nAS\n", 1)[1], read="snowflake")
    assert isinstance(copy, exp.Copy)
    columns = [column.sql() for column in copy.this.expressions]
    values = [value.sql(dialect="snowflake", comments=False) for value in copy.find(exp.Select).expressions]
    params = {param.this.name: param for param in copy.args["params"]}

    # THEN it fills the table's columns from the file's, in order, then the load metadata from the file
    assert copy.this.this.sql() == f"MOVIES.{target.table}"
    assert columns == [*target.columns, *metadata]
    filled = dict(zip(columns, values, strict=True))
    assert [filled[column] for column in target.columns] == [
        f"${n}" for n in range(1, len(target.columns) + 1)
    ]
    assert filled["FILE_NAME"] == "METADATA$FILENAME"
    assert filled["SOURCE"] == "SPLIT_PART(METADATA$FILENAME, '/', 1)"
    # AND a part file never counts as a whole full extract (a full extract closes the movies it lacks)
    assert filled["EXTRACT_KIND"] == "'incremental'"
    assert filled["EXTRACTED_AT"] == "METADATA$START_SCAN_TIME"
    # AND it reads the archive stage in the loader's file format, only the part files of its role
    assert copy.find(exp.Select).args["from_"].this.sql() == "@MOVIES.RAW.ARCHIVE"
    assert "FORMAT_NAME='MOVIES.RAW.ARCHIVE_CSV'" in params["FILE_FORMAT"].sql(dialect="snowflake")
    pattern = params["PATTERN"].expression.name
    assert re.fullmatch(pattern, f"imdb/20261101T120000Z-0a1b2c3d/{role}/part-00000.csv")
    other = "rejects" if role == "movies" else "movies"
    for path in (f"imdb/20261101T120000Z-0a1b2c3d/{other}/part-00000.csv", "imdb/x/manifest.json"):
        assert not re.fullmatch(pattern, path)


def test_the_tables_file_creates_every_table_and_view_of_the_loader_and_seeds_the_genres():
    # GIVEN the statements of the tables file
    parsed = [
        sqlglot.parse_one(without_comments(s), read="snowflake")
        for s in split_statements((FOLDER / "03_tables.sql").read_text())
    ]

    # THEN it creates every table the loader's bootstrap creates, and every BI view, in MOVIES
    created = {
        (e.kind, e.this.sql() if e.kind == "VIEW" else e.this.this.sql())
        for e in parsed
        if isinstance(e, exp.Create)
    }
    assert {name for kind, name in created if kind == "TABLE"} == {
        f"MOVIES.{table}" for table in statements.table_columns()
    }
    assert {name for kind, name in created if kind == "VIEW"} == {f"MOVIES.{view}" for view in star.views()}
    # AND the genres are seeded, safe to run again
    assert star.seed_genres("MOVIES") in (FOLDER / "03_tables.sql").read_text()


def test_the_placeholders_are_only_the_bucket_and_role_and_the_generator_fills_them_elsewhere(tmp_path):
    # GIVEN the committed files
    placeholders = {
        name: set(re.findall(r"&\{\w+\}", text)) for name, text in sql_files().items() if "&{" in text
    }

    # THEN only the storage integration and the stage carry placeholders, the bucket and the role
    assert placeholders == {
        "01_storage_integration.sql": {"&{ARCHIVE_BUCKET}", "&{ARCHIVE_ROLE_ARN}"},
        "02_stage.sql": {"&{ARCHIVE_BUCKET}"},
    }

    # WHEN the generator is given an account's values and a folder of its own
    generate.main(
        [
            "--archive-bucket",
            "acme-archive",
            "--archive-role-arn",
            "arn:aws:iam::123456789012:role/acme-snowflake",
            "--output",
            str(tmp_path),
        ]
    )

    # THEN it writes every file there with the values filled in
    written = {path.name: path.read_text() for path in tmp_path.glob("*.sql")}
    assert set(written) == set(sql_files())
    assert not any("&{" in text for text in written.values())
    assert "URL = 's3://acme-archive/' STORAGE_INTEGRATION = MOVIEPIPE_ARCHIVE" in written["02_stage.sql"]
    assert (
        "STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/acme-snowflake'"
        in written["01_storage_integration.sql"]
    )
    assert "STORAGE_ALLOWED_LOCATIONS = ('s3://acme-archive/')" in written["01_storage_integration.sql"]


def test_the_generator_refuses_to_fill_the_committed_files_in_place():
    # WHEN values are given without a folder of their own
    with pytest.raises(SystemExit):
        generate.main(["--archive-bucket", "acme-archive"])

    # THEN the committed files keep their placeholders
    assert sql_files() == generate.files()

"""The star schema's SQL as text: generated from the Type 1 / Type 2 declaration, files kept in step."""

from __future__ import annotations

import sqlglot

from services.loader import star, statements
from shared.schema import MOVIE_FIELDS, type1_fields, type2_fields


def test_the_merge_files_are_what_the_declaration_generates():
    # GIVEN the files the loader runs (and Snowflake's tasks run)
    folder = star.sql_folder()
    on_disk = {path.name: path.read_text() for path in folder.glob("*.sql")}

    # WHEN the generator is run from shared.schema's declaration
    generated = star.step_files()

    # THEN they are the same files, word for word (else: python -m services.loader.star)
    assert on_disk == generated


def test_every_attribute_is_declared_type_1_or_type_2_and_each_appears_where_its_type_says():
    # GIVEN the declaration
    type1 = {f.name.upper() for f in type1_fields()}
    type2 = {f.name.upper() for f in type2_fields()}

    # THEN title and year (the movie key) are Type 1, and the descriptive attributes Type 2
    assert type1 == {"TITLE", "YEAR"}
    assert {"MPAA", "BUDGET", "LENGTH", "ACTION", "DRAMA"} <= type2
    assert not type1 & type2
    assert {f.name for f in MOVIE_FIELDS if f.scd is None} == {
        "rating",
        "votes",
        *(f"r{n}" for n in range(1, 11)),
    }

    # AND a Type 2 attribute is compared to open a version, a Type 1 attribute only overwritten in place
    files = star.step_files()
    versions = next(text for name, text in files.items() if name.endswith("_recompute_versions.sql"))
    overwrite = next(text for name, text in files.items() if name.endswith("_overwrite_type1.sql"))
    for name in type2:
        assert f"{name} IS DISTINCT FROM PREV_{name}" in versions
    for name in type1:
        assert f"PREV_{name}" not in versions
        assert f"{name} = t.{name}" in overwrite


def test_every_merge_statement_and_view_parses_as_snowflake_sql():
    # WHEN the statements are parsed with sqlglot's Snowflake dialect
    texts = [
        *statements.star_merge("MOVIES"),
        *(view.format(database="MOVIES") for view in star.views().values()),
    ]

    # THEN each is one statement that sqlglot understands (not an opaque command)
    for text in texts:
        (parsed,) = sqlglot.parse(text, read="snowflake")
        assert not isinstance(parsed, sqlglot.exp.Command), text[:80]


def test_the_transactions_of_the_task_graph_hold_every_step_once_in_order():
    # GIVEN the steps of the merge in the order the loader runs them
    steps = [step.name for step in star.merge_steps()]

    # WHEN the transactions Snowflake's tasks commit them in are read off
    grouped = [name for _, names in star.TRANSACTIONS for name in names]

    # THEN they hold every step, once, in the same order (the pending fill is the root task's)
    assert grouped == steps
    # AND removing replaced versions commits with re-inserting them
    (dimension,) = [names for group, names in star.TRANSACTIONS if "remove_replaced_versions" in names]
    assert "insert_versions" in dimension and "recompute_versions" in dimension

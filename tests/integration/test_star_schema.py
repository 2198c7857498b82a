"""The star schema through the real connector against the warehouse stand-in: SCD Type 1 and Type 2,
deletions from full extracts, replays, extracts out of order and crashes between load and merge.

Archived bundles are written here from the bundled IMDb rows (as the transformer leaves them) and
delivered to the loader's handler as the SQS event Lambda would get.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from services.loader import handler as loader_handler
from services.loader import merge, star, statements
from services.loader.bootstrap import bootstrap
from services.loader.handler import make_handler
from services.loader.star import OPEN_VALID_TO, UNCLASSIFIED
from shared.aws import client
from shared.events import s3_notification
from shared.keys import movie_key
from shared.manifest import MANIFEST_NAME, describe_file, new_manifest
from shared.schema import CLEAN_MOVIE_FIELDS, GENRES, REJECT_FIELDS, arrow_schema, field_names
from shared.settings import Settings
from shared.warehouse import connect, query, transaction

pytestmark = pytest.mark.integration

SOURCE = "imdb"
T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
OPEN = datetime.fromisoformat(OPEN_VALID_TO)
STAR_TABLES = {
    "ANALYTICS.DIM_MOVIE": "MOVIE_SK",
    "ANALYTICS.BRIDGE_MOVIE_GENRE": "MOVIE_SK, GENRE_KEY",
    "ANALYTICS.FACT_MOVIE_RATING": "MOVIE_KEY, EXTRACT_ID",
    "ANALYTICS.FACT_MOVIE_CURRENT": "MOVIE_KEY",
    "ANALYTICS.DIM_YEAR": "YEAR",
    "ANALYTICS.DIM_GENRE": "GENRE_KEY",
}


@pytest.fixture(scope="session")
def imdb_clean(imdb_arrow) -> list[dict[str, Any]]:
    """The IMDb rows as clean movies: keyed, one row per key (the first of a duplicated title and year)."""
    seen: set[str] = set()
    rows = []
    for row in imdb_arrow.select(field_names()).to_pylist():
        key = movie_key(row["title"], row["year"])
        if key not in seen:
            seen.add(key)
            rows.append({"movie_key": key, **row})
    return rows


class Archive:
    """Writes archived bundles for one test database and delivers their events to a loader."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.s3 = client("s3", settings)
        self.handler = make_handler(settings)

    def publish(
        self, rows: list[dict[str, Any]], *, at: datetime, kind: str = "full", source: str = SOURCE
    ) -> str:
        """An archived bundle of ``rows`` extracted at ``at``; its manifest's key."""
        extract_id = f"{at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        folder = self.tmp_path / extract_id
        movies = folder / "movies" / "part-00000.csv"
        rejects = folder / "rejects" / "part-00000.csv"
        for path, data, fields in (
            (movies, [{**row, "extract_id": extract_id} for row in rows], CLEAN_MOVIE_FIELDS),
            (rejects, [], REJECT_FIELDS),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            pacsv.write_csv(pa.Table.from_pylist(data, schema=arrow_schema(fields)), path)
        described = []
        for path, name, count, fields, role in (
            (movies, "movies-0", len(rows), CLEAN_MOVIE_FIELDS, "movies"),
            (rejects, "rejects-0", 0, REJECT_FIELDS, "rejects"),
        ):
            resource = describe_file(path, name=name, rows=count, fields=fields, relative_to=folder)
            described.append(type(resource)(**resource.model_dump(by_alias=True), role=role))
            self.s3.upload_file(
                str(path), self.settings.bucket("archive"), f"{source}/{extract_id}/{resource.path}"
            )
        manifest = new_manifest(
            extract_id=extract_id,
            source=source,
            stage="transform",
            row_counts={"extracted": len(rows), "clean": len(rows), "rejected": 0, "duplicates": 0},
            resources=described,
            extracted_at=at.isoformat(),
            extract_kind=kind,
        )
        key = f"{source}/{extract_id}/{MANIFEST_NAME}"
        self.s3.put_object(Bucket=self.settings.bucket("archive"), Key=key, Body=manifest.to_json().encode())
        return key

    def deliver(self, *keys: str) -> dict[str, Any]:
        """One SQS batch naming these archive manifests, as Lambda hands it to the loader."""
        records = [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": json.dumps(s3_notification(self.settings.bucket("archive"), key)),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:loader",
                "awsRegion": "us-east-1",
            }
            for i, key in enumerate(keys)
        ]
        return self.handler({"Records": records}, None)

    def sql(self, statement: str) -> list[dict[str, Any]]:
        columns, rows = query(self.settings, statement.replace("{db}", self.settings.warehouse_database))
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def tables(self) -> dict[str, list[tuple]]:
        """Every star schema table, whole, in a stable order."""
        db = self.settings.warehouse_database
        return {
            table: query(self.settings, f"SELECT * FROM {db}.{table} ORDER BY {order}")[1]
            for table, order in STAR_TABLES.items()
        }

    def versions(self) -> dict[str, list[dict[str, Any]]]:
        """DIM_MOVIE's versions by movie key, oldest first."""
        found: dict[str, list[dict[str, Any]]] = {}
        for row in self.sql("SELECT * FROM {db}.ANALYTICS.DIM_MOVIE ORDER BY MOVIE_KEY, VALID_FROM"):
            found.setdefault(row["MOVIE_KEY"], []).append(row)
        return found

    def current_facts_are_the_latest(self) -> None:
        """``FACT_MOVIE_CURRENT`` holds exactly each movie's latest fact, as the whole history has it."""
        latest = self.sql(
            "SELECT * FROM {db}.ANALYTICS.FACT_MOVIE_RATING QUALIFY ROW_NUMBER() OVER "
            "(PARTITION BY MOVIE_KEY ORDER BY EXTRACTED_AT DESC, EXTRACT_ID DESC) = 1 ORDER BY MOVIE_KEY"
        )
        current = self.sql("SELECT * FROM {db}.ANALYTICS.FACT_MOVIE_CURRENT ORDER BY MOVIE_KEY")
        assert latest and current == latest

    def batch(self, manifest_key: str) -> dict[str, Any]:
        extract_id = manifest_key.split("/")[1]
        (row,) = self.sql(f"SELECT * FROM {{db}}.AUDIT.BATCHES WHERE EXTRACT_ID = '{extract_id}'")
        return row


@pytest.fixture
def archive(warehouse_settings: Settings, tmp_path: Path) -> Archive:
    return Archive(warehouse_settings, tmp_path)


@pytest.fixture
def second_archive(warehouse_settings: Settings, tmp_path: Path) -> Archive:
    """The same buckets, another database: to compare two deliveries of the same extracts."""
    settings = warehouse_settings.model_copy(
        update={"warehouse_database": f"T_{uuid.uuid4().hex[:12].upper()}"}
    )
    return Archive(settings, tmp_path / "second")


def changed(rows: list[dict[str, Any]], changes: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of ``rows`` with ``changes`` (row index → new values) applied."""
    return [{**row, **changes.get(i, {})} for i, row in enumerate(rows)]


def ok(result: dict[str, Any]) -> None:
    assert result == {"batchItemFailures": []}


def test_type2_changes_open_exactly_one_new_version_each(archive, imdb_clean):
    # GIVEN the IMDb sample extracted and loaded
    first = archive.publish(imdb_clean, at=T0)
    ok(archive.deliver(first))

    # WHEN the source changes the MPAA rating of 3 movies and the budget of 2, and is extracted again
    mpaa = {i: {"mpaa": "R" if imdb_clean[i]["mpaa"] != "R" else "PG"} for i in (10, 2000, 40000)}
    budget = {i: {"budget": (imdb_clean[i]["budget"] or 0) + 1_000_000} for i in (7, 30000)}
    second_rows = changed(imdb_clean, {**mpaa, **budget})
    at2 = T0 + timedelta(days=1)
    second = archive.publish(second_rows, at=at2)
    ok(archive.deliver(second))

    # THEN exactly those 5 movies have two versions: the old closed where the new opens, one current each
    versions = archive.versions()
    assert len(versions) == len(imdb_clean)
    touched = {imdb_clean[i]["movie_key"]: i for i in (*mpaa, *budget)}
    assert {key for key, found in versions.items() if len(found) > 1} == set(touched)
    for key, i in touched.items():
        old, new = versions[key]
        assert (old["VALID_TO"], new["VALID_FROM"], new["VALID_TO"]) == (at2.replace(tzinfo=None),) * 2 + (
            OPEN,
        )
        assert (old["IS_CURRENT"], new["IS_CURRENT"], old["IS_DELETED"], new["IS_DELETED"]) == (
            False,
            True,
            False,
            False,
        )
        assert new["MPAA"] == second_rows[i]["mpaa"] and new["BUDGET"] == second_rows[i]["budget"]
        assert old["MPAA"] == imdb_clean[i]["mpaa"] and old["BUDGET"] == imdb_clean[i]["budget"]
        assert new["OPENED_BY_EXTRACT"] == second.split("/")[1]
    assert all(sum(v["IS_CURRENT"] for v in found) == 1 for found in versions.values())
    assert all(found[0]["VALID_TO"] == OPEN for key, found in versions.items() if key not in touched)

    # AND each extract has one fact per movie, on the version in force when it was extracted
    facts = archive.sql(
        "SELECT f.EXTRACT_ID, COUNT(*) AS N, COUNT(DISTINCT f.MOVIE_KEY) AS MOVIES, "
        "SUM(IFF(d.VALID_FROM <= f.EXTRACTED_AT AND f.EXTRACTED_AT < d.VALID_TO, 1, 0)) AS IN_FORCE "
        "FROM {db}.ANALYTICS.FACT_MOVIE_RATING f JOIN {db}.ANALYTICS.DIM_MOVIE d ON d.MOVIE_SK = f.MOVIE_SK "
        "GROUP BY f.EXTRACT_ID"
    )
    assert sorted((f["N"], f["MOVIES"], f["IN_FORCE"]) for f in facts) == [(len(imdb_clean),) * 3] * 2

    # AND the batch audit says what the merge did, and the history view says what changed
    assert (archive.batch(second)["VERSIONS_OPENED"], archive.batch(second)["STATUS"]) == (5, "RECONCILED")
    assert archive.batch(first)["VERSIONS_OPENED"] == len(imdb_clean)
    history = archive.sql(
        f"SELECT VERSION, CHANGE FROM {{db}}.ANALYTICS.V_MOVIE_HISTORY "
        f"WHERE MOVIE_KEY = '{imdb_clean[10]['movie_key']}' ORDER BY VERSION"
    )
    assert [(h["VERSION"], h["CHANGE"]) for h in history] == [(1, "first seen"), (2, "changed: mpaa")]

    # WHEN a third, identical extract arrives
    before = archive.tables()
    third = archive.publish(second_rows, at=T0 + timedelta(days=2))
    ok(archive.deliver(third))

    # THEN no version opens or closes; only its facts are added
    after = archive.tables()
    for table in ("ANALYTICS.DIM_MOVIE", "ANALYTICS.BRIDGE_MOVIE_GENRE", "ANALYTICS.DIM_YEAR"):
        assert after[table] == before[table], table
    assert len(after["ANALYTICS.FACT_MOVIE_RATING"]) == 3 * len(imdb_clean)
    assert archive.batch(third)["VERSIONS_OPENED"] == 0 and archive.batch(third)["STATUS"] == "RECONCILED"


def test_a_type1_correction_overwrites_every_version_and_opens_none(archive, imdb_clean):
    # GIVEN a movie with two versions (its MPAA rating changed once)
    rows = imdb_clean[:200]
    ok(archive.deliver(archive.publish(rows, at=T0)))
    ok(archive.deliver(archive.publish(changed(rows, {5: {"mpaa": "NC-17"}}), at=T0 + timedelta(days=1))))
    key = rows[5]["movie_key"]
    assert len(archive.versions()[key]) == 2

    # WHEN the source corrects its title's formatting (the same movie key)
    title = rows[5]["title"].upper() + "  "
    assert movie_key(title, rows[5]["year"]) == key
    fixed = changed(rows, {5: {"mpaa": "NC-17", "title": title}})
    third = archive.publish(fixed, at=T0 + timedelta(days=2))
    ok(archive.deliver(third))

    # THEN both versions carry the new title, and no version was opened
    versions = archive.versions()[key]
    assert [v["TITLE"] for v in versions] == [title, title]
    assert archive.batch(third)["VERSIONS_OPENED"] == 0
    assert archive.batch(third)["CHANGED_IN_PLACE"] == 1
    assert sum(len(v) for v in archive.versions().values()) == len(rows) + 1


def test_a_movie_missing_from_a_full_extract_is_closed_and_never_by_an_incremental_one(archive, imdb_clean):
    # GIVEN 100 movies loaded from a full extract
    rows = imdb_clean[:100]
    ok(archive.deliver(archive.publish(rows, at=T0)))
    gone = rows[3]["movie_key"]

    # WHEN an incremental extract without movie 3 arrives
    incremental = archive.publish(rows[:3] + rows[4:20], at=T0 + timedelta(days=1), kind="incremental")
    ok(archive.deliver(incremental))

    # THEN nothing is closed
    assert [v["IS_DELETED"] for v in archive.versions()[gone]] == [False]
    assert all(len(v) == 1 and v[0]["IS_CURRENT"] for v in archive.versions().values())
    assert archive.batch(incremental)["MOVIES_CLOSED"] == 0

    # WHEN a full extract without movie 3 arrives
    at = T0 + timedelta(days=2)
    full = archive.publish(rows[:3] + rows[4:], at=at)
    ok(archive.deliver(full))

    # THEN movie 3 is closed where a deleted version opens (carrying its last attributes), the rest stay
    old, deleted = archive.versions()[gone]
    assert (old["VALID_TO"], old["IS_CURRENT"]) == (at.replace(tzinfo=None), False)
    assert (deleted["VALID_FROM"], deleted["VALID_TO"], deleted["IS_CURRENT"], deleted["IS_DELETED"]) == (
        at.replace(tzinfo=None),
        OPEN,
        True,
        True,
    )
    assert (deleted["MPAA"], deleted["LENGTH"]) == (old["MPAA"], old["LENGTH"])
    assert archive.batch(full)["MOVIES_CLOSED"] == 1
    assert sum(len(v) for v in archive.versions().values()) == 101
    top = archive.sql(f"SELECT COUNT(*) AS N FROM {{db}}.ANALYTICS.V_TOP_MOVIES WHERE MOVIE_KEY = '{gone}'")
    assert top == [{"N": 0}]

    # WHEN it is back in the next full extract
    ok(archive.deliver(archive.publish(rows, at=T0 + timedelta(days=3))))

    # THEN a live version opens again
    history = archive.sql(
        f"SELECT CHANGE, IS_CURRENT FROM {{db}}.ANALYTICS.V_MOVIE_HISTORY WHERE MOVIE_KEY = '{gone}' "
        "ORDER BY VERSION"
    )
    assert history == [
        {"CHANGE": "first seen", "IS_CURRENT": False},
        {"CHANGE": "missing from a full extract", "IS_CURRENT": False},
        {"CHANGE": "back in the source", "IS_CURRENT": True},
    ]


def history_of_extracts(rows: list[dict[str, Any]]) -> list[tuple[list[dict[str, Any]], datetime, str]]:
    """Four extracts: full; full with changes and a movie gone; incremental with changes; full, it is back."""
    return [
        (rows, T0, "full"),
        (
            changed(rows[:40] + rows[41:], {1: {"mpaa": "R"}, 2: {"length": 999}}),
            T0 + timedelta(hours=1),
            "full",
        ),
        (changed(rows[:10], {1: {"mpaa": "PG"}, 3: {"budget": 5}}), T0 + timedelta(hours=2), "incremental"),
        (changed(rows, {4: {"title": rows[4]["title"].lower()}}), T0 + timedelta(hours=3), "full"),
    ]


def test_replays_and_reverse_order_give_the_warehouse_of_in_order_single_delivery(
    archive, second_archive, imdb_clean
):
    # GIVEN four extracts of one source (changes, a deletion, an incremental one, a Type 1 correction)
    extracts = history_of_extracts(imdb_clean[:300])

    # WHEN one warehouse gets each once, in the order extracted
    for rows, at, kind in extracts:
        ok(archive.deliver(archive.publish(rows, at=at, kind=kind)))

    # AND another gets them newest first, each event twice (one batch) and the whole run replayed again
    keys = [second_archive.publish(rows, at=at, kind=kind) for rows, at, kind in extracts]
    for key in reversed(keys):
        ok(second_archive.deliver(key, key))
    for key in keys:
        ok(second_archive.deliver(key))

    # THEN both warehouses hold the same star schema, table for table, row for row
    expected, found = archive.tables(), second_archive.tables()
    for table in STAR_TABLES:
        assert len(found[table]) == len(expected[table]), table

    # Extract ids differ between the two runs (each publish names its own), so compare by position in time.
    def by_time(archive: Archive, tables: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
        order = {
            row["EXTRACT_ID"]: n
            for n, row in enumerate(
                archive.sql("SELECT EXTRACT_ID FROM {db}.AUDIT.MERGES ORDER BY EXTRACTED_AT")
            )
        }

        def norm(value: Any) -> Any:
            if isinstance(value, str) and value in order:
                return f"extract {order[value]}"
            return value

        dim = [
            row["MOVIE_KEY"] + "|" + str(row["VALID_FROM"])
            for row in archive.sql("SELECT MOVIE_KEY, VALID_FROM FROM {db}.ANALYTICS.DIM_MOVIE")
        ]
        sk = {
            row["MOVIE_SK"]: row["MOVIE_KEY"] + "|" + str(row["VALID_FROM"])
            for row in archive.sql("SELECT MOVIE_SK, MOVIE_KEY, VALID_FROM FROM {db}.ANALYTICS.DIM_MOVIE")
        }
        assert len(dim) == len(set(dim)) == len(sk)
        return {
            table: sorted(tuple(str(norm(sk.get(v, v))) for v in row) for row in rows)
            for table, rows in tables.items()
        }

    assert by_time(second_archive, found) == by_time(archive, expected)

    # AND in both, the newest extract is the current version: the late older ones took their place in history
    for warehouse in (archive, second_archive):
        current = warehouse.sql(
            f"SELECT TITLE, MPAA, LENGTH, BUDGET FROM {{db}}.ANALYTICS.DIM_MOVIE "
            f"WHERE IS_CURRENT AND MOVIE_KEY = '{imdb_clean[1]['movie_key']}'"
        )
        assert current == [
            {
                "TITLE": imdb_clean[1]["title"],
                "MPAA": imdb_clean[1]["mpaa"],
                "LENGTH": imdb_clean[1]["length"],
                "BUDGET": imdb_clean[1]["budget"],
            }
        ]
        titles = warehouse.sql(
            "SELECT DISTINCT TITLE FROM {db}.ANALYTICS.DIM_MOVIE "
            f"WHERE MOVIE_KEY = '{imdb_clean[4]['movie_key']}'"
        )
        assert titles == [{"TITLE": imdb_clean[4]["title"].lower()}]
        assert warehouse.sql("SELECT COUNT(*) AS N FROM {db}.AUDIT.MERGES") == [{"N": 4}]
        assert warehouse.sql("SELECT COUNT(*) AS N FROM {db}.AUDIT.MERGE_PENDING") == [{"N": 0}]
        # AND the views' current facts are each movie's latest, late extracts notwithstanding
        warehouse.current_facts_are_the_latest()


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no handler in the loader catches it."""


@pytest.mark.parametrize("where", ["between COPY and MERGE", "in the middle of the MERGE"])
def test_a_loader_killed_before_or_during_the_merge_is_finished_by_the_redelivery(
    archive, second_archive, imdb_clean, monkeypatch, where
):
    # GIVEN two extracts, the second changing a movie and losing another
    extracts = history_of_extracts(imdb_clean[:300])[:2]
    for rows, at, kind in extracts:
        ok(second_archive.deliver(second_archive.publish(rows, at=at, kind=kind)))
    first = archive.publish(extracts[0][0], at=extracts[0][1])
    ok(archive.deliver(first))
    second = archive.publish(extracts[1][0], at=extracts[1][1])

    # WHEN the loader dies after the COPY committed, before or half-way through the merge
    if where == "between COPY and MERGE":

        def die(*args, **kwargs):
            raise Killed()

        monkeypatch.setattr(loader_handler, "merge_star", die)
    else:
        steps = iter(range(1000))
        real = merge.run_step

        def die_at_ninth(cursor, statement):
            if next(steps) == 9:
                raise Killed()
            real(cursor, statement)

        monkeypatch.setattr(merge, "run_step", die_at_ninth)
    with pytest.raises(Killed):
        archive.deliver(second)
    loaded = archive.sql(
        f"SELECT COUNT(*) AS N FROM {{db}}.RAW.MOVIES WHERE EXTRACT_ID = '{second.split('/')[1]}'"
    )
    assert loaded == [{"N": len(extracts[1][0])}]
    assert archive.sql("SELECT COUNT(*) AS N FROM {db}.AUDIT.MERGES") == [{"N": 1}]
    monkeypatch.undo()

    # AND the message is delivered again
    ok(archive.deliver(second))

    # THEN the warehouse is the one that never crashed: same versions, genres, facts and audit
    def shape(warehouse: Archive) -> list[Any]:
        return [
            Counter(len(v) for v in warehouse.versions().values()),
            warehouse.sql(
                "SELECT MOVIE_KEY, VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED, MPAA, LENGTH "
                "FROM {db}.ANALYTICS.DIM_MOVIE ORDER BY 1, 2"
            ),
            warehouse.sql("SELECT COUNT(*) AS N FROM {db}.ANALYTICS.BRIDGE_MOVIE_GENRE"),
            warehouse.sql(
                "SELECT COUNT(*) AS N, COUNT(DISTINCT MOVIE_SK) AS S FROM {db}.ANALYTICS.FACT_MOVIE_RATING"
            ),
            warehouse.sql(
                "SELECT ROWS_MERGED, VERSIONS_OPENED, MOVIES_CLOSED FROM {db}.AUDIT.MERGES "
                "ORDER BY EXTRACTED_AT"
            ),
        ]

    assert shape(archive) == shape(second_archive)
    assert archive.batch(second)["STATUS"] == "RECONCILED"
    archive.current_facts_are_the_latest()


def test_the_genre_and_decade_view_matches_the_source_computed_independently(archive, imdb_clean):
    # GIVEN the IMDb sample loaded
    ok(archive.deliver(archive.publish(imdb_clean, at=T0)))

    # WHEN average rating by genre and decade is computed straight from the source rows in DuckDB
    table = pa.Table.from_pylist(imdb_clean)
    flags = " OR ".join(GENRES)
    genre_rows = " UNION ALL ".join(
        [f"SELECT '{g}' AS genre, year, rating FROM movies WHERE {g}" for g in GENRES]
        + [f"SELECT '{UNCLASSIFIED}', year, rating FROM movies WHERE NOT ({flags})"]
    )
    con = duckdb.connect()
    con.register("movies", table)
    expected = con.execute(
        f"WITH g AS ({genre_rows}) SELECT genre, year - year % 10 AS decade, count(*), avg(rating) "
        "FROM g GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()

    # THEN the view agrees, group for group
    found = archive.sql(
        "SELECT GENRE, DECADE, MOVIES, AVG_RATING FROM {db}.ANALYTICS.V_RATINGS_BY_GENRE_DECADE ORDER BY 1, 2"
    )
    assert len(found) == len(expected) > 50
    for row, (genre, decade, movies, rating) in zip(found, expected, strict=True):
        assert (row["GENRE"], row["DECADE"], row["MOVIES"]) == (genre, decade, movies)
        assert row["AVG_RATING"] == pytest.approx(rating, abs=1e-9)


def test_a_loader_told_not_to_merge_loads_and_reconciles_and_leaves_the_merge_to_snowflakes_tasks(
    archive, imdb_clean
):
    # GIVEN a loader set not to merge (MOVIEPIPE_MERGE_STAR=false: Snowflake's stream and tasks merge)
    archive.handler = make_handler(archive.settings, merge=False)

    # WHEN an extract is delivered
    key = archive.publish(imdb_clean[:50], at=T0)
    ok(archive.deliver(key))

    # THEN its rows are loaded and reconciled, and the star schema is left to the tasks: its rows wait in
    # RAW for the stream, none merged
    assert archive.batch(key)["STATUS"] == "RECONCILED" and archive.batch(key)["ROWS_LOADED"] == 50
    assert archive.sql("SELECT COUNT(*) AS N FROM {db}.ANALYTICS.DIM_MOVIE") == [{"N": 0}]
    assert archive.sql("SELECT COUNT(*) AS N FROM {db}.AUDIT.MERGES") == [{"N": 0}]

    # AND a merge run later (what the tasks do) merges them, exactly once
    archive.handler = make_handler(archive.settings)
    ok(archive.deliver(archive.publish(imdb_clean[50:60], at=T0 + timedelta(hours=1), kind="incremental")))
    assert archive.sql("SELECT COUNT(*) AS N FROM {db}.ANALYTICS.DIM_MOVIE") == [{"N": 60}]
    assert archive.sql("SELECT COUNT(*) AS N FROM {db}.AUDIT.MERGES") == [{"N": 2}]


@pytest.mark.parametrize("committed", ["dimension", "facts"])
def test_a_task_graph_run_that_stops_between_its_transactions_is_finished_by_the_next_run(
    archive, second_archive, imdb_clean, committed
):
    # GIVEN the warehouse of two extracts merged without a hitch
    extracts = history_of_extracts(imdb_clean[:300])[:2]
    for rows, at, kind in extracts:
        ok(second_archive.deliver(second_archive.publish(rows, at=at, kind=kind)))

    # AND another that merged the first, then loaded the second without merging it (as with the tasks)
    ok(archive.deliver(archive.publish(extracts[0][0], at=extracts[0][1])))
    archive.handler = make_handler(archive.settings, merge=False)
    ok(archive.deliver(archive.publish(extracts[1][0], at=extracts[1][1])))

    # WHEN a run of Snowflake's task graph commits its transactions up to one and stops there
    database = archive.settings.warehouse_database
    pending, *steps = statements.star_merge(database)
    names = [name for _, group in star.TRANSACTIONS for name in group]
    groups = [group for group, _ in star.TRANSACTIONS]
    last = names.index(dict(star.TRANSACTIONS)[committed][-1])
    with connect(archive.settings) as connection, transaction(connection) as cursor:
        cursor.execute(pending)  # the root task: its own transaction
    for group in groups[: groups.index(committed) + 1]:
        with connect(archive.settings) as connection, transaction(connection) as cursor:
            for name in dict(star.TRANSACTIONS)[group]:
                cursor.execute(steps[names.index(name)])
    assert last < len(names) - 1  # stopped before the end

    # AND the next run starts again from the root
    with connect(archive.settings) as connection:
        merge.merge_star(connection, database)

    # THEN the warehouse is the one whose merge never stopped
    for table, order in (
        ("ANALYTICS.DIM_MOVIE", "MOVIE_KEY, VALID_FROM"),
        ("ANALYTICS.BRIDGE_MOVIE_GENRE", "MOVIE_KEY, MOVIE_SK, GENRE_KEY"),
    ):
        columns = "MOVIE_KEY, VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED, MPAA, LENGTH, TITLE"
        if table.endswith("GENRE"):
            columns = "MOVIE_KEY, GENRE_KEY"
        assert archive.sql(f"SELECT {columns} FROM {{db}}.{table} ORDER BY {order}") == second_archive.sql(
            f"SELECT {columns} FROM {{db}}.{table} ORDER BY {order}"
        ), table
    facts = "SELECT COUNT(*) AS N, COUNT(DISTINCT MOVIE_SK) AS S FROM {db}.ANALYTICS.FACT_MOVIE_RATING"
    assert archive.sql(facts) == second_archive.sql(facts)
    merges = "SELECT ROWS_MERGED, VERSIONS_OPENED, MOVIES_CLOSED FROM {db}.AUDIT.MERGES ORDER BY EXTRACTED_AT"
    assert archive.sql(merges) == second_archive.sql(merges)
    assert archive.sql("SELECT COUNT(*) AS N FROM {db}.AUDIT.MERGE_PENDING") == [{"N": 0}]
    archive.current_facts_are_the_latest()


def test_a_warehouse_from_before_the_current_facts_gets_them_at_the_loaders_start(archive, imdb_clean):
    # GIVEN a warehouse with two merged extracts whose current facts are missing (as one merged by a
    # loader that did not keep them leaves it)
    for rows, at, kind in history_of_extracts(imdb_clean[:300])[:2]:
        ok(archive.deliver(archive.publish(rows, at=at, kind=kind)))
    archive.sql("DELETE FROM {db}.ANALYTICS.FACT_MOVIE_CURRENT")

    # WHEN the loader starts again (its bootstrap runs)
    bootstrap(archive.settings)

    # THEN every movie's latest fact is its current fact, and a second start changes nothing
    archive.current_facts_are_the_latest()
    before = archive.sql("SELECT COUNT(*) AS N FROM {db}.ANALYTICS.FACT_MOVIE_CURRENT")
    bootstrap(archive.settings)
    assert archive.sql("SELECT COUNT(*) AS N FROM {db}.ANALYTICS.FACT_MOVIE_CURRENT") == before

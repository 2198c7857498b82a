"""The loader against a real moto server and the warehouse stand-in process: Snowpipe's job, end to end."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import snowflake.connector

from deploy.resources import alerts_inbox
from services.loader import handler as loader_handler
from services.loader import load, statements
from services.loader.bootstrap import bootstrap
from services.loader.bundle import read_bundle
from services.loader.exceptions import LoadConflict
from services.loader.handler import make_handler
from shared.aws import client
from shared.events import ObjectCreated, s3_notification
from shared.keys import movie_key
from shared.manifest import MANIFEST_NAME, describe_file, new_manifest
from shared.progress import ExtractProgress
from shared.quarantine import REASON_KEYS
from shared.schema import CLEAN_MOVIE_FIELDS, ENRICHED_FIELDS, REJECT_FIELDS, arrow_schema
from shared.settings import Settings
from shared.warehouse import connect, connection_parameters, query
from tests.conftest import free_port
from tests.factories import the_email_of
from tests.integration.conftest import warehouse_process

pytestmark = pytest.mark.integration

SOURCE = "imdb"


@dataclass(frozen=True)
class Bundle:
    """An archived bundle as the transformer leaves it."""

    extract_id: str
    manifest_key: str
    movies: int
    rejects: int
    duplicates: int

    def created(self, settings: Settings) -> ObjectCreated:
        return ObjectCreated(settings.bucket("archive"), self.manifest_key)


def movie_rows(extract_id: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + n):
        title = f'Movie {i}, "the sequel"' if i % 3 == 0 else f"Movie {i}"
        rows.append(
            {
                "movie_key": movie_key(title, 1990 + i % 30),
                "title": title,
                "year": 1990 + i % 30,
                "length": 90 + i % 60,
                "budget": None if i % 2 else 1_000_000 + i,
                "rating": 5.5,
                "votes": 100 + i,
                **{f"r{n}": (None if i % 4 == 0 else 4.5) for n in range(1, 11)},
                "mpaa": None if i % 5 else "PG-13",
                "action": i % 2 == 0,
                "animation": False,
                "comedy": True,
                "drama": False,
                "documentary": False,
                "romance": False,
                "short": i % 7 == 0,
                "genres": "action|comedy" if i % 2 == 0 else "comedy",
                "primary_genre": "action" if i % 2 == 0 else "comedy",
                "decade": 1990 + i % 30 // 10 * 10,
                "runtime_band": "91-120 min" if 90 + i % 60 > 90 else "41-90 min",
                "weighted_rating": 5.5,
                "extract_id": extract_id,
            }
        )
    return rows


def reject_rows(extract_id: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "extract_id": extract_id,
            "reason": "OUT_OF_RANGE",
            "field": "year",
            "detail": f"year {1700 + i} is before 1888",
            "record": json.dumps({"title": f'Old, "very" {i}', "year": str(1700 + i)}),
        }
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[dict[str, Any]], fields) -> None:
    """The archive's CSV: header, comma, "" quoting, empty = NULL, true/false; columns in schema order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.Table.from_pylist(rows, schema=arrow_schema(fields)), path)


@pytest.fixture
def archive_bundle(warehouse_settings: Settings, tmp_path: Path) -> Callable[..., Bundle]:
    """Put a bundle in the archive bucket, manifest last; tamper with it, or with its counts, on request."""
    s3 = client("s3", warehouse_settings)

    def put(
        movies: int = 5,
        rejects: int = 2,
        duplicates: int = 1,
        *,
        extra_extracted: int = 0,
        tamper: Callable[[dict[str, Any]], None] | None = None,
        movie_parts: int = 1,
        bad_year: str | None = None,
        movie_fields: tuple = CLEAN_MOVIE_FIELDS,
    ) -> Bundle:
        extract_id = f"20261126T041700Z-{uuid.uuid4().hex[:8]}"
        folder = tmp_path / extract_id
        resources = []
        per_part = -(-movies // movie_parts)
        for part in range(movie_parts):
            rows = movie_rows(extract_id, min(per_part, movies - part * per_part), start=part * per_part)
            path = folder / "movies" / f"part-{part:05d}.csv"
            write_csv(path, rows, movie_fields)
            if bad_year and part == 0:
                # A value the transformer should never let through, in a file the manifest vouches for.
                path.write_text(path.read_text().replace(",1990,", f",{bad_year},", 1))
            resources.append((path, f"movies-{part}", len(rows), movie_fields, "movies"))
        path = folder / "rejects" / "part-00000.csv"
        write_csv(path, reject_rows(extract_id, rejects), REJECT_FIELDS)
        resources.append((path, "rejects-0", rejects, REJECT_FIELDS, "rejects"))
        described = []
        for path, name, rows, fields, role in resources:
            resource = describe_file(path, name=name, rows=rows, fields=fields, relative_to=folder)
            described.append(type(resource)(**resource.model_dump(by_alias=True), role=role))
            s3.upload_file(
                str(path), warehouse_settings.bucket("archive"), f"{SOURCE}/{extract_id}/{resource.path}"
            )
        manifest = new_manifest(
            extract_id=extract_id,
            source=SOURCE,
            stage="transform",
            row_counts={
                "extracted": movies + rejects + duplicates + extra_extracted,
                "clean": movies,
                "rejected": rejects,
                "duplicates": duplicates,
            },
            resources=described,
        )
        document = json.loads(manifest.to_json())
        if tamper:
            tamper(document)
        key = f"{SOURCE}/{extract_id}/{MANIFEST_NAME}"
        s3.put_object(
            Bucket=warehouse_settings.bucket("archive"), Key=key, Body=json.dumps(document).encode()
        )
        return Bundle(extract_id, key, movies, rejects, duplicates)

    return put


def sqs_event(settings: Settings, *keys: str) -> dict[str, Any]:
    """An SQS event as Lambda delivers it, one message per S3 notification."""
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": json.dumps(s3_notification(settings.bucket("archive"), key)),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{settings.queue('loader')}",
                "awsRegion": "us-east-1",
            }
            for i, key in enumerate(keys)
        ]
    }


def count(settings: Settings, table: str, extract_id: str) -> int:
    sql = f"SELECT COUNT(*) FROM {settings.warehouse_database}.{table} WHERE EXTRACT_ID = %(e)s"
    return query(settings, sql, {"e": extract_id})[1][0][0]


def reconciliation(settings: Settings, extract_id: str) -> list[dict[str, Any]]:
    columns, rows = query(
        settings,
        f"SELECT * FROM {settings.warehouse_database}.AUDIT.BATCHES WHERE EXTRACT_ID = %(e)s",
        {"e": extract_id},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def load_history(settings: Settings, extract_id: str) -> list[dict[str, Any]]:
    columns, rows = query(
        settings,
        f"SELECT * FROM {settings.warehouse_database}.AUDIT.LOAD_HISTORY WHERE EXTRACT_ID = %(e)s "
        "ORDER BY FILE_NAME",
        {"e": extract_id},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def loader_progress(settings: Settings, extract_id: str) -> dict[str, Any]:
    return (ExtractProgress(settings).get(extract_id) or {}).get("stages", {}).get("loader", {})


def alerts(settings: Settings) -> list[dict[str, Any]]:
    sqs = client("sqs", settings)
    url = sqs.get_queue_url(QueueName=alerts_inbox(settings))["QueueUrl"]
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    ):
        found += [json.loads(m["Body"]) for m in messages]
    return found


def test_a_bundle_loads_into_raw_and_audit_and_reconciles(warehouse_settings, archive_bundle):
    # GIVEN an archived bundle: 5 clean movies (in two files), 2 rejects, 1 duplicate removed
    settings = warehouse_settings
    bundle = archive_bundle(movies=5, rejects=2, duplicates=1, movie_parts=2)
    handler = make_handler(settings)

    # WHEN its manifest's S3 event arrives through SQS
    result = handler(sqs_event(settings, bundle.manifest_key), None)

    # THEN no message failed, the movies are in RAW and the rejects in AUDIT, each stamped with its file
    assert result == {"batchItemFailures": []}
    db = settings.warehouse_database
    columns, rows = query(
        settings,
        f"SELECT TITLE, YEAR, BUDGET, R1, MPAA, ACTION, FILE_NAME, LOADED_AT FROM {db}.RAW.MOVIES "
        "WHERE EXTRACT_ID = %(e)s ORDER BY VOTES",
        {"e": bundle.extract_id},
    )
    assert len(rows) == 5
    first = dict(zip(columns, rows[0], strict=True))
    assert (
        first["TITLE"] == 'Movie 0, "the sequel"' and first["YEAR"] == 1990 and first["BUDGET"] == 1_000_000
    )
    assert first["R1"] is None and first["MPAA"] == "PG-13" and first["ACTION"] is True
    archive = f"s3://{settings.bucket('archive')}/{SOURCE}/{bundle.extract_id}"
    assert {row[6] for row in rows} == {
        f"{archive}/movies/part-00000.csv",
        f"{archive}/movies/part-00001.csv",
    }
    assert all(row[7].year > 2000 for row in rows)
    _, rejects = query(
        settings,
        f"SELECT REASON, FIELD, RECORD, FILE_NAME FROM {db}.AUDIT.REJECTS WHERE EXTRACT_ID = %(e)s",
        {"e": bundle.extract_id},
    )
    assert len(rejects) == 2
    assert json.loads(rejects[0][2])["title"].startswith('Old, "very"')
    assert rejects[0][3] == f"{archive}/rejects/part-00000.csv"

    # AND the load history has one row per file, and the extract reconciles
    history = load_history(settings, bundle.extract_id)
    assert [(h["TABLE_NAME"], h["STATUS"], h["ROWS_LOADED"]) for h in history] == [
        ("RAW.MOVIES", "LOADED", 3),
        ("RAW.MOVIES", "LOADED", 2),
        ("AUDIT.REJECTS", "LOADED", 2),
    ]
    (row,) = reconciliation(settings, bundle.extract_id)
    assert (row["ROWS_EXTRACTED"], row["ROWS_LOADED"], row["ROWS_REJECTED"], row["ROWS_DUPLICATE"]) == (
        8,
        5,
        2,
        1,
    )
    assert row["STATUS"] == "RECONCILED" and row["SOURCE"] == SOURCE
    progress = loader_progress(settings, bundle.extract_id)
    assert progress["status"] == "succeeded"
    assert progress["counts"] == {
        "extracted": 8,
        "loaded": 5,
        "rejected": 2,
        "duplicates": 1,
        "merged": 5,
        "versions_opened": 5,
        "changed_in_place": 0,
        "movies_closed": 0,
    }


def test_the_enrichment_is_carried_to_raw_and_an_archive_from_before_it_loads_with_nulls(
    warehouse_settings, archive_bundle
):
    # GIVEN an archive with the enriched columns, and one written before they existed
    settings = warehouse_settings
    enriched = archive_bundle(movies=3, rejects=0, duplicates=0)
    older = archive_bundle(
        movies=3,
        rejects=0,
        duplicates=0,
        movie_fields=tuple(f for f in CLEAN_MOVIE_FIELDS if f not in ENRICHED_FIELDS),
    )
    handler = make_handler(settings)

    # WHEN both load
    result = handler(sqs_event(settings, enriched.manifest_key, older.manifest_key), None)

    # THEN both reconcile; RAW has the enrichment of the first, nulls for the second
    assert result == {"batchItemFailures": []}
    db = settings.warehouse_database
    _, rows = query(
        settings,
        "SELECT EXTRACT_ID, TITLE, GENRES, PRIMARY_GENRE, DECADE, RUNTIME_BAND, BUDGET_BAND, "
        f"WEIGHTED_RATING FROM {db}.RAW.MOVIES WHERE EXTRACT_ID IN (%(a)s, %(b)s) ORDER BY EXTRACT_ID, VOTES",
        {"a": enriched.extract_id, "b": older.extract_id},
    )
    by_extract: dict[str, list[tuple]] = {}
    for row in rows:
        by_extract.setdefault(row[0], []).append(row[1:])
    assert by_extract[enriched.extract_id] == [
        ('Movie 0, "the sequel"', "action|comedy", "action", 1990, "41-90 min", None, 5.5),
        ("Movie 1", "comedy", "comedy", 1990, "91-120 min", None, 5.5),
        ("Movie 2", "action|comedy", "action", 1990, "91-120 min", None, 5.5),
    ]
    assert [row[0] for row in by_extract[older.extract_id]] == ['Movie 0, "the sequel"', "Movie 1", "Movie 2"]
    assert all(row[1:] == (None,) * 6 for row in by_extract[older.extract_id])
    for bundle in (enriched, older):
        (row,) = reconciliation(settings, bundle.extract_id)
        assert row["STATUS"] == "RECONCILED" and row["ROWS_LOADED"] == 3


def _rename_a_column(document: dict[str, Any]) -> None:
    document["resources"][0]["schema"]["fields"][1]["name"] = "tagline"


def _repeat_a_column(document: dict[str, Any]) -> None:
    document["resources"][0]["schema"]["fields"][1]["name"] = "movie_key"


def _fields_as_names(document: dict[str, Any]) -> None:
    fields = document["resources"][0]["schema"]["fields"]
    document["resources"][0]["schema"]["fields"] = [field["name"] for field in fields]


@pytest.mark.parametrize(
    ("tamper", "complaint"),
    [
        (_rename_a_column, "'TAGLINE', not columns of RAW.MOVIES"),
        (_repeat_a_column, "names of the fields are not unique"),
        (_fields_as_names, "fields are not a list of fields"),
    ],
)
def test_an_archive_whose_columns_the_warehouse_cannot_take_is_quarantined(
    warehouse_settings, archive_bundle, tamper, complaint
):
    # GIVEN an archive whose manifest lists columns RAW.MOVIES cannot take, or lists them wrongly
    settings = warehouse_settings
    bundle = archive_bundle(movies=2, rejects=0, duplicates=0, tamper=tamper)
    # WHEN it arrives
    result = make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)
    # THEN it is quarantined saying what is wrong, nothing loads, and one alert goes out
    assert result == {"batchItemFailures": []}
    key = f"load/{SOURCE}/{bundle.extract_id}/reason.json"
    reason = json.loads(
        client("s3", settings).get_object(Bucket=settings.bucket("quarantine"), Key=key)["Body"].read()
    )
    assert reason["reason"] == "UNREADABLE_MANIFEST"
    assert complaint in reason["message"]
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 0
    assert reconciliation(settings, bundle.extract_id) == []
    raised = [a for a in alerts(settings) if a["extract_id"] == bundle.extract_id]
    assert [(a["stage"], a["event"]) for a in raised] == [("loader", "quarantined")]


def test_a_replayed_or_duplicated_event_loads_nothing_twice(warehouse_settings, archive_bundle):
    # GIVEN a bundle already loaded
    settings = warehouse_settings
    bundle = archive_bundle(movies=4, rejects=1, duplicates=0)
    handler = make_handler(settings)
    handler(sqs_event(settings, bundle.manifest_key), None)
    (before,) = reconciliation(settings, bundle.extract_id)

    # WHEN its event arrives again, twice in one batch (S3 sends a multipart upload's event twice)
    result = handler(sqs_event(settings, bundle.manifest_key, bundle.manifest_key), None)

    # THEN nothing failed, no row was added, and the reconciliation is untouched
    assert result == {"batchItemFailures": []}
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 4
    assert count(settings, "AUDIT.REJECTS", bundle.extract_id) == 1
    assert len(load_history(settings, bundle.extract_id)) == 2
    assert reconciliation(settings, bundle.extract_id) == [before]
    assert before["STATUS"] == "RECONCILED"
    assert loader_progress(settings, bundle.extract_id)["files_skipped"] == 2


def test_a_replay_that_finds_other_counts_updates_the_extracts_batch_row(warehouse_settings, archive_bundle):
    # GIVEN a bundle loaded and reconciled, and then one of its rows deleted from RAW by hand
    settings = warehouse_settings
    bundle = archive_bundle(movies=4, rejects=1, duplicates=0)
    handler = make_handler(settings)
    handler(sqs_event(settings, bundle.manifest_key), None)
    (before,) = reconciliation(settings, bundle.extract_id)
    database = settings.warehouse_database
    (deleted,) = query(
        settings,
        f"SELECT MOVIE_KEY FROM {database}.RAW.MOVIES WHERE EXTRACT_ID = %(e)s LIMIT 1",
        {"e": bundle.extract_id},
    )[1][0]
    query(settings, f"DELETE FROM {database}.RAW.MOVIES WHERE MOVIE_KEY = %(k)s", {"k": deleted})

    # WHEN its event is replayed
    handler(sqs_event(settings, bundle.manifest_key), None)

    # THEN the extract still has one batch row, now with the counts found and a new reconciliation time
    (after,) = reconciliation(settings, bundle.extract_id)
    assert before["STATUS"] == "RECONCILED" and before["ROWS_LOADED"] == 4
    assert after["STATUS"] == "FAILED" and after["ROWS_LOADED"] == 3
    assert after["ROWS_EXTRACTED"] == before["ROWS_EXTRACTED"] == 5
    assert after["RECONCILED_AT"] >= before["RECONCILED_AT"]
    assert {k: v for k, v in after.items() if k not in ("STATUS", "ROWS_LOADED", "RECONCILED_AT")} == {
        k: v for k, v in before.items() if k not in ("STATUS", "ROWS_LOADED", "RECONCILED_AT")
    }


def test_if_the_load_history_is_lost_the_warehouse_still_refuses_a_second_copy(
    warehouse_settings, archive_bundle
):
    # GIVEN a loaded bundle whose rows in AUDIT.LOAD_HISTORY were lost
    settings = warehouse_settings
    bundle = archive_bundle(movies=4, rejects=1, duplicates=0)
    handler = make_handler(settings)
    handler(sqs_event(settings, bundle.manifest_key), None)
    query(
        settings,
        f"DELETE FROM {settings.warehouse_database}.AUDIT.LOAD_HISTORY WHERE EXTRACT_ID = %(e)s",
        {"e": bundle.extract_id},
    )

    # WHEN its event is replayed
    result = handler(sqs_event(settings, bundle.manifest_key), None)

    # THEN the warehouse's own COPY load history skips the files: no row twice, and it still reconciles
    assert result == {"batchItemFailures": []}
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 4
    assert count(settings, "AUDIT.REJECTS", bundle.extract_id) == 1
    assert {h["STATUS"] for h in load_history(settings, bundle.extract_id)} == {"LOAD_SKIPPED"}
    assert reconciliation(settings, bundle.extract_id)[0]["STATUS"] == "RECONCILED"


def test_a_file_that_does_not_match_its_manifest_is_quarantined_and_nothing_loads(
    warehouse_settings, archive_bundle
):
    # GIVEN a bundle whose manifest vouches for a different movies file than the one archived
    settings = warehouse_settings

    def wrong_hash(document: dict[str, Any]) -> None:
        document["resources"][0]["hash"] = "sha256:" + "0" * 64

    bundle = archive_bundle(tamper=wrong_hash)
    handler = make_handler(settings)

    # WHEN its event arrives, and again
    first = handler(sqs_event(settings, bundle.manifest_key), None)
    again = handler(sqs_event(settings, bundle.manifest_key), None)

    # THEN the message is not retried (retrying cannot help) and nothing is in the warehouse
    assert first == again == {"batchItemFailures": []}
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 0
    assert count(settings, "AUDIT.REJECTS", bundle.extract_id) == 0
    assert reconciliation(settings, bundle.extract_id) == []

    # AND the bundle is kept in quarantine with a reason naming the file
    s3 = client("s3", settings)
    prefix = f"load/{SOURCE}/{bundle.extract_id}/"
    listed = s3.list_objects_v2(Bucket=settings.bucket("quarantine"), Prefix=prefix).get("Contents", [])
    assert {item["Key"].removeprefix(prefix) for item in listed} == {
        "manifest.json",
        "movies/part-00000.csv",
        "rejects/part-00000.csv",
        "reason.json",
    }
    reason = json.loads(
        s3.get_object(Bucket=settings.bucket("quarantine"), Key=f"{prefix}reason.json")["Body"].read()
    )
    assert reason["reason"] == "FILE_MISMATCH" and reason["extract_id"] == bundle.extract_id
    assert "movies/part-00000.csv" in reason["message"] and "hash" in reason["message"]
    assert (reason["stage"], reason["source"], reason["origin"]) == (
        "loader",
        SOURCE,
        f"s3://{settings.bucket('archive')}/{bundle.manifest_key}",
    )
    assert sorted(reason["files"]) == ["manifest.json", "movies/part-00000.csv", "rejects/part-00000.csv"]
    assert list(reason)[: len(REASON_KEYS)] == list(REASON_KEYS)

    # AND the extract shows as quarantined, with one alert for both deliveries
    progress = loader_progress(settings, bundle.extract_id)
    assert progress["status"] == "quarantined" and progress["error"]["code"] == "FILE_MISMATCH"
    raised = [a for a in alerts(settings) if a["extract_id"] == bundle.extract_id]
    assert [(a["stage"], a["event"]) for a in raised] == [("loader", "quarantined")]
    the_email_of(settings, raised[0])
    assert raised[0]["evidence"] == f"s3://{settings.bucket('quarantine')}/{prefix}"


def test_an_unreadable_manifest_is_quarantined(warehouse_settings, archive_bundle):
    # GIVEN a manifest that is not a transform manifest
    settings = warehouse_settings

    def from_another_stage(document: dict[str, Any]) -> None:
        document["stage"] = "unzip"

    bundle = archive_bundle(tamper=from_another_stage)

    # WHEN its event arrives
    result = make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)

    # THEN it is quarantined saying why
    assert result == {"batchItemFailures": []}
    progress = loader_progress(settings, bundle.extract_id)
    assert progress["status"] == "quarantined"
    assert progress["error"]["code"] == "UNREADABLE_MANIFEST" and "'unzip'" in progress["error"]["message"]


def test_rows_the_warehouse_refuses_are_quarantined_and_none_of_the_bundle_loads(
    warehouse_settings, archive_bundle
):
    # GIVEN a bundle, hashes and all, whose first movies file has a year that is not a number
    settings = warehouse_settings
    bundle = archive_bundle(movies=4, rejects=1, movie_parts=2, bad_year='"nineteen-ninety"')

    # WHEN its event arrives
    result = make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)

    # THEN the bundle is quarantined, naming the file, and not one of its rows is in the warehouse
    assert result == {"batchItemFailures": []}
    progress = loader_progress(settings, bundle.extract_id)
    assert progress["status"] == "quarantined" and progress["error"]["code"] == "ROWS_NOT_LOADABLE"
    assert "movies/part-00000.csv" in progress["error"]["message"]
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 0
    assert count(settings, "AUDIT.REJECTS", bundle.extract_id) == 0
    assert load_history(settings, bundle.extract_id) == []


def test_counts_that_do_not_add_up_fail_the_reconciliation_and_alert(warehouse_settings, archive_bundle):
    # GIVEN a bundle whose manifest says 3 more rows were extracted than loaded, rejected or removed
    settings = warehouse_settings
    bundle = archive_bundle(movies=5, rejects=1, duplicates=0, extra_extracted=3)

    # WHEN it is loaded
    result = make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)

    # THEN the rows are loaded, but the reconciliation FAILED, the extract failed, and an alert says why
    assert result == {"batchItemFailures": []}
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 5
    (row,) = reconciliation(settings, bundle.extract_id)
    assert row["STATUS"] == "FAILED" and row["ROWS_EXTRACTED"] == 9
    progress = loader_progress(settings, bundle.extract_id)
    assert progress["status"] == "failed" and progress["error"]["code"] == "NOT_RECONCILED"
    (alert,) = [a for a in alerts(settings) if a["extract_id"] == bundle.extract_id]
    assert alert["event"] == "extract_not_reconciled"
    assert "extracted 9 != loaded 5 + rejected 1 + duplicates 0" in alert["message"]
    the_email_of(settings, alert)
    # AND a replayed event (the same failure) does not alert again
    make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)
    assert [a for a in alerts(settings) if a["extract_id"] == bundle.extract_id] == []
    the_email_of(settings, alert)


def test_a_down_warehouse_fails_the_message_for_retry_and_loses_nothing(warehouse_settings, archive_bundle):
    # GIVEN a bundle, and a warehouse that does not answer
    settings = warehouse_settings
    bundle = archive_bundle(movies=3, rejects=0, duplicates=0)
    down = settings.model_copy(update={"warehouse_port": free_port()})

    # WHEN its event arrives
    result = make_handler(down)(sqs_event(down, bundle.manifest_key), None)

    # THEN the message is reported failed (SQS retries it, then dead-letters it), nothing is quarantined
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    quarantined = client("s3", settings).list_objects_v2(Bucket=settings.bucket("quarantine"))
    assert quarantined.get("KeyCount", 0) == 0

    # AND once the warehouse answers, the retried message loads the bundle
    retried = make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)
    assert retried == {"batchItemFailures": []}
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 3
    assert reconciliation(settings, bundle.extract_id)[0]["STATUS"] == "RECONCILED"


def test_a_loader_keeps_its_connection_and_a_warehouse_restart_costs_it_no_message(
    warehouse_settings, archive_bundle, moto_endpoint, tmp_path
):
    # GIVEN a loader on a warehouse of its own, and three bundles
    data_dir, port = tmp_path / "warehouse", free_port()
    settings = warehouse_settings.model_copy(update={"warehouse_port": port})
    first, second, third = (archive_bundle(movies=3, rejects=1, duplicates=0) for _ in range(3))
    loader = loader_handler.Loader(settings, loader_handler.METRICS)
    with warehouse_process(data_dir, moto_endpoint, port):
        # WHEN it loads two of them
        loader.process(first.created(settings))
        with loader.connections.connection() as kept:
            pass
        loader.process(second.created(settings))
        # THEN the second load ran on the first one's connection, not a new login
        with loader.connections.connection() as again:
            assert again is kept

    # WHEN the warehouse restarts, its session gone with it, and the third bundle's event arrives
    with warehouse_process(data_dir, moto_endpoint, port):
        loader.process(third.created(settings))

        # THEN the loader loads it on a new connection rather than failing the message; once, as ever
        for bundle in (first, second, third):
            assert count(settings, "RAW.MOVIES", bundle.extract_id) == 3
            assert reconciliation(settings, bundle.extract_id)[0]["STATUS"] == "RECONCILED"
    loader.connections.close()


def test_a_crash_between_load_and_reconciliation_is_finished_by_the_retry(
    warehouse_settings, archive_bundle, monkeypatch
):
    # GIVEN a loader that dies after the load committed, before reconciling
    settings = warehouse_settings
    bundle = archive_bundle(movies=4, rejects=1, duplicates=1)
    reconcile = loader_handler.reconcile

    def crash(*args: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(loader_handler, "reconcile", crash)
    crashed = make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)
    assert crashed == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    monkeypatch.setattr(loader_handler, "reconcile", reconcile)

    # WHEN the message is retried
    retried = make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)

    # THEN the rows are there once, and the extract reconciles
    assert retried == {"batchItemFailures": []}
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 4
    assert reconciliation(settings, bundle.extract_id)[0]["STATUS"] == "RECONCILED"
    assert loader_progress(settings, bundle.extract_id)["status"] == "succeeded"


def test_a_load_abandoned_mid_transaction_leaves_nothing_and_the_retry_loads_once(
    warehouse_settings, archive_bundle
):
    # GIVEN a loader killed mid-load: its transaction copied the movies file and never committed, and its
    # session is still open in the warehouse
    settings = warehouse_settings
    bundle = archive_bundle(movies=6, rejects=1, duplicates=0)
    bootstrap(settings)
    verified = read_bundle(settings, bundle.created(settings))
    abandoned = snowflake.connector.connect(**connection_parameters(settings))
    cursor = abandoned.cursor()
    cursor.execute("BEGIN")
    load._copy_file(cursor, settings.warehouse_database, verified, verified.files[0])
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 0

    # WHEN the message is retried by another loader meanwhile
    result = make_handler(settings)(sqs_event(settings, bundle.manifest_key), None)

    # THEN every row is there exactly once, and the abandoned transaction could never add its copy
    assert result == {"batchItemFailures": []}
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 6
    assert reconciliation(settings, bundle.extract_id)[0]["STATUS"] == "RECONCILED"
    with pytest.raises(snowflake.connector.errors.ProgrammingError, match="40001"):
        cursor.execute("COMMIT")
    abandoned.close()
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 6


def test_a_loader_killed_mid_merge_holds_the_star_schema_only_until_its_silent_session_is_ended(
    warehouse_settings, archive_bundle, moto_endpoint, tmp_path, caplog
):
    # GIVEN a warehouse that ends a session silent inside a transaction after 3 s, an extract merged, and
    # a loader killed mid-merge: its transaction merged the next extract (the same movies, newer) into the
    # star schema, replacing their current facts, and never committed
    caplog.set_level(logging.INFO, logger=loader_handler.__name__)
    data_dir = tmp_path / "warehouse"
    with warehouse_process(data_dir, moto_endpoint, None, "--idle-transaction-seconds", "3") as port:
        settings = warehouse_settings.model_copy(update={"warehouse_port": port})
        database = settings.warehouse_database
        merged, first, second = (archive_bundle(movies=n) for n in (4, 4, 6))
        assert (
            make_handler(settings)(sqs_event(settings, merged.manifest_key), None)["batchItemFailures"] == []
        )
        with connect(settings) as connection:
            load.load_bundle(connection, database, read_bundle(settings, first.created(settings)))
        killed = snowflake.connector.connect(**connection_parameters(settings))
        try:
            cursor = killed.cursor()
            cursor.execute("BEGIN")
            for statement in statements.star_merge(database):
                cursor.execute(statement)

            # WHEN another loader is handed a third extract of the same movies meanwhile
            result = make_handler(settings)(sqs_event(settings, second.manifest_key), None)

            # THEN its merge conflicts with the open transaction, waits until the warehouse ends that
            # session, and merges both waiting extracts, each fact once
            assert result == {"batchItemFailures": []}
            assert any(record.event == "load_conflict_retried" for record in caplog.records)
            assert "idle_transaction_ended" in (tmp_path / "warehouse-warehouse.log").read_text()
            for bundle in (merged, first, second):
                assert count(settings, "ANALYTICS.FACT_MOVIE_RATING", bundle.extract_id) == bundle.movies
            assert reconciliation(settings, second.extract_id)[0]["STATUS"] == "RECONCILED"
        finally:
            killed.close()


def test_a_concurrent_second_load_of_the_same_files_fails_to_commit(
    warehouse_settings, archive_bundle, monkeypatch
):
    # GIVEN two loaders handed the same bundle at once: the other one commits while this one is copying
    settings = warehouse_settings
    database = settings.warehouse_database
    bundle = archive_bundle(movies=3, rejects=1, duplicates=0)
    bootstrap(settings)
    verified = read_bundle(settings, bundle.created(settings))
    copy_file = load._copy_file

    def copy_while_another_loader_commits(*args: Any) -> load.FileLoad:
        copied = copy_file(*args)
        monkeypatch.setattr(load, "_copy_file", copy_file)
        with connect(settings) as other:
            load.load_bundle(other, database, verified)
        return copied

    monkeypatch.setattr(load, "_copy_file", copy_while_another_loader_commits)

    # WHEN this one goes on to commit
    # THEN it is refused as a conflict (its message is retried, and finds the files loaded)
    with connect(settings) as connection, pytest.raises(LoadConflict):
        load.load_bundle(connection, database, verified)
    assert count(settings, "RAW.MOVIES", bundle.extract_id) == 3
    assert count(settings, "AUDIT.REJECTS", bundle.extract_id) == 1
    assert len(load_history(settings, bundle.extract_id)) == 2

"""The extractor against a real PostgreSQL: full, incremental and full-refresh extracts, unfit values."""

from __future__ import annotations

import csv
import io
import zipfile

import pyarrow.parquet as pq
import pytest

from services.extractor.exceptions import SourceUnreadable
from services.extractor.extract import new_extract_id, run_extract
from services.extractor.settings import extractor_settings
from services.extractor.sources import SqlSource, SqlSourceConfig
from services.extractor.state import SourceState
from shared.alerts import recent_alerts
from shared.aws import client
from shared.manifest import Manifest
from shared.progress import ExtractProgress
from tests.conftest import IMDB_UPDATED_FROM, POSTGRES_URL

pytestmark = pytest.mark.integration

IMDB_MOVIES = 58_788


def postgres_source(schema: str, **declared) -> SqlSource:
    declared.setdefault("table", f"{schema}.movies")
    return SqlSource(SqlSourceConfig(name="films", kind="postgres", url=POSTGRES_URL, **declared))


def landed_bundle(settings, extract_id: str, source: str = "films") -> tuple[Manifest, list[dict], object]:
    """The manifest, the CSV's records and the Parquet table of a landed bundle."""
    body = client("s3", settings).get_object(
        Bucket=settings.bucket("landing"), Key=f"{source}/{extract_id}.zip"
    )
    with zipfile.ZipFile(io.BytesIO(body["Body"].read())) as archive:
        manifest = Manifest.from_json(archive.read("manifest.json"))
        records = list(csv.DictReader(io.StringIO(archive.read("movies.csv").decode("utf-8"), newline="")))
        parquet = pq.read_table(io.BytesIO(archive.read("movies.parquet")))
    return manifest, records, parquet


def extract(settings, source, **options):
    extract_id = new_extract_id()
    progress = ExtractProgress(settings)
    progress.begin(extract_id, source.name)
    return run_extract(extractor_settings(settings), source, extract_id, progress=progress, **options)


def test_a_postgres_table_is_extracted_whole(provisioned, imdb_postgres):
    # GIVEN the IMDb movies in a PostgreSQL table of the test's own
    source = postgres_source(imdb_postgres)
    # WHEN it is extracted
    result = extract(provisioned, source)
    # THEN every row is in the bundle, the same in the CSV and the Parquet file, and it is a full extract
    manifest, records, parquet = landed_bundle(provisioned, result.extract_id)
    assert result.rows == manifest.row_counts["extracted"] == len(records) == parquet.num_rows == IMDB_MOVIES
    assert manifest.extract_kind == "full"
    titanic = next(record for record in records if record["title"] == "Titanic" and record["year"] == "1997")
    assert titanic["budget"] == "200000000" and titanic["mpaa"] == "PG-13" and titanic["romance"] == "true"
    # AND the table's own columns the record does not have are listed, not carried
    assert manifest.model_extra["ignored_fields"] == ["id", "updated_at"]


def test_an_incremental_extract_reads_only_what_changed_since_the_mark(
    provisioned, imdb_postgres, postgres_engine
):
    # GIVEN an incremental source that was extracted once
    source = postgres_source(imdb_postgres, cursor="updated_at")
    first = extract(provisioned, source)
    assert first.rows == IMDB_MOVIES and first.extract_kind == "full"
    mark = SourceState(provisioned).get("films")["high_water_mark"]
    assert mark == "2026-01-01 16:19:48.000000Z"  # the last row: id 58,788 seconds after IMDB_UPDATED_FROM
    # WHEN 10 rows are inserted and 5 updated at the source, and it is extracted again
    with postgres_engine.begin() as connection:
        connection.exec_driver_sql(
            f"INSERT INTO {imdb_postgres}.movies (id, title, year, length, rating, votes, updated_at) "
            "SELECT 100000 + n, 'New movie ' || n, 2026, 90, 7.5, 10, now() FROM generate_series(1, 10) n"
        )
        connection.exec_driver_sql(
            f"UPDATE {imdb_postgres}.movies SET mpaa = 'R', updated_at = now() WHERE id IN (1, 2, 3, 4, 5)"
        )
    second = extract(provisioned, source)
    # THEN exactly the 15 changed rows are extracted, plus the row tied at the mark (ties are re-read)
    manifest, records, _ = landed_bundle(provisioned, second.extract_id)
    titles = sorted(record["title"] for record in records)
    updated = ["$", "$1000 a Touchdown", "$21 a Day Once a Month", "$40,000", "$50,000 Climax Show, The"]
    inserted = [f"New movie {n}" for n in range(1, 11)]
    at_the_mark = "xXx: State of the Union"  # the row of id 58,788, whose updated_at is the mark
    assert titles == sorted([*updated, *inserted, at_the_mark])
    assert manifest.extract_kind == "incremental"
    assert manifest.model_extra["cursor"]["since"] == mark
    assert {
        record["title"]: record["mpaa"] for record in records if record["title"] in updated
    } == dict.fromkeys(updated, "R")
    # AND the mark moved to the newest change
    assert SourceState(provisioned).get("films")["high_water_mark"] > mark


def test_a_full_refresh_ignores_the_mark(provisioned, imdb_postgres):
    # GIVEN an incremental source extracted once
    source = postgres_source(imdb_postgres, cursor="updated_at")
    extract(provisioned, source)
    # WHEN it is extracted with full_refresh
    result = extract(provisioned, source, full_refresh=True)
    # THEN everything is read again, as a full extract
    manifest, _, _ = landed_bundle(provisioned, result.extract_id)
    assert result.rows == IMDB_MOVIES and manifest.extract_kind == "full"


def test_an_incremental_extract_with_nothing_new_succeeds_and_lands_nothing(provisioned, imdb_postgres):
    # GIVEN an incremental source with a mark beyond every row
    source = postgres_source(imdb_postgres, cursor="updated_at")
    state = SourceState(provisioned)
    state.advance("films", new_extract_id(), "2100-01-01 00:00:00+00")
    # WHEN it is extracted
    result = extract(provisioned, source)
    # THEN it succeeds with zero rows, nothing is uploaded, and the mark stays where it was
    assert result.rows == 0 and result.landing is None
    assert (
        client("s3", provisioned).list_objects_v2(Bucket=provisioned.bucket("landing")).get("KeyCount") == 0
    )
    record = ExtractProgress(provisioned).get(result.extract_id)
    assert record["status"] == "empty"
    assert record["stages"]["extractor"]["counts"] == {"extracted": 0}
    assert state.get("films")["high_water_mark"] == "2100-01-01 00:00:00+00"


def test_a_column_the_source_loses_is_named_in_the_record_and_alerted_once(
    provisioned, imdb_postgres, postgres_engine
):
    # GIVEN a source extracted once with every field of the movie record
    source = postgres_source(imdb_postgres)
    first = extract(provisioned, source)
    progress = ExtractProgress(provisioned)
    assert "missing_fields" not in progress.get(first.extract_id)["stages"]["extractor"]
    # WHEN its table loses the budget column, and it is extracted twice more
    with postgres_engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {imdb_postgres}.movies DROP COLUMN budget")
    second = extract(provisioned, source)
    third = extract(provisioned, source)
    # THEN each extract's record names the field that loads as null
    for result in (second, third):
        assert progress.get(result.extract_id)["stages"]["extractor"]["missing_fields"] == ["budget"]
    # AND the drift raised exactly one alert, on the extract that first lacked it, naming the field
    drift = [alert for alert in recent_alerts(provisioned) if alert["code"] == "SCHEMA_DRIFT"]
    assert [alert["extract_id"] for alert in drift] == [second.extract_id]
    assert "budget" in drift[0]["message"] and drift[0]["source"] == "films"


def test_a_crash_before_landing_leaves_the_mark_so_the_rows_are_extracted_again(
    provisioned, imdb_postgres, monkeypatch
):
    # GIVEN an incremental source whose first extract dies while uploading its bundle
    source = postgres_source(imdb_postgres, cursor="updated_at")
    s3 = client("s3", provisioned)

    def upload_dies(*args, **kwargs):
        raise ConnectionError("the extractor died mid-upload")

    monkeypatch.setattr(s3, "upload_file", upload_dies)
    with pytest.raises(ConnectionError):
        extract(provisioned, source)
    monkeypatch.undo()
    # THEN no mark was kept, and the next extract reads every row
    assert SourceState(provisioned).get("films")["high_water_mark"] is None
    assert extract(provisioned, source).rows == IMDB_MOVIES


def test_text_in_a_number_column_goes_through_as_text_and_every_other_row_too(
    provisioned, imdb_postgres, postgres_engine
):
    # GIVEN a query source whose budget arrives as text, one row holding words
    with postgres_engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {imdb_postgres}.movies ALTER COLUMN budget TYPE text")
        connection.exec_driver_sql(
            f"UPDATE {imdb_postgres}.movies SET budget = 'about a million' WHERE id = 7"
        )
    source = postgres_source(
        imdb_postgres,
        table=None,
        query=f"SELECT title AS film, year, length, budget, rating, votes, mpaa FROM {imdb_postgres}.movies",
        columns={"film": "title"},
    )
    # WHEN it is extracted
    result = extract(provisioned, source)
    # THEN the extract succeeds with every row; the words travel as text for the transform to reject,
    # the typed Parquet copy has a null there, and the manifest counts one unfit budget
    manifest, records, parquet = landed_bundle(provisioned, result.extract_id)
    assert result.rows == len(records) == IMDB_MOVIES
    row = next(n for n, record in enumerate(records) if record["budget"] == "about a million")
    assert records[row]["title"] == "$windle"  # the movie of id 7
    assert parquet.column("budget")[row].as_py() is None
    assert manifest.model_extra["unfit_values"] == {"budget": 1}
    # AND fields the query does not give are null, the mapped one is filled
    assert records[0]["title"] and records[0]["r1"] == "" and records[0]["action"] == ""


def test_a_source_that_cannot_be_read_names_the_database_without_its_password(provisioned, imdb_postgres):
    # GIVEN a source pointing at a table that does not exist, with a password in its URL
    url = POSTGRES_URL.replace("postgres@", "postgres:hunter2@")
    source = SqlSource(SqlSourceConfig(name="films", kind="postgres", url=url, table=f"{imdb_postgres}.nope"))
    # WHEN it is extracted THEN the error names the table, and no password
    with pytest.raises(SourceUnreadable) as raised:
        extract(provisioned, source)
    assert "nope" in raised.value.message and "hunter2" not in raised.value.message
    assert not client("s3", provisioned).list_objects_v2(Bucket=provisioned.bucket("landing")).get("Contents")


def test_the_cursor_must_be_a_column_of_the_source(provisioned, imdb_postgres):
    source = postgres_source(imdb_postgres, cursor="modified")
    with pytest.raises(SourceUnreadable, match="cursor column 'modified'"):
        extract(provisioned, source)


def test_the_mark_text_round_trips_through_postgres(imdb_postgres, postgres_engine):
    # The mark is kept as PostgreSQL wrote it (UTC), so comparing it in SQL means what it says.
    with postgres_engine.connect() as connection:
        first = connection.exec_driver_sql(
            f"SELECT count(*) FROM {imdb_postgres}.movies WHERE updated_at >= %(mark)s",
            {"mark": IMDB_UPDATED_FROM},
        ).scalar()
    assert first == IMDB_MOVIES


def test_a_numeric_cursor_is_compared_as_a_number(provisioned, imdb_postgres, postgres_engine):
    # GIVEN an incremental source whose cursor is a PostgreSQL numeric (9.5 < 10.0 < 100 as numbers)
    with postgres_engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {imdb_postgres}.movies ADD COLUMN score numeric")
        connection.exec_driver_sql(f"UPDATE {imdb_postgres}.movies SET score = 9.5")
        connection.exec_driver_sql(f"UPDATE {imdb_postgres}.movies SET score = 10.0 WHERE id = 2")
        connection.exec_driver_sql(f"UPDATE {imdb_postgres}.movies SET score = 100 WHERE id = 3")
    source = postgres_source(imdb_postgres, cursor="score")
    # WHEN it is extracted twice
    first = extract(provisioned, source)
    second = extract(provisioned, source)
    # THEN the mark is the numerically highest value, and the second extract re-reads only that row
    assert first.rows == IMDB_MOVIES and first.high_water_mark == "100"
    assert second.rows == 1 and second.extract_kind == "incremental"


def test_postgres_number_types_arrive_as_the_values_the_source_shows(provisioned, imdb_postgres):
    # GIVEN a query source whose rating is a REAL (single precision), r1 a NUMERIC, budget MONEY, and
    # whose genre flags are small integers, one of them 2
    source = postgres_source(
        imdb_postgres,
        table=None,
        query=(
            "SELECT title, year, rating::real AS rating, (rating + 0.2)::numeric(3, 1) AS r1, "
            "budget::numeric::money AS budget, 2::smallint AS action, 1::smallint AS drama "
            f"FROM {imdb_postgres}.movies WHERE title = 'Titanic' AND year = 1997"
        ),
    )
    # WHEN it is extracted
    result = extract(provisioned, source)
    manifest, records, parquet = landed_bundle(provisioned, result.extract_id)
    # THEN the numbers are those PostgreSQL shows (6.9 and 7.1), not a double's view of their binary
    # form (6.900000095367432, 7.1000000000000005), in the CSV and in the Parquet file
    assert [(record["rating"], record["r1"]) for record in records] == [("6.9", "7.1")]
    assert parquet.column("rating").to_pylist() == [6.9] and parquet.column("r1").to_pylist() == [7.1]
    # AND the money is dollars, not the cents ADBC counts it in
    assert records[0]["budget"] == "200000000" and parquet.column("budget").to_pylist() == [200_000_000]
    # AND a flag of 1 is true, while 2 is no boolean: it goes as text, for the transform to reject
    assert records[0]["drama"] == "true" and records[0]["action"] == "2"
    assert parquet.column("action").to_pylist() == [None]
    assert manifest.model_extra["unfit_values"] == {"action": 1}


def test_a_postgres_array_of_genre_names_sets_the_genre_flags(provisioned, imdb_postgres):
    # GIVEN a query source whose genres are a text[] column (the IMDb flags left out)
    source = postgres_source(
        imdb_postgres,
        table=None,
        query=(
            "SELECT title, year, ARRAY_REMOVE(ARRAY[CASE WHEN romance THEN 'Romance' END, "
            "CASE WHEN drama THEN 'Drama' END, 'Disaster'], NULL) AS genres "
            f"FROM {imdb_postgres}.movies WHERE title = 'Titanic' AND year = 1997"
        ),
    )
    # WHEN it is extracted
    result = extract(provisioned, source)
    manifest, records, parquet = landed_bundle(provisioned, result.extract_id)
    # THEN the flags the array names are true, the others false, and the name the record has no flag
    # for is counted in the manifest
    assert [(record["romance"], record["drama"], record["comedy"]) for record in records] == [
        ("true", "true", "false")
    ]
    assert parquet.column("romance").to_pylist() == [True]
    assert manifest.model_extra["other_genres"] == {"disaster": 1}
    # AND the source's state does not count the flags as fields it lacks
    missing = SourceState(provisioned).get("films")["missing_fields"]
    assert "romance" not in missing and "drama" not in missing and "length" in missing


def test_a_query_with_a_percent_sign_and_a_trailing_comment_is_read(provisioned, imdb_postgres):
    # GIVEN a query using LIKE '...%' and the modulo operator, ending in a comment
    source = postgres_source(
        imdb_postgres,
        table=None,
        query=f"SELECT * FROM {imdb_postgres}.movies WHERE title LIKE 'Star %' AND id % 2 = 0 -- even ones",
    )
    # WHEN it is extracted THEN it reads what the query selects
    result = extract(provisioned, source)
    _, records, _ = landed_bundle(provisioned, result.extract_id)
    assert result.rows == len(records) > 0
    assert all(record["title"].startswith("Star ") for record in records)


def test_a_mapping_from_a_field_the_table_lacks_is_refused_naming_it(provisioned, imdb_postgres):
    source = postgres_source(imdb_postgres, columns={"runtime_minute": "length"})
    with pytest.raises(SourceUnreadable, match=r"maps 'runtime_minute', which the source does not have"):
        extract(provisioned, source)


def test_a_password_in_the_url_query_string_is_not_shown(provisioned, imdb_postgres):
    url = f"{POSTGRES_URL}?password=SuperS3cretPW&connect_timeout=5"
    source = SqlSource(SqlSourceConfig(name="films", kind="postgres", url=url, table=f"{imdb_postgres}.nope"))
    with pytest.raises(SourceUnreadable) as raised:
        extract(provisioned, source)
    assert "SuperS3cretPW" not in raised.value.message and "nope" in raised.value.message

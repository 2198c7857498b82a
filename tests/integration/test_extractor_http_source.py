"""The HTTP source against a real HTTP API (FastAPI under uvicorn, in a thread of the test process)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow as pa
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from services.extractor.exceptions import SourceUnreadable
from services.extractor.records import RecordMapper
from services.extractor.sources.config import HttpSourceConfig
from services.extractor.sources.http import HttpSource
from tests.conftest import free_port

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-token-value"
MOVIES = [
    {
        "id": n,
        "title": f"Movie {n:03d}",
        "year": 1950 + n % 70,
        "length": 80 + n % 60,
        "rating": 1.0 + n % 90 / 10,
        "votes": 100 + n,
        "mpaa": ("G", "PG", "PG-13", "R", None)[n % 5],
        "comedy": n % 2 == 0,
    }
    for n in range(1, 251)
]
TITLES = [movie["title"] for movie in MOVIES]


class Api:
    """The test API: every pagination style, with switches (query parameters) for what can go wrong."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.attempts: Counter[tuple[str, int]] = Counter()
        self.app.middleware("http")(self._log)
        self.app.get("/plain")(self.plain)
        self.app.get("/paged")(self.paged)
        self.app.get("/offset")(self.offset)
        self.app.get("/linked")(self.linked)
        self.app.get("/cursor")(self.cursor)
        self.app.get("/secure")(self.secure)
        self.app.get("/slow")(self.slow)

    async def _log(self, request: Request, call_next: Any) -> Response:
        self.requests.append((request.url.path, dict(request.query_params), dict(request.headers)))
        return await call_next(request)

    def requests_to(self, path: str) -> list[dict[str, str]]:
        return [query for seen, query, _ in self.requests if seen == path]

    @staticmethod
    def movies(query: dict[str, str]) -> list[dict[str, Any]]:
        movies = [dict(movie) for movie in MOVIES]
        if "since" in query:
            movies = [movie for movie in movies if movie["id"] >= int(query["since"])]
        if "mixed" in query:
            movies[2]["year"] = "nineteen-fifty-three"
            movies[3]["year"] = "1954"
            movies[4]["rating"] = 7
            movies[5]["genres"] = ["drama", "short"]
        return movies

    def plain(self, request: Request) -> list[dict[str, Any]]:
        return self.movies(dict(request.query_params))

    def paged(self, request: Request) -> Response:
        query = dict(request.query_params)
        page = int(query.get("page", 1))
        size = int(query.get("size", 100))
        if "fail_page" in query and int(query["fail_page"]) == page:
            self.attempts[(query["key"], page)] += 1
            if self.attempts[(query["key"], page)] <= int(query["fail_times"]):
                headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
                return PlainTextResponse("busy", status_code=int(query["fail_status"]), headers=headers)
        if query.get("broken_page") == str(page):
            return PlainTextResponse('{"data": {"items": [ {"title": "Movie')
        items: Any = self.movies(query)[(page - 1) * size : page * size]
        if query.get("not_a_list_page") == str(page):
            items = {"title": "Movie 001"}
        if query.get("bad_record_page") == str(page):
            items[7] = "Movie 008"
        return JSONResponse({"data": {"items": items}, "page": page})

    def offset(self, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return {"results": self.movies({})[offset : offset + limit]}

    def linked(self, after: int = 0, limit: int = 100) -> dict[str, Any]:
        items = self.movies({})[after : after + limit]
        following = f"/linked?after={after + limit}&limit={limit}" if after + limit < len(MOVIES) else None
        return {"items": items, "links": {"next": following}}

    def cursor(self, cursor: str = "0") -> dict[str, Any]:
        start = int(cursor)
        following = str(start + 100) if start + 100 < len(MOVIES) else None
        return {"items": self.movies({})[start : start + 100], "meta": {"next_cursor": following}}

    def secure(self, request: Request) -> Response:
        headers = request.headers
        if headers.get("authorization") != f"Bearer {TOKEN}" and headers.get("x-api-key") != TOKEN:
            return JSONResponse({"detail": "not authenticated"}, status_code=401)
        return JSONResponse(self.movies({})[:10])

    async def slow(self) -> list[dict[str, Any]]:
        await asyncio.sleep(1)
        return []


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[Api, str]]:
    """The test API on a free port of 127.0.0.1, and its base URL."""
    api = Api()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("the test API did not start within 10s")
        time.sleep(0.02)
    yield api, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def server(api: tuple[Api, str]) -> Api:
    api[0].requests.clear()
    return api[0]


@pytest.fixture
def base_url(api: tuple[Api, str]) -> str:
    return api[1]


def http_source(url: Any, **declared: Any) -> HttpSource:
    config = HttpSourceConfig.model_validate({"name": "films-api", "kind": "http", "url": url, **declared})
    return HttpSource(config, backoff_base=0.01)


def read_all(source: HttpSource, batch_rows: int = 1000, since: str | None = None) -> pa.Table:
    return pa.Table.from_batches(list(source.read_batches(batch_rows, since=since)))


def paged_source(base_url: str, **params: Any) -> HttpSource:
    return http_source(
        f"{base_url}/paged",
        records_path="data.items",
        pagination={"style": "page", "size_param": "size", "limit": 100},
        params={"key": uuid.uuid4().hex, **params},
        max_attempts=3,
    )


# -- pagination ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "declared", "requests"),
    [
        ("/plain", {}, 1),
        ("/paged", {"records_path": "data.items", "pagination": {"style": "page"}}, 4),
        ("/paged", {"records_path": "data.items", "pagination": {"style": "page", "size_param": "size"}}, 3),
        ("/offset", {"records_path": "results", "pagination": {"style": "offset", "limit": 100}}, 3),
        ("/linked", {"records_path": "items", "pagination": {"style": "next", "next_path": "links.next"}}, 3),
        (
            "/cursor",
            {
                "records_path": "items",
                "pagination": {"style": "next", "next_path": "meta.next_cursor", "cursor_param": "cursor"},
            },
            3,
        ),
    ],
    ids=["none", "page-until-empty", "page-until-short", "offset", "next-link", "next-cursor"],
)
def test_every_pagination_style_reads_every_record_once_in_order(
    server: Api, base_url: str, path: str, declared: dict[str, Any], requests: int
):
    # GIVEN an API paging 250 movies in one of the styles the sources file can declare
    source = http_source(f"{base_url}{path}", **declared)
    # WHEN the source is read
    table = read_all(source)
    # THEN every movie arrives once, in order, in as many requests as the paging needs
    assert table.column("title").to_pylist() == TITLES
    assert len(server.requests_to(path)) == requests


def test_max_pages_stops_an_api_that_pages_on_and_on(server: Api, base_url: str):
    # GIVEN an API with three pages of movies, and a source allowed two
    source = http_source(
        f"{base_url}/offset", records_path="results", pagination={"style": "offset", "max_pages": 2}
    )
    # WHEN the source is read
    with pytest.raises(SourceUnreadable) as raised:
        read_all(source)
    # THEN it stops, naming the limit, without asking for the third page
    assert "max_pages = 2" in raised.value.message
    assert len(server.requests_to("/offset")) == 2


@pytest.mark.parametrize(
    ("path", "pagination", "answer", "requests"),
    [
        ("/round-link", {"style": "next"}, lambda cursor: {"next": "/round-link?from=2"}, 2),
        (
            "/round-cursor",
            {"style": "next", "cursor_param": "cursor"},
            lambda cursor: {"next": "b" if cursor == "a" else "a"},
            3,
        ),
    ],
    ids=["next-link", "cursor"],
)
def test_an_api_whose_pages_lead_back_to_one_already_read_is_stopped_there(
    server: Api, base_url: str, path: str, pagination: dict[str, Any], answer, requests: int
):
    from fastapi.responses import JSONResponse as Json

    # GIVEN an API whose next link (or cursor) leads back to a page it already gave
    @server.app.get(path)
    def round_and_round(cursor: str | None = None) -> Json:
        return Json({"items": MOVIES[:5], **answer(cursor)})

    source = http_source(f"{base_url}{path}", records_path="items", pagination=pagination)
    # WHEN it is read THEN it stops at the repeat, naming the page it repeats, rather than reading the
    # same pages again until max_pages (100,000)
    with pytest.raises(SourceUnreadable, match=r"is page \d again: .* leads back to a page already read"):
        read_all(source)
    assert len(server.requests_to(path)) == requests


def test_params_and_the_mark_of_an_incremental_extract_are_sent_on_every_request(server: Api, base_url: str):
    # GIVEN a paged source with a fixed parameter and a since parameter
    source = http_source(
        f"{base_url}/paged",
        records_path="data.items",
        pagination={"style": "page", "size_param": "size", "limit": 50},
        params={"lang": "en"},
        since_param="since",
    )
    # WHEN it is read from the mark 101
    table = read_all(source, since="101")
    # THEN the API got the mark (and the fixed parameter) on every page, and sent only what is above it
    assert table.column("id").to_pylist() == list(range(101, 251))
    sent = server.requests_to("/paged")
    assert len(sent) == 4
    assert all(query["since"] == "101" and query["lang"] == "en" for query in sent)


# -- batches ---------------------------------------------------------------------------------------
def test_batches_split_at_batch_rows_across_pages(base_url: str):
    # GIVEN 250 movies in pages of 100
    source = http_source(f"{base_url}/offset", records_path="results", pagination={"style": "offset"})
    # WHEN they are read 64 rows at a time
    batches = list(source.read_batches(64))
    # THEN the batches hold 64 rows each, the rest in the last, in order
    assert [batch.num_rows for batch in batches] == [64, 64, 64, 58]
    assert pa.Table.from_batches(batches).column("title").to_pylist() == TITLES


def test_columns_are_typed_where_the_values_agree_and_text_where_they_do_not(base_url: str):
    # GIVEN movies where one year is text, one rating a whole number and one movie has a list of genres
    source = http_source(f"{base_url}/plain", params={"mixed": "1"})
    # WHEN they are read
    (batch,) = source.read_batches(1000)
    # THEN agreeing columns are typed, int+float is float, and the rest is text, nothing lost
    schema = batch.schema
    assert schema.field("title").type == pa.string()
    assert schema.field("length").type == pa.int64()
    assert schema.field("rating").type == pa.float64()
    assert schema.field("comedy").type == pa.bool_()
    assert schema.field("year").type == pa.string()
    assert batch.column("year").to_pylist()[:5] == ["1951", "1952", "nineteen-fifty-three", "1954", "1955"]
    assert batch.column("rating").to_pylist()[4] == 7.0
    genres = batch.column("genres").to_pylist()
    assert genres[5] == '["drama", "short"]'
    assert genres.count(None) == len(MOVIES) - 1
    assert batch.column("mpaa").to_pylist()[3] is None


def test_batches_feed_the_record_mapper_into_the_movie_record(base_url: str):
    # GIVEN the HTTP source of movies with one year written as words
    source = http_source(f"{base_url}/plain", params={"mixed": "1"})
    mapper = RecordMapper(source=source.name, config=source.config)
    # WHEN its batches are conformed to the movie record
    typed = pa.Table.from_batches([mapper.conform(batch).typed for batch in source.read_batches(100)])
    # THEN the titles and years arrive typed, the year in words is null and counted as unfit
    assert typed.column("title").to_pylist() == TITLES
    years = typed.column("year").to_pylist()
    assert years[:5] == [1951, 1952, None, 1954, 1955]
    assert typed.schema.field("year").type == pa.int64()
    assert mapper.unfit_values["year"] == 1
    assert "id" in mapper.ignored_fields


# -- retries ---------------------------------------------------------------------------------------
def test_a_transient_503_is_retried_until_the_page_answers(server: Api, base_url: str):
    # GIVEN an API whose second page answers 503 twice before it answers
    source = paged_source(base_url, fail_page=2, fail_times=2, fail_status=503)
    # WHEN the source is read
    table = read_all(source)
    # THEN every movie arrives, page 2 having been asked three times
    assert table.column("title").to_pylist() == TITLES
    assert [query["page"] for query in server.requests_to("/paged")] == ["1", "2", "2", "2", "3"]


def test_a_429_waits_as_long_as_retry_after_says(base_url: str):
    # GIVEN an API that rate-limits the first page once, asking for a one-second wait
    source = paged_source(base_url, fail_page=1, fail_times=1, fail_status=429, retry_after=1)
    # WHEN the source is read
    started = time.monotonic()
    table = read_all(source)
    # THEN it waited the second (not the tiny backoff), and then read everything
    assert time.monotonic() - started >= 0.95
    assert table.num_rows == len(MOVIES)


def test_a_page_that_keeps_failing_names_the_page_status_and_attempts(server: Api, base_url: str):
    # GIVEN an API whose third page answers 503 for longer than the source tries
    source = paged_source(base_url, fail_page=3, fail_times=10, fail_status=503)
    # WHEN the source is read
    with pytest.raises(SourceUnreadable) as raised:
        read_all(source)
    # THEN the error names the page, its request, the status and how often it was tried
    assert "page 3 (GET /paged?" in raised.value.message
    assert raised.value.message.endswith("HTTP 503 after 3 attempts")
    assert [query["page"] for query in server.requests_to("/paged")].count("3") == 3


def test_a_404_fails_at_once(server: Api, base_url: str):
    # GIVEN a source whose URL the API does not have
    source = http_source(f"{base_url}/no-such-movies", max_attempts=5)
    # WHEN the source is read
    with pytest.raises(SourceUnreadable) as raised:
        read_all(source)
    # THEN it fails on the first answer, naming the page and the status
    assert "page 1 (GET /no-such-movies): HTTP 404 Not Found" in raised.value.message
    assert len(server.requests_to("/no-such-movies")) == 1


def test_network_errors_and_timeouts_are_retried_then_named(base_url: str):
    # GIVEN one source on a port nothing listens on, and one on an API slower than its timeout
    refused = http_source(f"http://127.0.0.1:{free_port()}/movies", max_attempts=2)
    slow = http_source(f"{base_url}/slow", max_attempts=2, timeout_seconds=0.2)
    # WHEN each is read
    # THEN each fails after its attempts, naming what went wrong
    with pytest.raises(SourceUnreadable, match=r"page 1 \(GET /movies\): ConnectError.* after 2 attempts"):
        read_all(refused)
    with pytest.raises(SourceUnreadable, match=r"page 1 \(GET /slow\): ReadTimeout.* after 2 attempts"):
        read_all(slow)


# -- garbage ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("switch", "expected"),
    [
        ({"broken_page": 3}, "page 3 (GET /paged?"),
        ({"not_a_list_page": 2}, "page 2 (GET /paged?"),
        ({"bad_record_page": 2}, "page 2 (GET /paged?"),
    ],
    ids=["not-json", "not-a-list", "not-an-object"],
)
def test_a_page_that_is_not_records_names_the_page(base_url: str, switch: dict[str, int], expected: str):
    # GIVEN an API that sends something other than records on one page
    source = paged_source(base_url, **switch)
    # WHEN the source is read
    with pytest.raises(SourceUnreadable) as raised:
        read_all(source)
    # THEN the error names that page and what is wrong with it
    assert expected in raised.value.message
    what = {
        "broken_page": "the body is not JSON",
        "not_a_list_page": "'data.items' is an object, not a list of records",
        "bad_record_page": "the record at index 7 is a string, not a JSON object",
    }[next(iter(switch))]
    assert what in raised.value.message


def test_a_records_path_not_in_the_body_is_named(base_url: str):
    # GIVEN a source looking for its records where the API has none
    source = http_source(f"{base_url}/linked", records_path="data.movies")
    # WHEN the source is read
    # THEN the error names the path
    with pytest.raises(SourceUnreadable, match=r"page 1 \(GET /linked\): the body has no 'data.movies'"):
        read_all(source)


# -- auth and secrets ------------------------------------------------------------------------------
def test_an_api_refusing_a_source_without_auth_says_none_is_configured(base_url: str):
    # GIVEN an API that needs a token, and a source with none
    source = http_source(f"{base_url}/secure")
    # WHEN the source is read
    # THEN it fails at once, saying authentication was refused and no auth is configured
    with pytest.raises(SourceUnreadable) as raised:
        read_all(source)
    assert "HTTP 401: the API refused the authentication (no auth is configured)" in raised.value.message


@pytest.mark.parametrize(
    "auth",
    [
        {"kind": "bearer", "token": {"env": "FILMS_API_TOKEN"}},
        {"kind": "header", "name": "X-Api-Key", "value": {"env": "FILMS_API_TOKEN"}},
    ],
    ids=["bearer", "header"],
)
def test_a_token_from_the_environment_is_sent_and_never_shown(
    base_url: str, auth: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    # GIVEN a source whose token is read from the environment
    caplog.set_level(logging.DEBUG)
    source = http_source(f"{base_url}/secure", auth=auth)
    monkeypatch.setenv("FILMS_API_TOKEN", TOKEN)
    # WHEN it is read with the right token
    # THEN the API answers
    assert read_all(source).num_rows == 10
    # WHEN it is read with a wrong token
    monkeypatch.setenv("FILMS_API_TOKEN", f"wrong-{TOKEN}")
    with pytest.raises(SourceUnreadable) as raised:
        read_all(source)
    # THEN the error says the API refused the auth configured, and where its secret comes from
    assert "HTTP 401: the API refused the authentication" in raised.value.message
    assert f"{auth['kind']}" in raised.value.message
    assert "from the environment variable FILMS_API_TOKEN" in raised.value.message
    # AND the token appears neither in the error nor in any log line
    assert TOKEN not in raised.value.message
    assert TOKEN not in caplog.text


def test_a_url_from_the_environment_is_shown_without_its_query(
    base_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    # GIVEN a source whose URL, with an API key in its query, is read from the environment
    # (httpx's own INFO line shows the full URL; the services keep httpx at WARNING, shared.logs)
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("FILMS_API_URL", f"{base_url}/paged?api_key={TOKEN}")
    source = http_source(
        {"env": "FILMS_API_URL"},
        records_path="data.items",
        params={"key": uuid.uuid4().hex, "fail_page": 1, "fail_times": 10, "fail_status": 500},
        max_attempts=2,
    )
    # WHEN the API keeps failing
    with pytest.raises(SourceUnreadable) as raised:
        read_all(source)
    # THEN the error and the retry log name the page and its path, never the query with the key
    assert "page 1 (GET /paged): HTTP 500 after 2 attempts" in raised.value.message
    assert "page 1 (GET /paged)" in caplog.text
    assert TOKEN not in raised.value.message
    assert TOKEN not in caplog.text


def test_a_client_given_is_used_and_left_open(base_url: str):
    # GIVEN a source handed a client of the caller's
    with httpx.Client() as client:
        source = HttpSource(http_source(f"{base_url}/plain").config, client=client)
        # WHEN it is read
        rows = read_all(source).num_rows
        # THEN it read through that client, which stays open for the caller
        assert rows == len(MOVIES)
        assert not client.is_closed


# -- through the extractor ----------------------------------------------------------------------------
def test_an_extract_of_an_api_that_breaks_on_page_3_fails_landing_nothing(provisioned, base_url: str):
    from services.extractor.handler import make_handler
    from services.extractor.sources import SourceRegistry
    from shared.aws import client
    from shared.progress import ExtractProgress
    from tests.factories import alerts, extract_request_event, new_extract_id

    # GIVEN an HTTP source whose third page is not JSON, after two good pages
    source = paged_source(base_url, broken_page=3)
    sources = SourceRegistry({"films-api": lambda settings: source})
    extract_id = new_extract_id()
    progress = ExtractProgress(provisioned)
    progress.begin(extract_id, "films-api")
    # WHEN its extract runs from the extractor's queue
    result = make_handler(provisioned, sources=sources)(extract_request_event(extract_id, "films-api"), None)
    # THEN the extract failed, saying it was page 3; not retried, nothing uploaded, one alert
    assert result == {"batchItemFailures": []}
    stage = progress.get(extract_id)["stages"]["extractor"]
    assert stage["status"] == "failed" and stage["error"]["code"] == "SOURCE_UNREADABLE"
    assert "page 3" in stage["error"]["message"] and "not JSON" in stage["error"]["message"]
    assert not client("s3", provisioned).list_objects_v2(Bucket=provisioned.bucket("landing")).get("Contents")
    [alert] = alerts(provisioned)
    assert alert["extract_id"] == extract_id and "page 3" in alert["message"]


def test_an_extract_of_an_api_lands_every_record_in_the_movie_record(provisioned, base_url: str):
    import csv
    import io
    import zipfile

    from services.extractor.extract import run_extract
    from services.extractor.settings import extractor_settings
    from shared.aws import client
    from shared.manifest import Manifest
    from tests.factories import new_extract_id

    # GIVEN an API whose records carry an 'id' and, on one record, a year that is words
    source = paged_source(base_url, mixed=1)
    # WHEN it is extracted
    extract_id = new_extract_id()
    result = run_extract(extractor_settings(provisioned), source, extract_id)
    # THEN all 250 records landed; the words travel as text, extra fields are listed, unmapped are empty
    body = client("s3", provisioned).get_object(
        Bucket=provisioned.bucket("landing"), Key=f"films-api/{extract_id}.zip"
    )
    with zipfile.ZipFile(io.BytesIO(body["Body"].read())) as archive:
        manifest = Manifest.from_json(archive.read("manifest.json"))
        records = list(csv.DictReader(io.StringIO(archive.read("movies.csv").decode(), newline="")))
    assert result.rows == len(records) == 250
    assert records[2]["year"] == "nineteen-fifty-three" and records[3]["year"] == "1954"
    assert manifest.model_extra["unfit_values"] == {"year": 1}
    assert manifest.model_extra["ignored_fields"] == ["id"]
    assert records[0]["budget"] == "" and records[0]["title"] == "Movie 001"
    # AND the one record's list of genres sets its flags; records without a list leave them unknown,
    # and the comedy flag the API gives itself is kept
    assert (records[5]["drama"], records[5]["short"], records[5]["action"]) == ("true", "true", "false")
    assert records[0]["drama"] == "" and records[0]["comedy"] == "false" and records[1]["comedy"] == "true"
    assert manifest.model_extra["other_genres"] == {}


def test_a_next_link_to_another_host_is_refused_and_sent_no_credentials(server: Api, base_url: str):
    from fastapi.responses import JSONResponse as Json

    # GIVEN an API whose first page links to another host (127.0.0.2 is another host on loopback)
    port = base_url.rsplit(":", 1)[1]
    elsewhere = f"http://127.0.0.2:{port}/plain"

    @server.app.get("/leaky")
    def leaky() -> Json:
        return Json({"items": MOVIES[:5], "links": {"next": elsewhere}})

    source = http_source(
        f"{base_url}/leaky?api_key=not-for-logs",
        records_path="items",
        pagination={"style": "next", "next_path": "links.next"},
        auth={"kind": "bearer", "token": "tok"},
    )
    before = len(server.requests)
    # WHEN it is read THEN it stops at the link, naming the other host; the key is not shown
    with pytest.raises(SourceUnreadable, match=r"leads to another host \(http://127.0.0.2:") as raised:
        read_all(source)
    assert "not-for-logs" not in raised.value.message and "api_key=***" in raised.value.message
    assert [path for path, _, _ in server.requests[before:]] == ["/leaky"]

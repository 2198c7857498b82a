"""The sources file: what parses, what is refused and why, secrets never shown, and reloading."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from services.extractor.exceptions import SourcesFileError
from services.extractor.routes.sources import describe, redacted_url
from services.extractor.settings import ExtractorSettings
from services.extractor.sources import (
    DEFAULT_SOURCE,
    FileSourceRegistry,
    default_sources,
    ensure_sources_file,
)
from services.extractor.sources.config import (
    BearerAuth,
    EnvSecret,
    HeaderAuth,
    HttpSourceConfig,
    SqlSourceConfig,
    load_sources_file,
    parse_sources,
    shown,
)
from shared.schema import field_names

SECRET = "hunter2-s3cret"

GOOD_FILE = """\
[sources.local]
kind = "sqlite"
url = "sqlite:////data/local.sqlite"
table = "movies"

[sources.films]
kind = "postgres"
url = { env = "FILMS_DATABASE_URL" }
query = "SELECT film_title, released, updated_at FROM films"
cursor = "updated_at"
description = "the films team's table"

[sources.films.columns]
film_title = "title"
released = "year"

[sources.api]
kind = "http"
url = "https://api.example.com/movies"
records_path = "data.items"
params = { lang = "en", adult = false }
headers = { Accept = "application/json", X-Tenant = { env = "API_TENANT" } }
since_param = "updated_since"

[sources.api.pagination]
style = "next"
next_path = "links.next"

[sources.api.auth]
kind = "bearer"
token = { env = "API_TOKEN" }

[sources.keyed]
kind = "http"
url = "https://keyed.example.com/v1/films"

[sources.keyed.auth]
kind = "header"
name = "X-Api-Key"
value = { env = "KEYED_API_KEY" }
"""


def sqlite_source(source: str = "films", **settings: str | None) -> str:
    """One valid SQLite source, with ``settings`` added or replacing its own (TOML values as written)."""
    body = {"kind": '"sqlite"', "url": '"sqlite:///films.sqlite"', "table": '"films"', **settings}
    lines = [f"{key} = {value}" for key, value in body.items() if value is not None]
    return f"[sources.{source}]\n" + "\n".join(lines) + "\n"


def http_source(extra: str = "") -> str:
    return f'[sources.api]\nkind = "http"\nurl = "https://api.example.com/movies"\n{extra}'


def refused(text: str) -> str:
    """The message a sources file is refused with."""
    with pytest.raises(SourcesFileError) as caught:
        parse_sources(text)
    assert caught.value.code == "INVALID_SOURCES_FILE"
    return caught.value.message


# -- a good file ----------------------------------------------------------------------------------
def test_a_good_file_parses_into_one_model_per_source():
    # GIVEN a file with a source of each kind and most of their settings
    # WHEN it is parsed
    sources = parse_sources(GOOD_FILE)
    # THEN each source is its kind's model, named by its table, with its settings as written
    assert list(sources) == ["local", "films", "api", "keyed"]
    local, films, api, keyed = sources.values()

    assert isinstance(local, SqlSourceConfig)
    assert (local.name, local.kind, local.url, local.table, local.query) == (
        "local",
        "sqlite",
        "sqlite:////data/local.sqlite",
        "movies",
        None,
    )
    assert local.cursor is None and local.columns == {} and local.seed is None

    assert isinstance(films, SqlSourceConfig)
    assert films.kind == "postgres" and films.table is None
    assert films.url == EnvSecret(env="FILMS_DATABASE_URL")
    assert films.query == "SELECT film_title, released, updated_at FROM films"
    assert films.cursor == "updated_at"
    assert films.columns == {"film_title": "title", "released": "year"}
    assert films.description == "the films team's table"

    assert isinstance(api, HttpSourceConfig)
    assert api.url == "https://api.example.com/movies"
    assert api.records_path == "data.items"
    assert api.pagination.style == "next" and api.pagination.next_path == "links.next"
    assert api.auth == BearerAuth(kind="bearer", token=EnvSecret(env="API_TOKEN"))
    assert api.params == {"lang": "en", "adult": False}
    assert api.headers == {"Accept": "application/json", "X-Tenant": EnvSecret(env="API_TENANT")}
    assert api.since_param == "updated_since"

    assert isinstance(keyed, HttpSourceConfig)
    assert keyed.auth == HeaderAuth(kind="header", name="X-Api-Key", value=EnvSecret(env="KEYED_API_KEY"))
    assert keyed.pagination.style == "none" and keyed.records_path == ""
    assert keyed.timeout_seconds == 30 and keyed.max_attempts == 5


@pytest.mark.parametrize(
    ("pagination", "expected"),
    [
        ('style = "none"', {"style": "none"}),
        (
            'style = "page"\npage_param = "p"\nfirst_page = 0\nsize_param = "per_page"',
            {"style": "page", "page_param": "p", "first_page": 0, "size_param": "per_page"},
        ),
        (
            'style = "offset"\noffset_param = "skip"\nlimit_param = "take"\nlimit = 250',
            {"style": "offset", "offset_param": "skip", "limit_param": "take", "limit": 250},
        ),
        (
            'style = "next"\nnext_path = "meta.cursor"\ncursor_param = "after"\nmax_pages = 10',
            {"style": "next", "next_path": "meta.cursor", "cursor_param": "after", "max_pages": 10},
        ),
    ],
)
def test_each_pagination_style_parses_with_its_settings(pagination: str, expected: dict):
    # GIVEN an http source paged in one of the styles
    text = http_source(f"[sources.api.pagination]\n{pagination}\n")
    # WHEN it is parsed
    api = parse_sources(text)["api"]
    # THEN the pagination holds the settings as written
    assert isinstance(api, HttpSourceConfig)
    assert api.pagination.model_dump(include=set(expected)) == expected


def test_an_empty_file_declares_no_sources():
    assert parse_sources("# nothing yet\n") == {}


# -- bad files ------------------------------------------------------------------------------------
def test_a_file_that_is_not_toml_is_refused_with_where_it_broke():
    message = refused("[sources.films\nkind = 'sqlite'\n")
    assert "not valid TOML" in message and "line 1" in message


def test_load_names_the_file_in_the_message(tmp_path: Path):
    # GIVEN a bad file on disk
    path = tmp_path / "sources.toml"
    path.write_text(sqlite_source(tabel='"films"', table=None), encoding="utf-8")
    # WHEN it is loaded
    with pytest.raises(SourcesFileError) as caught:
        load_sources_file(path)
    # THEN the message says which file, which source and which key
    assert str(path) in caught.value.message
    assert "source 'films'" in caught.value.message and "'tabel'" in caught.value.message


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path):
    with pytest.raises(SourcesFileError, match="cannot be read"):
        load_sources_file(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("[other]\nx = 1\n", ["unexpected top-level key(s) other"], id="unknown-top-level-key"),
        pytest.param('sources = "films"\n', ["'sources' must be a table"], id="sources-not-a-table"),
        pytest.param(
            '[sources]\nfilms = "x"\n', ["[sources.films] must be a table"], id="source-not-a-table"
        ),
        pytest.param(sqlite_source("Films"), ["source name 'Films'", "lower-case"], id="upper-case-name"),
        pytest.param(sqlite_source('"my films"'), ["source name 'my films'"], id="name-with-a-space"),
        pytest.param(
            sqlite_source(kind='"mysql"'),
            ["source 'films'", "'kind' is 'mysql'", "sqlite, postgres, http"],
            id="unknown-kind",
        ),
        pytest.param(
            sqlite_source(kind=None),
            ["source 'films'", "'kind' is required", "sqlite, postgres, http"],
            id="missing-kind",
        ),
        pytest.param(sqlite_source(url=None), ["source 'films'", "key 'url' is required"], id="missing-url"),
        pytest.param(
            '[sources.api]\nkind = "http"\n', ["source 'api'", "key 'url' is required"], id="http-missing-url"
        ),
        pytest.param(
            sqlite_source(table=None), ["source 'films'", "exactly one of 'table' or 'query'"], id="neither"
        ),
        pytest.param(
            sqlite_source(query='"SELECT 1"'),
            ["source 'films'", "exactly one of 'table' or 'query'"],
            id="table-and-query",
        ),
        pytest.param(
            sqlite_source(tabel='"films"'),
            ["source 'films'", "key 'tabel' is not a setting"],
            id="typo-beside-a-good-key",
        ),
        pytest.param(
            sqlite_source(name='"other"'), ["source 'films'", "key 'name' is not a setting"], id="name-key"
        ),
        pytest.param(
            sqlite_source(seed='"imdb"', kind='"postgres"', url='"postgresql+psycopg://u@db/x"'),
            ["source 'films'", "'seed'", "kind = 'sqlite'"],
            id="seed-on-postgres",
        ),
        pytest.param(
            http_source('timeout_seconds = "soon"\n'),
            ["source 'api'", "key 'timeout_seconds'", "valid number"],
            id="wrong-type",
        ),
        pytest.param(
            http_source('[sources.api.pagination]\nstyle = "cursor"\n'),
            ["source 'api'", "key 'pagination.style'", "'page'", "'offset'", "'next'"],
            id="unknown-pagination-style",
        ),
        pytest.param(
            http_source('[sources.api.pagination]\nstyle = "page"\npage_size = 50\n'),
            ["source 'api'", "key 'pagination.page_size' is not a setting"],
            id="unknown-pagination-key",
        ),
        pytest.param(
            http_source('[sources.api.auth]\nkind = "basic"\ntoken = "x"\n'),
            ["source 'api'", "key 'auth'", "'basic'", "'bearer', 'header'"],
            id="unknown-auth-kind",
        ),
        pytest.param(
            http_source().replace('"https://api.example.com/movies"', "5"),
            ["source 'api'", "key 'url': should be a string or { env = \"VARIABLE\" }"],
            id="setting-neither-text-nor-env",
        ),
        pytest.param(
            http_source().replace('"https://api.example.com/movies"', '{ env = "API_URL", default = "x" }'),
            ["source 'api'", "key 'url': should be a string or { env = \"VARIABLE\" }"],
            id="env-reference-with-an-extra-key",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_the_source_and_the_key(text: str, says: list[str]):
    # GIVEN a file with one mistake
    # WHEN it is parsed
    message = refused(text)
    # THEN it is refused, and the message says what is wrong and where
    for part in says:
        assert part in message


def test_a_bad_setting_is_reported_once_without_pydantic_internals():
    # GIVEN a secret reference written wrongly
    message = refused(http_source().replace('"https://api.example.com/movies"', '{ env = "" }'))
    # THEN the user reads one problem about 'url', not one per member of a union
    assert message.count("key 'url'") == 1
    assert "EnvSecret" not in message and "url.str" not in message


def test_a_column_mapped_to_no_field_of_the_movie_record_lists_the_fields():
    # GIVEN a mapping with a typo in the canonical field
    message = refused(sqlite_source() + '[sources.films.columns]\nfilm_title = "titel"\n')
    # THEN the message names the source, the mapping, and every valid field
    assert "source 'films'" in message and "key 'columns'" in message
    assert "'film_title' maps to 'titel'" in message
    assert f"fields: {', '.join(field_names())}" in message


def test_a_column_may_be_mapped_to_the_genre_list():
    # GIVEN a source whose genres are one text column, as OMDb's "Genre": "Action, Drama"
    sources = parse_sources(sqlite_source() + '[sources.films.columns]\nGenre = "genres"\n')
    # THEN it is declared, to feed the genre flags
    assert sources["films"].columns == {"Genre": "genres"}


def test_two_source_fields_mapped_to_one_canonical_field_are_refused():
    message = refused(sqlite_source() + '[sources.films.columns]\nname = "title"\nfilm_title = "title"\n')
    assert "source 'films'" in message and "more than one source field maps to title" in message


def test_one_bad_source_refuses_the_whole_file():
    # GIVEN a good source and a bad one
    text = sqlite_source("good") + sqlite_source("bad", kind='"mysql"')
    # THEN nothing is parsed: a typo never quietly drops a source
    assert "source 'bad'" in refused(text)


# -- secrets --------------------------------------------------------------------------------------
def test_an_env_secret_is_read_from_the_environment_when_used(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FILMS_DATABASE_URL", "postgresql+psycopg://u:p@db/films")
    assert EnvSecret(env="FILMS_DATABASE_URL").resolve("films", "url") == "postgresql+psycopg://u:p@db/films"


def test_an_unset_variable_names_the_source_key_and_variable(monkeypatch: pytest.MonkeyPatch):
    # GIVEN a secret whose variable is not set (but another variable holds something secret-looking)
    monkeypatch.delenv("FILMS_DATABASE_URL", raising=False)
    monkeypatch.setenv("OTHER_SECRET", SECRET)
    # WHEN it is resolved
    with pytest.raises(SourcesFileError) as caught:
        EnvSecret(env="FILMS_DATABASE_URL").resolve("films", "url")
    # THEN the message says which variable is missing, for which source and key, and no value
    message = caught.value.message
    assert "FILMS_DATABASE_URL" in message and "'films'" in message and "url" in message
    assert SECRET not in message


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("API_TOKEN", "")
    with pytest.raises(SourcesFileError, match="API_TOKEN"):
        EnvSecret(env="API_TOKEN").resolve("api", "auth.token")


def test_a_config_never_shows_the_value_of_its_secrets(monkeypatch: pytest.MonkeyPatch):
    # GIVEN every secret of the good file set in the environment
    for variable in ("FILMS_DATABASE_URL", "API_TOKEN", "API_TENANT", "KEYED_API_KEY"):
        monkeypatch.setenv(variable, SECRET)
    sources = parse_sources(GOOD_FILE)
    # WHEN the configs are printed, logged or described
    for config in sources.values():
        seen = [repr(config), str(config), str(config.model_dump()), str(describe(config))]
        # THEN no value appears, only the variables they come from
        for text in seen:
            assert SECRET not in text
    assert "API_TOKEN" in repr(sources["api"])


def test_shown_gives_the_variable_never_the_value(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("API_TOKEN", SECRET)
    assert shown(EnvSecret(env="API_TOKEN")) == {"env": "API_TOKEN"}
    assert shown("as written") == "as written"
    assert shown(None) is None


def test_describe_hides_a_password_written_in_a_postgres_url():
    # GIVEN a postgres source whose URL is written in the file with its password
    text = sqlite_source(kind='"postgres"', url='"postgresql+psycopg://u:hunter2@db/x"')
    config = parse_sources(text)["films"]
    # WHEN it is described for GET /sources
    described = describe(config)
    # THEN the password is masked, the rest stays readable
    assert described["url"] == "postgresql+psycopg://u:***@db/x"
    assert "hunter2" not in str(described)
    assert described["table"] == "films"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u:hunter2@db/x", "postgresql+psycopg://u:***@db/x"),
        ("postgresql+psycopg://u@db/x?password=hunter2", "postgresql+psycopg://u@db/x"),
        ("https://api.example.com/movies?api_key=hunter2&page=1", "https://api.example.com/movies"),
        ("https://u:hunter2@api.example.com/movies", "https://u:***@api.example.com/movies"),
        ("https://api.example.com:8443/movies", "https://api.example.com:8443/movies"),
        ("sqlite:////data/films.sqlite", "sqlite:////data/films.sqlite"),
    ],
)
def test_redacted_url_leaves_out_passwords_and_query_strings(url: str, expected: str):
    assert redacted_url(url) == expected


def test_describe_of_an_http_source_shows_no_key_token_or_header_value():
    # GIVEN an http source with a key in its URL, a bearer token and header values
    text = GOOD_FILE.replace(
        '"https://api.example.com/movies"', '"https://api.example.com/movies?api_key=hunter2"'
    )
    config = parse_sources(text)["api"]
    # WHEN it is described
    described = describe(config)
    # THEN the query is gone, the auth is only its kind, the headers only their names
    assert described["url"] == "https://api.example.com/movies"
    assert described["auth"] == {"kind": "bearer"}
    assert described["headers"] == ["Accept", "X-Tenant"]
    assert described["pagination"] == "next" and described["records_path"] == "data.items"
    assert "hunter2" not in str(described)


def test_an_env_secret_url_shows_only_the_variable_name(monkeypatch: pytest.MonkeyPatch):
    # GIVEN the variable holds a URL with a password
    monkeypatch.setenv("FILMS_DATABASE_URL", f"postgresql+psycopg://u:{SECRET}@db/films")
    config = parse_sources(GOOD_FILE)["films"]
    # THEN the description names the variable, never what it holds
    assert describe(config)["url"] == {"env": "FILMS_DATABASE_URL"}
    assert redacted_url(EnvSecret(env="FILMS_DATABASE_URL")) == {"env": "FILMS_DATABASE_URL"}
    assert SECRET not in str(describe(config))


# -- where a SQLite file is -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "anchored"),
    [
        ("sqlite:///films.sqlite", "{folder}/films.sqlite"),
        ("sqlite:///data/../films.sqlite", "{folder}/films.sqlite"),
        ("sqlite+pysqlite:///data/films.sqlite", "{folder}/data/films.sqlite"),
    ],
)
def test_a_relative_sqlite_path_is_taken_from_the_files_folder(tmp_path: Path, url: str, anchored: str):
    # GIVEN a sources file in its own folder naming a SQLite file by a relative path
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "sources.toml"
    path.write_text(sqlite_source(url=f'"{url}"'), encoding="utf-8")
    # WHEN it is loaded (from whatever the working directory is)
    config = load_sources_file(path)["films"]
    # THEN the path is taken from the file's folder, not the working directory
    prefix = url.partition(":///")[0]
    assert config.url == f"{prefix}:///" + anchored.format(folder=folder.resolve())


@pytest.mark.parametrize("url", ["sqlite:////data/films.sqlite", "sqlite:///:memory:", "sqlite://"])
def test_absolute_and_in_memory_sqlite_urls_are_left_as_written(tmp_path: Path, url: str):
    path = tmp_path / "sources.toml"
    path.write_text(sqlite_source(url=f'"{url}"'), encoding="utf-8")
    assert load_sources_file(path)["films"].url == url


def test_only_sqlite_urls_are_anchored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # GIVEN a postgres source and a SQLite source whose URL comes from the environment
    monkeypatch.setenv("LOCAL_DB", "sqlite:///relative.sqlite")
    path = tmp_path / "sources.toml"
    path.write_text(
        sqlite_source("pg", kind='"postgres"', url='"postgresql+psycopg://u@db/x"')
        + sqlite_source("env", url='{ env = "LOCAL_DB" }'),
        encoding="utf-8",
    )
    # THEN neither is rewritten
    sources = load_sources_file(path)
    assert sources["pg"].url == "postgresql+psycopg://u@db/x"
    assert sources["env"].url == EnvSecret(env="LOCAL_DB")


# -- the registry reads the file again when it changes --------------------------------------------
def rewrite(path: Path, text: str) -> None:
    """Write ``text`` and move the file's mtime on, so the change is seen however coarse the clock."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


@pytest.fixture
def sources_file(tmp_path: Path) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(sqlite_source("films"), encoding="utf-8")
    return path


def test_the_registry_refuses_a_bad_file_when_made(tmp_path: Path):
    # GIVEN a bad file
    path = tmp_path / "sources.toml"
    path.write_text(sqlite_source(kind='"mysql"'), encoding="utf-8")
    # THEN the registry is not made (the service does not start)
    with pytest.raises(SourcesFileError, match="source 'films'"):
        FileSourceRegistry(path)


def test_the_registry_picks_up_a_source_added_to_the_file(sources_file: Path):
    # GIVEN a registry over a file with one source
    registry = FileSourceRegistry(sources_file)
    assert registry.names == ["films"]
    # WHEN a source is added to the file
    rewrite(sources_file, sqlite_source("films") + sqlite_source("shorts", table='"shorts"'))
    # THEN the registry knows it, with its declaration, without being made again
    assert "shorts" in registry
    assert registry.names == ["films", "shorts"]
    shorts = registry.config("shorts")
    assert isinstance(shorts, SqlSourceConfig) and shorts.table == "shorts"


def test_the_registry_keeps_the_last_good_sources_when_the_file_turns_bad(
    sources_file: Path, caplog: pytest.LogCaptureFixture
):
    # GIVEN a registry over a good file
    registry = FileSourceRegistry(sources_file)
    # WHEN the file is edited into a bad one
    rewrite(sources_file, sqlite_source("films", tabel='"films"', table=None))
    with caplog.at_level(logging.ERROR):
        names = registry.names
    # THEN the sources as last read stay in use, and the refusal is logged with its reason
    assert names == ["films"]
    assert registry.config("films").table == "films"  # type: ignore[union-attr]
    refusals = [
        record for record in caplog.records if getattr(record, "event", None) == "sources_file_refused"
    ]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.ERROR
    assert "'tabel'" in refusals[0].getMessage() and "source 'films'" in refusals[0].getMessage()
    # AND the registry says why, for GET /sources and a 404 to show
    assert registry.problem is not None and "'tabel'" in registry.problem


def test_a_bad_file_is_logged_once_and_a_fixed_file_is_read_again(
    sources_file: Path, caplog: pytest.LogCaptureFixture
):
    # GIVEN a registry whose file turned bad
    registry = FileSourceRegistry(sources_file)
    rewrite(sources_file, "not [toml")
    # WHEN it is asked again and again, then the file is fixed
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert registry.names == ["films"]
        rewrite(sources_file, sqlite_source("features"))
        names = registry.names
    # THEN the refusal is logged once, not on every request, and the fixed file is used
    events = [getattr(record, "event", None) for record in caplog.records]
    assert events.count("sources_file_refused") == 1
    assert "sources_file_read" in events
    assert names == ["features"] and registry.problem is None


# -- the default file -----------------------------------------------------------------------------
def test_ensure_sources_file_creates_the_default_file_once(tmp_path: Path):
    # GIVEN no sources file (nor its folder)
    path = tmp_path / "home" / "sources.toml"
    # WHEN it is ensured
    assert ensure_sources_file(path) == path
    # THEN it holds the bundled imdb source, and nothing half-written is left beside it
    sources = load_sources_file(path)
    assert list(sources) == [DEFAULT_SOURCE]
    imdb = sources[DEFAULT_SOURCE]
    assert isinstance(imdb, SqlSourceConfig)
    assert (imdb.kind, imdb.table, imdb.seed) == ("sqlite", "movies", "imdb")
    assert imdb.url == f"sqlite:///{path.parent.resolve() / 'sources' / 'imdb.sqlite'}"
    assert [entry.name for entry in path.parent.iterdir()] == ["sources.toml"]


def test_ensure_sources_file_never_overwrites_an_existing_file(tmp_path: Path):
    # GIVEN a sources file the user wrote
    path = tmp_path / "sources.toml"
    path.write_text(sqlite_source("mine"), encoding="utf-8")
    # WHEN it is ensured
    ensure_sources_file(path)
    # THEN it is left exactly as it was
    assert path.read_text(encoding="utf-8") == sqlite_source("mine")


def test_default_sources_reads_the_settings_sources_file(tmp_path: Path):
    # GIVEN a fresh MOVIEPIPE_HOME
    settings = ExtractorSettings(home=tmp_path / "home", sources=None)
    # WHEN the default sources are made
    registry = default_sources(settings)
    # THEN the default file was created there and declares imdb (not seeded until it is read)
    assert registry.path == tmp_path / "home" / "sources.toml"
    assert registry.names == [DEFAULT_SOURCE]
    assert not (tmp_path / "home" / "sources").exists()


def test_the_service_refuses_to_start_on_a_bad_sources_file_saying_why(tmp_path: Path):
    import subprocess
    import sys

    # GIVEN a sources file with a typo in one source's key
    sources = tmp_path / "sources.toml"
    sources.write_text('[sources.films]\nkind = "postgres"\nurl = "postgresql://db/films"\ntabel = "films"\n')
    # WHEN the extractor service is started on it (as uvicorn imports it)
    started = subprocess.run(
        [sys.executable, "-c", "import services.extractor.app"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MOVIEPIPE_SOURCES": str(sources), "MOVIEPIPE_HOME": str(tmp_path)},
    )
    # THEN it does not start, and its last word names the source and the key, without a traceback
    assert started.returncode == 1
    assert started.stderr.strip().splitlines()[-1].startswith("the extractor cannot start:")
    assert "source 'films'" in started.stderr and "'tabel'" in started.stderr
    assert "Traceback" not in started.stderr

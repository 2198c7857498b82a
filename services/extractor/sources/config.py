"""The sources file: every source an extract can name, declared in TOML at ``MOVIEPIPE_SOURCES``.

One ``[sources.NAME]`` table per source::

    [sources.films]
    kind = "postgres"                                   # sqlite | postgres | http
    url = { env = "FILMS_DATABASE_URL" }                # a secret is never written in the file
    table = "public.films"                              # or: query = "SELECT ..."
    cursor = "updated_at"                               # optional: incremental extracts

    [sources.films.columns]                             # source field -> canonical field
    film_title = "title"

A bad file is refused as a whole, with a message naming the source and the key, so a typo never
quietly drops a source.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.extractor.exceptions import SourcesFileError
from shared.schema import field_names

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
REDACTED = "***"


class EnvSecret(BaseModel):
    """``{ env = "VAR" }``: a value read from the environment when used, never stored or shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str = Field(min_length=1)

    def resolve(self, source: str, key: str) -> str:
        value = os.environ.get(self.env)
        if not value:
            raise SourcesFileError(
                f"source {source!r}: {key} reads the environment variable {self.env}, which is not set"
            )
        return value

    def __repr__(self) -> str:
        return f"EnvSecret(env={self.env!r})"


def _one_problem(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # Without this a bad setting reports once per member of the union ("url.str", "url.EnvSecret.env").
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError("setting", 'should be a string or { env = "VARIABLE" }') from None


Setting = Annotated[str | EnvSecret, WrapValidator(_one_problem)]
"""A setting written in the file, or read from the environment."""


def resolve(value: Setting | None, source: str, key: str) -> str | None:
    """The value of a setting: as written, or read from its environment variable."""
    if isinstance(value, EnvSecret):
        return value.resolve(source, key)
    return value


def shown(value: Setting | None) -> Any:
    """A setting as it may appear in logs and API answers: an environment reference, never its value."""
    if isinstance(value, EnvSecret):
        return {"env": value.env}
    return value


GENRE_LIST = "genres"
"""Not a field of the movie record but a source field that may feed its genre flags: a list of genre
names (``["Drama", "Comedy"]``, ``[{"id": 18, "name": "Drama"}]``) or one text (``"Drama, Comedy"``)."""


class _Declared(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseSource(_Declared):
    """What every kind of source declares."""

    name: str = ""
    columns: dict[str, str] = Field(default_factory=dict)
    """Source field name -> canonical field name; a canonical name not mapped is looked up as it is."""
    cursor: str | None = None
    """A column (``updated_at``, an increasing id) that makes extracts incremental."""
    description: str | None = None

    @field_validator("columns")
    @classmethod
    def _canonical_targets(cls, columns: dict[str, str]) -> dict[str, str]:
        known = [*field_names(), GENRE_LIST]
        for source_field, target in columns.items():
            if target not in known:
                raise ValueError(
                    f"{source_field!r} maps to {target!r}, which is not a field of the movie record "
                    f"(fields: {', '.join(field_names())}; or {GENRE_LIST!r}, a list of genre names)"
                )
        targets = list(columns.values())
        repeated = sorted({target for target in targets if targets.count(target) > 1})
        if repeated:
            raise ValueError(f"more than one source field maps to {', '.join(repeated)}")
        return columns


class SqlSourceConfig(BaseSource):
    """A table or query in a SQL database, through SQLAlchemy."""

    kind: Literal["sqlite", "postgres"]
    url: Setting
    """A SQLAlchemy URL (``postgresql+psycopg://user@host/db``, ``sqlite:///path``)."""
    table: str | None = None
    query: str | None = None
    seed: Literal["imdb"] | None = None
    """A bundled data set that creates the (SQLite) database on first use when it is missing."""

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSourceConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("needs exactly one of 'table' or 'query'")
        if self.seed and self.kind != "sqlite":
            raise ValueError("'seed' creates a SQLite database; it needs kind = 'sqlite'")
        return self


class Pagination(_Declared):
    """How an HTTP API pages its records."""

    style: Literal["none", "page", "offset", "next"] = "none"
    """``page``: a page number; ``offset``: offset and limit; ``next``: a next link or cursor in the body."""
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = None
    """Page-size parameter for ``page`` (sent only when set)."""
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(100, ge=1)
    next_path: str = "next"
    """Dotted path in the body to the next page: a URL (absolute or relative) or a cursor token."""
    cursor_param: str | None = None
    """When set, the value at ``next_path`` is a cursor token sent as this query parameter."""
    max_pages: int = Field(100_000, ge=1)


class BearerAuth(_Declared):
    kind: Literal["bearer"]
    token: Setting


class HeaderAuth(_Declared):
    kind: Literal["header"]
    name: str = Field(min_length=1)
    value: Setting


Auth = Annotated[BearerAuth | HeaderAuth, Field(discriminator="kind")]


class HttpSourceConfig(BaseSource):
    """JSON records from an HTTP API."""

    kind: Literal["http"]
    url: Setting
    records_path: str = ""
    """Dotted path in the body to the list of records; empty when the body is the list."""
    pagination: Pagination = Field(default_factory=Pagination)
    auth: Auth | None = None
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, Setting] = Field(default_factory=dict)
    since_param: str | None = None
    """For an incremental source: the query parameter that sends the high-water mark to the API."""
    timeout_seconds: float = Field(30, gt=0)
    max_attempts: int = Field(5, ge=1)
    """Attempts per page on 429, 5xx or a network error, with backoff (honouring ``Retry-After``)."""


SourceConfig = Annotated[SqlSourceConfig | HttpSourceConfig, Field(discriminator="kind")]
KINDS = ("sqlite", "postgres", "http")


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceConfig] = Field(default_factory=dict)


def parse_sources(text: str, origin: str = "sources file") -> dict[str, SqlSourceConfig | HttpSourceConfig]:
    """Every source declared in ``text`` (TOML); ``SourcesFileError`` naming the source and key if bad."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourcesFileError(f"{origin} is not valid TOML: {exc}") from exc
    unexpected = sorted(set(document) - {"sources"})
    if unexpected:
        raise SourcesFileError(
            f"{origin}: unexpected top-level key(s) {', '.join(unexpected)}; expected [sources.NAME]"
        )
    declared = document.get("sources", {})
    if not isinstance(declared, dict):
        raise SourcesFileError(f"{origin}: 'sources' must be a table of [sources.NAME] tables")
    found: dict[str, SqlSourceConfig | HttpSourceConfig] = {}
    for name, body in declared.items():
        found[name] = _parse_source(name, body, origin)
    return found


def _parse_source(name: str, body: Any, origin: str) -> SqlSourceConfig | HttpSourceConfig:
    if not SOURCE_NAME.match(name):
        raise SourcesFileError(
            f"{origin}: source name {name!r} must be lower-case letters, digits, '_' or '-' (at most 64)"
        )
    if not isinstance(body, dict):
        raise SourcesFileError(f"{origin}: [sources.{name}] must be a table")
    if "name" in body:
        raise SourcesFileError(
            f"{origin}: source {name!r}: key 'name' is not a setting; a source is named by [sources.NAME]"
        )
    kind = body.get("kind")
    if kind not in KINDS:
        found = "is required" if kind is None else f"is {kind!r}"
        raise SourcesFileError(
            f"{origin}: source {name!r}: key 'kind' {found}; expected one of {', '.join(KINDS)}"
        )
    model = HttpSourceConfig if kind == "http" else SqlSourceConfig
    try:
        return model.model_validate({**body, "name": name})
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise SourcesFileError(f"{origin}: source {name!r}: {problems}") from None


def _problem(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-after"))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"key {location!r} is not a setting of this kind of source"
    if error["type"] == "missing":
        return f"key {location!r} is required"
    return f"key {location!r}: {message}" if location else message


def load_sources_file(path: Path) -> dict[str, SqlSourceConfig | HttpSourceConfig]:
    """The sources declared in the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourcesFileError(f"sources file {path} cannot be read: {exc}") from exc
    declared = parse_sources(text, origin=f"sources file {path}")
    return {name: _anchored(config, path.parent) for name, config in declared.items()}


def _anchored(
    config: SqlSourceConfig | HttpSourceConfig, directory: Path
) -> SqlSourceConfig | HttpSourceConfig:
    """A SQLite source whose path is relative, with the path taken from the sources file's folder."""
    if config.kind != "sqlite" or not isinstance(config.url, str):
        return config
    prefix, _, database = config.url.partition(":///")
    if not database or database.startswith(("/", ":memory:")) or "?" in database:
        return config
    return config.model_copy(update={"url": f"{prefix}:///{(directory / database).resolve()}"})

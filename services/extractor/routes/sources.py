"""``/sources``: the sources an extract can name, with their state; never a secret."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.extractor.deps import SourcesDep, StateDep
from services.extractor.sources.config import REDACTED, HttpSourceConfig, SqlSourceConfig, shown

router = APIRouter(prefix="/sources", tags=["sources"])


class SourceSummary(BaseModel):
    """A source as declared (secrets shown as the environment variable they come from) and its state."""

    name: str
    kind: str | None = None
    description: str | None = None
    cursor: str | None = Field(None, description="The column that makes extracts incremental, if any")
    high_water_mark: str | None = Field(None, description="The highest cursor value extracted so far")
    running_extract: str | None = None
    last_extract: str | None = None
    last_status: str | None = None
    last_at: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict, description="How it is read; no secret values")


class SourceList(BaseModel):
    sources: list[SourceSummary]
    problem: str | None = Field(
        None,
        description="Why the sources file as it is now was refused; the sources listed are the last good",
    )


def describe(config: SqlSourceConfig | HttpSourceConfig | None) -> dict[str, Any]:
    """A source's declared settings as they may be shown: no password, token or header value."""
    if config is None:
        return {}
    if isinstance(config, SqlSourceConfig):
        found: dict[str, Any] = {"url": redacted_url(config.url)}
        found.update(
            {key: getattr(config, key) for key in ("table", "query", "seed") if getattr(config, key)}
        )
    else:
        found = {"url": redacted_url(config.url), "records_path": config.records_path}
        found["pagination"] = config.pagination.style
        if config.auth is not None:
            found["auth"] = {"kind": config.auth.kind}
        if config.headers:
            found["headers"] = sorted(config.headers)
    if config.columns:
        found["columns"] = dict(config.columns)
    return found


def redacted_url(url: Any) -> Any:
    """A URL with its password and its query string (which may hold a key or a password) left out."""
    if not isinstance(url, str):
        return shown(url)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" in url and not url.startswith(("http://", "https://")):
        try:
            return make_url(url).set(query={}).render_as_string(hide_password=True)
        except ArgumentError:
            return "(not a URL)"
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo.partition(':')[0]}:{REDACTED}@{host}" if ":" in userinfo else parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@router.get("")
def list_sources(sources: SourcesDep, state: StateDep) -> SourceList:
    """Every source in the sources file: kind, cursor, high-water mark, the last and the running extract."""
    found = []
    for name in sources.names:
        config = sources.config(name)
        found.append(
            SourceSummary(
                name=name,
                kind=getattr(config, "kind", None),
                description=getattr(config, "description", None),
                cursor=getattr(config, "cursor", None),
                settings=describe(config),  # type: ignore[arg-type]
                **state.get(name),
            )
        )
    return SourceList(sources=found, problem=getattr(sources, "problem", None))

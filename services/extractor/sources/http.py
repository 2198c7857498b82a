"""An HTTP source: JSON records from an API, page by page, retried on 429, 5xx and network errors.

Pages are read one at a time and their records handed on in batches of ``batch_rows``, so an API of
any size is read in the memory of one page and one batch. Each batch's columns are typed only where
every value agrees on a JSON type; anything else arrives as text, for ``RecordMapper`` to cast with
fallback, so a stray ``"1999"`` among numbers is never silently nulled here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pyarrow as pa
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services.extractor.exceptions import SourceUnreadable
from services.extractor.sources.config import BearerAuth, EnvSecret, HeaderAuth, HttpSourceConfig, resolve
from shared.logs import log_event

logger = logging.getLogger(__name__)

_INT64 = (-(2**63), 2**63 - 1)


class _Retryable(Exception):
    """A page answer worth asking for again: 429, 5xx, or a network error or timeout."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


_SECRET_PARAMETER = re.compile(r"key|token|secret|passw|auth|sig|credential", re.IGNORECASE)


@dataclass(frozen=True)
class _Page:
    number: int
    """1 for the first request of a read, whatever the API numbers its pages."""
    url: httpx.URL
    redact_query: bool
    """The URL came from a secret, so its query (an API key, say) must not be shown."""

    def __str__(self) -> str:
        if self.redact_query or not self.url.query:
            return f"page {self.number} (GET {self.url.path})"
        # A key in the url's query string is as secret as a header: its value is never shown.
        shown = "&".join(
            f"{name}={'***' if _SECRET_PARAMETER.search(name) else value}"
            for name, value in self.url.params.multi_items()
        )
        return f"page {self.number} (GET {self.url.path}?{shown})"


class HttpSource:
    """JSON records from an HTTP API (``kind = "http"`` in the sources file)."""

    def __init__(
        self,
        config: HttpSourceConfig,
        *,
        client: httpx.Client | None = None,
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        retry_after_max: float = 60.0,
    ):
        self.name = config.name
        self.config = config
        self.filters_since = config.since_param is not None  # the API is sent the mark
        self.client = client
        """A client to use (and leave open); without one, each read opens and closes its own."""
        self.retry_after_max = retry_after_max
        self._backoff = wait_exponential(multiplier=backoff_base, max=backoff_max)

    def __repr__(self) -> str:
        return f"HttpSource({self.name!r})"

    def read_batches(self, batch_rows: int, since: str | None = None) -> Iterator[pa.RecordBatch]:
        """The API's records, ``batch_rows`` at most at a time; ``since`` is sent as ``since_param``."""
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
        pending: list[dict[str, Any]] = []
        for records in self._pages(since):
            for record in records:
                pending.append(record)
                if len(pending) == batch_rows:
                    yield records_to_batch(pending)
                    pending = []
        if pending:
            yield records_to_batch(pending)

    # -- pages -------------------------------------------------------------------------------------
    def _pages(self, since: str | None) -> Iterator[list[dict[str, Any]]]:
        pagination = self.config.pagination
        redact = isinstance(self.config.url, EnvSecret)
        try:
            base = httpx.URL(resolve(self.config.url, self.name, "url") or "")
        except httpx.InvalidURL as exc:
            shown = "read from the environment" if redact else repr(self.config.url)
            raise SourceUnreadable(self.name, f"the url {shown} is not a valid URL") from exc
        params: dict[str, Any] = dict(self.config.params)
        if since is not None and self.config.since_param:
            params[self.config.since_param] = since
        headers = self._headers()
        step: dict[str, Any] = {}
        url = base
        if pagination.style == "page":
            step = {pagination.page_param: pagination.first_page}
            if pagination.size_param:
                step[pagination.size_param] = pagination.limit
        elif pagination.style == "offset":
            step = {pagination.offset_param: 0, pagination.limit_param: pagination.limit}
        with self._client_context() as client:
            number = 1
            read: dict[httpx.URL, int] = {}
            while True:
                page = _Page(number, url.copy_merge_params({**params, **step}), redact)
                if page.url in read:
                    # A next link or cursor back to a page already read: the API goes round in circles,
                    # and would be read again up to max_pages times.
                    raise SourceUnreadable(
                        self.name,
                        f"{page} is page {read[page.url]} again: the API's "
                        f"{pagination.next_path!r} leads back to a page already read",
                    )
                read[page.url] = number
                body = self._fetch(client, page, headers)
                records = self._records(page, body)
                log_event(
                    logger, "source_page_read", f"{page}: {len(records)} record(s)", level=logging.DEBUG
                )
                yield records
                following = self._following(page, body, records, base, step)
                if following is None:
                    return
                if number == pagination.max_pages:
                    raise SourceUnreadable(
                        self.name,
                        f"the API has more than max_pages = {pagination.max_pages} pages; raise "
                        f"pagination.max_pages if it really has that many",
                    )
                url, step = following
                number += 1

    def _following(
        self, page: _Page, body: Any, records: list[dict[str, Any]], base: httpx.URL, step: dict[str, Any]
    ) -> tuple[httpx.URL, dict[str, Any]] | None:
        """The URL and paging parameters of the page after ``page``; None when it was the last."""
        pagination = self.config.pagination
        if pagination.style == "page":
            if not records or (pagination.size_param and len(records) < pagination.limit):
                return None
            return base, {**step, pagination.page_param: step[pagination.page_param] + 1}
        if pagination.style == "offset":
            if len(records) < pagination.limit:
                return None
            return base, {**step, pagination.offset_param: step[pagination.offset_param] + pagination.limit}
        if pagination.style == "next":
            following = _at_path(body, pagination.next_path)
            if following is None or following == "":
                return None
            if pagination.cursor_param and not isinstance(following, dict | list):
                return base, {pagination.cursor_param: _scalar_text(following)}
            if not pagination.cursor_param and isinstance(following, str):
                try:
                    target = base.join(following)
                except httpx.InvalidURL as exc:
                    raise SourceUnreadable(
                        self.name, f"{page}: the next link at {pagination.next_path!r} is not a valid URL"
                    ) from exc
                if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
                    # The source's credentials go with every request: never to a host it did not name.
                    raise SourceUnreadable(
                        self.name,
                        f"{page}: the next link at {pagination.next_path!r} leads to another host "
                        f"({target.scheme}://{target.host}{f':{target.port}' if target.port else ''}); "
                        "the source's credentials are sent only to the host of its url",
                    )
                return target, {}
            wanted = "a cursor" if pagination.cursor_param else "a URL"
            raise SourceUnreadable(
                self.name, f"{page}: {pagination.next_path!r} is {_json_type(following)}, not {wanted}"
            )
        return None

    @contextlib.contextmanager
    def _client_context(self) -> Iterator[httpx.Client]:
        if self.client is not None:
            yield self.client
            return
        with httpx.Client(timeout=self.config.timeout_seconds, follow_redirects=True) as client:
            yield client

    def _headers(self) -> httpx.Headers:
        # Headers, not a dict, so a declared "accept" replaces the default rather than doubling it.
        headers = httpx.Headers({"Accept": "application/json"})
        for key, value in self.config.headers.items():
            headers[key] = resolve(value, self.name, f"headers.{key}") or ""
        auth = self.config.auth
        if isinstance(auth, BearerAuth):
            headers["Authorization"] = f"Bearer {resolve(auth.token, self.name, 'auth.token')}"
        elif isinstance(auth, HeaderAuth):
            headers[auth.name] = resolve(auth.value, self.name, "auth.value") or ""
        return headers

    def _fetch(self, client: httpx.Client, page: _Page, headers: httpx.Headers) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self.config.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=lambda state: self._log_retry(page, state),
            reraise=True,
        )
        try:
            response = retrying(self._get, client, page, headers)
        except _Retryable as exc:
            attempts = self.config.max_attempts
            raise SourceUnreadable(
                self.name, f"{page}: {exc.reason} after {attempts} attempt{'s' if attempts > 1 else ''}"
            ) from exc
        try:
            return response.json()
        except ValueError as exc:
            raise SourceUnreadable(self.name, f"{page}: the body is not JSON: {exc}") from exc

    def _get(self, client: httpx.Client, page: _Page, headers: httpx.Headers) -> httpx.Response:
        try:
            response = client.get(page.url, headers=headers, timeout=self.config.timeout_seconds)
        except httpx.UnsupportedProtocol as exc:
            # A URL without http(s):// will not get one by asking again.
            raise SourceUnreadable(self.name, f"{page}: {exc}") from exc
        except httpx.TransportError as exc:
            # httpx's transport messages name the failure, not the request, so they carry no secret.
            raise _Retryable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
        status = response.status_code
        if response.is_success:
            return response
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", _retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise SourceUnreadable(
                self.name, f"{page}: HTTP {status}: the API refused the authentication ({self._auth_shown()})"
            )
        raise SourceUnreadable(self.name, f"{page}: HTTP {status} {response.reason_phrase}".rstrip())

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return min(error.retry_after, self.retry_after_max)
        return self._backoff(state)

    def _log_retry(self, page: _Page, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log_event(
            logger,
            "source_page_retry",
            f"{page}: {getattr(error, 'reason', error)}; attempt {state.attempt_number} of "
            f"{self.config.max_attempts}, retrying in {wait:.2f}s",
            level=logging.WARNING,
            source=self.name,
            page=page.number,
        )

    def _auth_shown(self) -> str:
        """The configured auth in words, naming where a secret comes from but never its value."""
        auth = self.config.auth
        if auth is None:
            return "no auth is configured"
        secret = auth.token if isinstance(auth, BearerAuth) else auth.value
        origin = (
            f"from the environment variable {secret.env}" if isinstance(secret, EnvSecret) else "as written"
        )
        if isinstance(auth, BearerAuth):
            return f"auth: a bearer token {origin}"
        return f"auth: header {auth.name!r} {origin}"

    def _records(self, page: _Page, body: Any) -> list[dict[str, Any]]:
        path = self.config.records_path
        if path and not _has_path(body, path):
            raise SourceUnreadable(self.name, f"{page}: the body has no {path!r}")
        records = _at_path(body, path)
        where = repr(path) if path else "the body"
        if not isinstance(records, list):
            raise SourceUnreadable(
                self.name, f"{page}: {where} is {_json_type(records)}, not a list of records"
            )
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise SourceUnreadable(
                    self.name,
                    f"{page}: the record at index {index} is {_json_type(record)}, not a JSON object",
                )
        return records


def _at_path(body: Any, path: str) -> Any:
    """The value at a dotted path in a JSON body (the body itself for ``""``); None where there is none."""
    value = body
    for part in path.split(".") if path else ():
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _has_path(body: Any, path: str) -> bool:
    value = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _retry_after(header: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# -- batches -----------------------------------------------------------------------------------------
def records_to_batch(records: list[dict[str, Any]]) -> pa.RecordBatch:
    """JSON records as one batch: the union of their keys, typed where every value agrees, else text."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    if not names:
        return pa.RecordBatch.from_struct_array(pa.array([{}] * len(records), type=pa.struct([])))
    arrays = [_column([record.get(name) for record in records]) for name in names]
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _column(values: list[Any]) -> pa.Array:
    kinds = {_scalar_kind(value) for value in values if value is not None}
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {"bool"}:
        return pa.array(values, type=pa.bool_())
    if kinds == {"int"}:
        return pa.array(values, type=pa.int64())
    if kinds <= {"int", "float"}:
        return pa.array([None if value is None else float(value) for value in values], type=pa.float64())
    if kinds == {"str"}:
        return pa.array(values, type=pa.string())
    # Mixed or nested: text, so the mapper casts what fits and counts what does not.
    return pa.array([None if value is None else _scalar_text(value) for value in values], type=pa.string())


def _scalar_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        # Beyond int64 a number is kept whole as text rather than rounded through a float.
        return "int" if _INT64[0] <= value <= _INT64[1] else "bigint"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "nested"


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"

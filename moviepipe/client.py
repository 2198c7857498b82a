"""The extractor's HTTP API, as the CLI (and anyone scripting the pipeline) uses it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from shared.progress import EMPTY, FAILED, QUARANTINED
from shared.settings import Settings

FINAL_STATUSES = ("loaded", EMPTY, QUARANTINED, FAILED)


class ApiError(Exception):
    """The extractor answered with an error (``status`` is its HTTP status), or not at all (None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ExtractorClient:
    """Request extracts and read their progress through ``POST/GET /extracts``."""

    def __init__(self, settings: Settings, timeout: float = 30):
        headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
        self.base_url = settings.service_url("extractor")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"the extractor at {self.base_url} does not answer ({exc}); "
                "is the stack up? try `moviepipe up --detach`"
            ) from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(f"{method} {path} → {response.status_code}: {detail}", response.status_code)
        return response.json()

    def request_extract(self, source: str, *, full_refresh: bool = False) -> str:
        """Ask for an extract of ``source``; returns its extract id."""
        body: dict[str, Any] = {"source": source}
        if full_refresh:
            body["full_refresh"] = True
        return self._call("POST", "/extracts", json=body)["extract_id"]

    def sources(self) -> list[dict[str, Any]]:
        """The sources the extractor knows, with their state."""
        return self._call("GET", "/sources")["sources"]

    def extract(self, extract_id: str) -> dict[str, Any]:
        return self._call("GET", f"/extracts/{extract_id}")

    def recent(self) -> list[dict[str, Any]]:
        found = self._call("GET", "/extracts")
        return found.get("extracts", found) if isinstance(found, dict) else found

    def follow(
        self,
        extract_id: str,
        on_update: Callable[[dict[str, Any]], None],
        timeout: float = 900,
        interval: float = 0.25,
        appear_within: float = 0,
    ) -> dict[str, Any]:
        """Poll the extract until it is loaded, quarantined or failed (or ``timeout`` passes).

        An extract that began with a bundle dropped into landing (not with a request) has no record
        until the unzipper picks the bundle up; ``appear_within`` is how long an unknown id is waited for.
        """
        started = time.monotonic()
        deadline = started + timeout
        while True:
            try:
                record = self.extract(extract_id)
            except ApiError as error:
                if error.status != 404 or time.monotonic() > started + min(appear_within, timeout):
                    raise
                time.sleep(interval)
                continue
            on_update(record)
            if record.get("status") in FINAL_STATUSES:
                return record
            if time.monotonic() > deadline:
                raise ApiError(
                    f"extract {extract_id} did not finish within {timeout:.0f}s: {record.get('status')}"
                )
            time.sleep(interval)

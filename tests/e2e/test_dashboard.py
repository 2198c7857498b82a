"""The dashboard in a real headless Chromium, after a real extract: charts drawn, numbers the warehouse's.

The browser may reach nothing but the dashboard: a page that needs the network (a script or style
from a CDN) fails here. Screenshots of both pages go to ``docs/``, where README.md shows them.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from moviepipe.client import ExtractorClient
from shared.aws import client
from shared.warehouse import query

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = Path(__file__).resolve().parents[2] / "docs"
QUARANTINED_ID = "20261127T000000Z-dead0001"


def rows_of(settings, sql: str) -> list[dict]:
    columns, rows = query(settings, sql)
    return [dict(zip([column.upper() for column in columns], row, strict=True)) for row in rows]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "the browser test needs Chromium: apt-get install chromium chromium-driver"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def quarantined_bundle(stack_settings) -> str:
    """A bundle that is not a zip, dropped into landing by hand and followed until it is quarantined."""
    client("s3", stack_settings).put_object(
        Bucket=stack_settings.bucket("landing"), Key=f"imdb/{QUARANTINED_ID}.zip", Body=b"not a zip at all"
    )
    record = ExtractorClient(stack_settings).follow(
        QUARANTINED_ID, lambda _: None, timeout=60, appear_within=30
    )
    assert record["status"] == "quarantined", record
    return QUARANTINED_ID


class OfflinePage:
    """A browser page that may load only the dashboard: every other request is refused and recorded."""

    def __init__(self, browser, base_url: str):
        self.origin = urlsplit(base_url).netloc
        self.base_url = base_url
        self.refused: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.route("**/*", self._route)
        self.page.on("requestfailed", lambda request: self.failed.append(request.url))
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route) -> None:
        if urlsplit(route.request.url).netloc == self.origin:
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def open(self, path: str, until: str, timeout: float = 30):
        """Load ``path`` until the CSS selector ``until`` is on it (a page's data is kept a few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.page.goto(f"{self.base_url}{path}", wait_until="load")
            assert response is not None and response.status == 200, f"{path}: {response and response.status}"
            if self.page.locator(until).count() or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert self.page.locator(until).count(), f"{path} never showed {until}"
        assert not self.refused, f"{path} asked the network for {self.refused}: it must render offline"
        assert not self.failed and not self.errors, f"{path}: failed {self.failed}, errors {self.errors}"
        assert self.page.locator("[data-failed]").count() == 0, self.page.locator(
            "[data-failed]"
        ).all_inner_texts()
        return self.page

    def chart(self, name: str) -> list[dict[str, str | None]]:
        """The data points of chart ``name``, as their data attributes; it must be drawn and non-empty."""
        svg = self.page.locator(f'svg[data-chart="{name}"]')
        assert svg.count() == 1, f"chart {name} is not drawn (no data or not rendered)"
        assert svg.bounding_box()["width"] > 100, f"chart {name} has no size on screen"
        points = svg.locator("[data-value]")
        assert points.count() > 0, f"chart {name} is empty"
        attributes = ("data-label", "data-value", "data-row", "data-column", "data-key", "data-x")
        return points.evaluate_all(
            "(elements, names) => elements.map("
            "e => Object.fromEntries(names.map(n => [n, e.getAttribute(n)])))",
            list(attributes),
        )

    def metric(self, key: str) -> int:
        return int(self.page.locator(f'[data-metric="{key}"]').get_attribute("data-value"))

    def table(self, name: str) -> list[list[str]]:
        return self.page.locator(f'table[data-table="{name}"] tbody tr').evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
        )

    def screenshot(self, name: str) -> None:
        DOCS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(DOCS / name), full_page=True)


def test_the_analytics_page_charts_what_the_warehouse_holds(stack_settings, loaded_extract, browser):
    # GIVEN a loaded IMDb extract
    _, record = loaded_extract
    assert record["status"] == "loaded", record
    # WHEN the analytics page is opened in a browser that can reach nothing else
    page = OfflinePage(browser, stack_settings.service_url("dashboard"))
    page.open("/analytics", until='svg[data-chart="ratings-by-genre-decade"]')

    # THEN the key numbers are the star schema's
    (counts,) = rows_of(
        stack_settings,
        "SELECT (SELECT COUNT(*) FROM MOVIES.ANALYTICS.DIM_MOVIE WHERE IS_CURRENT AND NOT IS_DELETED) "
        "AS CURRENT, (SELECT COUNT(*) FROM MOVIES.ANALYTICS.DIM_MOVIE) AS VERSIONS",
    )
    assert page.metric("movies-current") == counts["CURRENT"] > 50_000
    assert page.metric("movie-versions") == counts["VERSIONS"]

    # AND every heatmap cell is the view's vote-weighted rating for its genre and decade
    expected = {
        (row["GENRE"], row["DECADE_LABEL"]): float(row["VOTE_WEIGHTED_RATING"])
        for row in rows_of(stack_settings, "SELECT * FROM MOVIES.ANALYTICS.V_RATINGS_BY_GENRE_DECADE")
        if row["VOTE_WEIGHTED_RATING"] is not None
    }
    cells = {
        (c["data-row"], c["data-column"]): float(c["data-value"])
        for c in page.chart("ratings-by-genre-decade")
    }
    assert cells.keys() == expected.keys()
    assert all(math.isclose(cells[key], expected[key], rel_tol=1e-9) for key in expected)

    # AND the movies-by-genre bars sum the view's movies per genre
    by_genre: dict[str, int] = {}
    for row in rows_of(
        stack_settings, "SELECT GENRE, MOVIES FROM MOVIES.ANALYTICS.V_RATINGS_BY_GENRE_DECADE"
    ):
        by_genre[row["GENRE"]] = by_genre.get(row["GENRE"], 0) + int(row["MOVIES"])
    assert {bar["data-label"]: int(bar["data-value"]) for bar in page.chart("movies-by-genre")} == by_genre

    # AND the top movies, charted and listed, are the view's, in its order
    top = rows_of(
        stack_settings,
        "SELECT RANK, TITLE, WEIGHTED_RATING FROM MOVIES.ANALYTICS.V_TOP_MOVIES ORDER BY RANK, TITLE",
    )
    shown = page.table("top-movies")
    assert [row[1] for row in shown] == [row["TITLE"] for row in top[: len(shown)]] and len(shown) >= 10
    bars = page.chart("top-movies")
    assert [float(bar["data-value"]) for bar in bars] == pytest.approx(
        [float(row["WEIGHTED_RATING"]) for row in top[: len(bars)]]
    )

    # AND each budget point is a movie of the view, at its budget and rating
    budgets = {
        row["MOVIE_KEY"]: (float(row["BUDGET"]), float(row["RATING"]))
        for row in rows_of(
            stack_settings,
            "SELECT MOVIE_KEY, BUDGET, RATING FROM MOVIES.ANALYTICS.V_BUDGET_VS_RATING "
            "WHERE RATING IS NOT NULL",
        )
    }
    points = page.chart("budget-vs-rating")
    assert len(points) >= min(100, len(budgets))
    for point in points:
        budget, rating = budgets[point["data-key"]]
        assert (float(point["data-x"]), float(point["data-value"])) == pytest.approx((budget, rating))

    # AND the latest changes are listed
    assert page.table("latest-changes")
    page.screenshot("dashboard-analytics.png")


def test_the_pipeline_page_shows_extracts_rejects_quarantine_alerts_and_dlqs(
    stack_settings, loaded_extract, quarantined_bundle, browser
):
    # GIVEN a loaded extract and a quarantined bundle
    extract_id, _ = loaded_extract
    # WHEN the pipeline page is opened
    page = OfflinePage(browser, stack_settings.service_url("dashboard"))
    page.open("/pipeline", until=f'table[data-table="quarantine"] td:text-is("{quarantined_bundle}")')

    # THEN both extracts are in the list with their status, and drawn on the timeline
    statuses = {row[0]: row[2] for row in page.table("extracts") if row and row[0]}
    assert statuses[extract_id] == "loaded" and statuses[quarantined_bundle] == "quarantined"
    lanes = {span["data-label"] for span in page.chart("extract-timeline")}
    assert any(extract_id in lane for lane in lanes), lanes

    # AND the reconciliation table says the extract reconciled, as AUDIT.BATCHES does
    (batch,) = rows_of(
        stack_settings,
        f"SELECT STATUS, ROWS_LOADED FROM MOVIES.AUDIT.BATCHES WHERE EXTRACT_ID = '{extract_id}'",
    )
    row = page.page.locator(f'table[data-table="batches"] tr[data-extract="{extract_id}"]')
    assert batch["STATUS"] == "RECONCILED"
    assert row.locator("[data-status]").get_attribute("data-status") == batch["STATUS"]
    assert f"{batch['ROWS_LOADED']:,}" in row.inner_text()

    # AND rejects by reason are AUDIT.REJECTS grouped
    rejects = rows_of(
        stack_settings, "SELECT REASON, FIELD, COUNT(*) AS N FROM MOVIES.AUDIT.REJECTS GROUP BY REASON, FIELD"
    )
    assert page.metric("rows-rejected") == sum(int(row["N"]) for row in rejects)
    if rejects:
        shown = {(row[0], row[1] or None): int(row[2].replace(",", "")) for row in page.table("rejects")}
        assert shown == {(row["REASON"], row["FIELD"]): int(row["N"]) for row in rejects}
        assert page.chart("rejects-by-reason")

    # AND the quarantined bundle is listed with its reason, and its alert with how to replay it
    quarantined = [row for row in page.table("quarantine") if quarantined_bundle in row]
    assert len(quarantined) == 1 and "CORRUPT_ZIP" in quarantined[0]
    alerts = [row for row in page.table("alerts") if quarantined_bundle in row]
    assert len(alerts) == 1 and "CORRUPT_ZIP" in alerts[0]
    assert any(f"moviepipe replay {quarantined_bundle}" in cell for cell in alerts[0])
    assert page.chart("alerts-by-code")

    # AND each DLQ's depth is the queue's own
    sqs = client("sqs", stack_settings)
    depths = {}
    for bar in page.chart("dead-letter-depths"):
        url = sqs.get_queue_url(QueueName=stack_settings.dead_letter_queue(bar["data-label"]))["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        depths[bar["data-label"]] = (
            int(bar["data-value"]),
            int(attributes["Attributes"]["ApproximateNumberOfMessages"]),
        )
    assert depths and all(shown == actual for shown, actual in depths.values()), depths
    page.screenshot("dashboard-pipeline.png")

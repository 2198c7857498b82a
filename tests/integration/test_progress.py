"""The progress record against a real moto server: each write is one update, and stages keep their times."""

from __future__ import annotations

import time

import pytest

from shared.progress import FAILED, RUNNING, SUCCEEDED, ExtractProgress

pytestmark = pytest.mark.integration


def test_a_stage_write_is_one_update_that_keeps_when_the_stage_started(provisioned):
    # GIVEN an extract's record, and a progress store that would fail any read while a stage writes
    progress = ExtractProgress(provisioned)
    progress.begin("e-1", "imdb")
    calls: list[str] = []
    dynamodb = progress.dynamodb

    class Writes:
        """Only updates pass; a get (read-then-write) would fail the test."""

        def update_item(self, **kwargs):
            calls.append("update_item")
            return dynamodb.update_item(**kwargs)

    progress.dynamodb = Writes()

    # WHEN a stage starts, then finishes, then another stage starts and fails
    progress.record("e-1", "unzipper", RUNNING)
    progress.record("e-1", "unzipper", SUCCEEDED, counts={"extracted": 3})
    progress.record("e-1", "transformer", RUNNING)
    progress.record("e-1", "transformer", FAILED, error={"code": "X", "message": "boom"})

    # THEN each write was one update, with no read before it
    assert calls == ["update_item"] * 4
    # AND each stage says when it started (its RUNNING write) and when it finished
    progress.dynamodb = dynamodb
    record = progress.get("e-1")
    unzipper, transformer = record["stages"]["unzipper"], record["stages"]["transformer"]
    assert unzipper["status"] == SUCCEEDED and unzipper["counts"] == {"extracted": 3}
    assert unzipper["started_at"] is not None and unzipper["started_at"] <= unzipper["at"]
    assert transformer["status"] == FAILED and transformer["started_at"] <= transformer["at"]
    assert record["status"] == FAILED


def test_a_stage_finished_without_starting_has_no_start_and_a_rerun_starts_again(provisioned):
    # GIVEN a stage that records an outcome with no RUNNING before it (a replay that found work done)
    progress = ExtractProgress(provisioned)
    progress.begin("e-2", "imdb")
    progress.record("e-2", "loader", SUCCEEDED)
    assert progress.get("e-2")["stages"]["loader"]["started_at"] is None

    # WHEN it runs again
    progress.record("e-2", "loader", RUNNING)
    first = progress.get("e-2")["stages"]["loader"]["started_at"]
    progress.record("e-2", "loader", RUNNING)
    progress.record("e-2", "loader", SUCCEEDED)

    # THEN its start is the latest RUNNING write
    loader = progress.get("e-2")["stages"]["loader"]
    assert loader["started_at"] >= first and loader["status"] == SUCCEEDED


def test_news_of_a_running_stage_does_not_move_its_start(provisioned):
    # GIVEN a stage that started
    progress = ExtractProgress(provisioned)
    progress.begin("e-3", "imdb")
    progress.record("e-3", "extractor", RUNNING)
    started = progress.get("e-3")["stages"]["extractor"]["started_at"]

    # WHEN it reports rows read so far, later, then finishes
    time.sleep(0.01)
    progress.record("e-3", "extractor", RUNNING, counts={"extracted": 500_000}, begins=False)
    reported = progress.get("e-3")["stages"]["extractor"]
    progress.record("e-3", "extractor", SUCCEEDED, counts={"extracted": 1_000_000})

    # THEN the record shows the rows so far, and the stage's start is still when it began
    assert reported["counts"] == {"extracted": 500_000} and reported["at"] > started
    extractor = progress.get("e-3")["stages"]["extractor"]
    assert extractor["started_at"] == started and extractor["status"] == SUCCEEDED


def test_a_slow_attempt_finishing_late_does_not_overwrite_a_newer_word(provisioned, monkeypatch):
    # GIVEN a stage that succeeded (a redelivery or replay), and an older attempt still running
    progress = ExtractProgress(provisioned)
    progress.begin("e-3", "imdb")
    assert progress.record("e-3", "transformer", SUCCEEDED, counts={"clean": 1})
    # WHEN the older attempt writes with the time it had (before the success)
    monkeypatch.setattr("shared.progress.now", lambda: "2000-01-01T00:00:00.000+00:00")
    assert progress.record("e-3", "transformer", FAILED, error={"code": "X", "message": "late"}) is False
    # THEN the newer word stands; and asking to begin the extract again changes nothing
    monkeypatch.undo()
    progress.begin("e-3", "other")
    record = progress.get("e-3")
    assert record["stages"]["transformer"]["status"] == SUCCEEDED and record["source"] == "imdb"


def test_recent_extracts_come_from_the_index_newest_first(provisioned):
    # GIVEN requested extracts of two sources, and one a stage recorded without a request
    progress = ExtractProgress(provisioned)
    for extract_id, source in (("r-1", "imdb"), ("r-2", "other"), ("r-3", "imdb")):
        progress.begin(extract_id, source)
        time.sleep(0.005)  # times are in milliseconds: keep the order unambiguous
    progress.record("r-4", "unzipper", RUNNING, source="dropped")
    calls: list[str] = []
    dynamodb = progress.dynamodb

    class Queries:
        """Only index queries pass; a scan would fail the test."""

        def query(self, **kwargs):
            calls.append(kwargs["IndexName"])
            return dynamodb.query(**kwargs)

    progress.dynamodb = Queries()
    # THEN the newest come first, limited, filtered by source through its own index
    assert [e["extract_id"] for e in progress.recent(limit=3)] == ["r-4", "r-3", "r-2"]
    assert [e["extract_id"] for e in progress.recent(source="imdb")] == ["r-3", "r-1"]
    assert [e["extract_id"] for e in progress.recent(source="dropped")] == ["r-4"]
    assert calls == ["recent", "by-source", "by-source"]

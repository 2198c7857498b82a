"""JSON log lines carry the keys CloudWatch metric filters match on, whatever the record says."""

from __future__ import annotations

import json
import logging

import pytest

from shared.logs import JsonFormatter, log_event

FILTER_KEYS = ("level", "stage", "event", "extract_id", "error_code")


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("loader"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def logged():
    logger = logging.getLogger("tests.unit.test_logs")
    handler = Captured()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler.lines
    logger.removeHandler(handler)


def test_every_line_has_the_filter_keys_null_when_unknown(logged):
    # GIVEN a logger writing JSON lines for the loader
    logger, lines = logged
    # WHEN a plain message is logged, with no pipeline fields at all
    logger.info("started")
    # THEN every key a metric filter reads is there, unknown ones null
    (line,) = lines
    assert {key: line[key] for key in FILTER_KEYS} == {
        "level": "info",
        "stage": "loader",
        "event": "started",
        "extract_id": None,
        "error_code": None,
    }


def test_an_event_names_its_extract_and_keeps_its_fields(logged):
    logger, lines = logged
    log_event(logger, "extract_loaded", extract_id="20260101T000000Z-0001abcd", rows=7, password="x")
    (line,) = lines
    assert line["event"] == "extract_loaded" and line["extract_id"] == "20260101T000000Z-0001abcd"
    assert line["rows"] == 7 and line["password"] == "***"
    assert line["error_code"] is None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"error_code": "NOT_RECONCILED"}, "NOT_RECONCILED"),
        ({"error": {"code": "HASH_MISMATCH", "message": "sha256 differs"}}, "HASH_MISMATCH"),
        ({"reason_code": "CORRUPT_ZIP"}, "CORRUPT_ZIP"),
        ({"reason": "MISSING_MANIFEST"}, "MISSING_MANIFEST"),
        ({"reason": "not an archive manifest"}, None),  # prose, not a code
        ({"error": "connection refused"}, None),
    ],
)
def test_the_error_code_comes_from_the_records_error_fields(logged, fields, code):
    logger, lines = logged
    log_event(logger, "something_failed", level=logging.ERROR, **fields)
    assert lines[0]["error_code"] == code
    assert lines[0]["level"] == "error"


def test_a_logged_exception_gives_its_code_or_its_type(logged):
    logger, lines = logged

    class CodedError(Exception):
        code = "WAREHOUSE_DOWN"

    for error in (CodedError("down"), ValueError("bad")):
        try:
            raise error
        except Exception:
            logger.exception("it failed", extra={"event": "load_attempt_failed", "error": "see traceback"})
    assert [line["error_code"] for line in lines] == ["WAREHOUSE_DOWN", "ValueError"]
    # an `error` field stays as given; the traceback goes beside it
    assert lines[1]["error"] == "see traceback" and "ValueError: bad" in lines[1]["traceback"]

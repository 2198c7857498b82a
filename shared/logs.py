"""JSON-lines logging: every line carries ``level``, ``stage``, ``event``, ``extract_id`` and ``error_code``.

``extract_id`` and ``error_code`` are always keys (null when unknown or not an error), so a CloudWatch
metric filter such as ``{ $.stage = "loader" && $.error_code = "NOT_RECONCILED" }`` can count them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_SECRET_WORDS = ("password", "token", "secret")
_CODE = re.compile(r"[A-Z][A-Z0-9_]*")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed to the logger become keys."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "stage": self.stage,
            "event": getattr(record, "event", None) or record.getMessage(),
            "extract_id": getattr(record, "extract_id", None),
            "error_code": error_code(record),
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in line:
                line[name] = "***" if any(word in name.lower() for word in _SECRET_WORDS) else value
        if record.exc_info:
            line["traceback" if "error" in line else "error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def error_code(record: logging.LogRecord) -> str | None:
    """The code of the error a record reports, or None if it reports none.

    From, in order: an ``error_code`` field, the ``code`` of an ``error`` dict, a ``reason_code`` field,
    a ``reason`` field that is a code (``HASH_MISMATCH``, not prose), the ``code`` of the logged
    exception, else the exception's class name.
    """
    explicit = getattr(record, "error_code", None)
    if explicit:
        return str(explicit)
    error = getattr(record, "error", None)
    if isinstance(error, dict) and error.get("code"):
        return str(error["code"])
    reason_code = getattr(record, "reason_code", None)
    if reason_code:
        return str(reason_code)
    reason = getattr(record, "reason", None)
    if reason is not None and _CODE.fullmatch(str(reason)):
        return str(reason)
    if record.exc_info and record.exc_info[1] is not None:
        code = getattr(record.exc_info[1], "code", None)
        return code if isinstance(code, str) and code else type(record.exc_info[1]).__name__
    return None


def configure_logging(stage: str, level: str = "INFO") -> None:
    """Send this process's logs to stderr as JSON lines tagged with ``stage``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(stage))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "aiobotocore", "py4j", "snowflake", "s3fs", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_event(logger: logging.Logger, event: str, message: str = "", *, level: int = logging.INFO, **fields):
    """Log one pipeline event with structured fields."""
    logger.log(level, message or event.replace("_", " "), extra={"event": event, **fields})

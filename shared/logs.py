"""JSON-lines logging: every line carries ``stage`` and ``event``, and ``extract_id`` when known."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_SECRET_WORDS = ("password", "token", "secret")


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
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in line:
                line[name] = "***" if any(word in name.lower() for word in _SECRET_WORDS) else value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


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

"""The unzipper's AWS Lambda entry point: ``handler(event, context)``.

Accepts an S3 event notification, or an SQS event wrapping S3 notifications (then answers with
``{"batchItemFailures": [...]}`` so only failed messages are retried). Bad bundles are quarantined and
count as handled; infrastructure failures raise, and SQS retries them and finally dead-letters them.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from services.unzipper.settings import unzipper_settings
from services.unzipper.unzip import Unzipper
from shared.batch import Handler, s3_event_handler
from shared.events import ObjectCreated
from shared.logs import configure_logging
from shared.progress import ExtractProgress
from shared.settings import Settings

logger = logging.getLogger(__name__)


def make_handler(settings: Settings, *, progress: ExtractProgress | None = None) -> Handler:
    """A Lambda-style handler unzipping into the deployment these settings name."""
    unzipper = Unzipper(settings, progress=progress)

    def process(created: ObjectCreated) -> None:
        try:
            unzipper.unzip(created)
        except Exception:
            # Not a bad bundle (those are quarantined): S3 or DynamoDB failing; the message will be retried.
            logger.warning(
                "unzipping %s failed, to be retried",
                created.uri,
                exc_info=True,
                extra={"event": "unzip_attempt_failed", "bundle": created.uri},
            )
            raise

    return s3_event_handler(process)


@cache
def _lambda_handler() -> Handler:
    # Built on the first invocation, not at import: Lambda's environment is read once, then reused warm.
    settings = unzipper_settings()
    configure_logging("unzipper", settings.log_level)
    return make_handler(settings)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """AWS Lambda entry point (settings from the environment)."""
    return _lambda_handler()(event, context)

"""One unzip per bundle version, however many workers receive its event: Powertools' idempotency utility.

The record is keyed by the landed object's bucket, key and ETag (a new upload under the same key is a new
bundle). Its life is Powertools' small state machine: ``INPROGRESS`` while a worker unzips, ``COMPLETED``
with an expiry once it finished (a replay then gets the stored outcome without running), deleted when the
unzip raised, so a retry can run. An in-progress record carries a lease (``lease_seconds``) that a
heartbeat renews while the worker lives; a worker killed mid-bundle stops renewing it, and once it lapses
the redelivered event takes the bundle over.

A worker that finds the bundle in progress elsewhere waits for that run rather than failing its message:
the run either completes (then this event is a replay) or its lease lapses (then this worker takes over).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from services.unzipper.settings import UnzipperSettings
from shared.aws import client
from shared.logs import log_event

logger = logging.getLogger(__name__)

WAIT_SECONDS = 1.0
"""How often a worker waiting on another's run looks again."""


class _Lease:
    """What Powertools asks a Lambda context for: how long the work may take before others may take over."""

    def __init__(self, seconds: int):
        self.seconds = seconds

    def get_remaining_time_in_millis(self) -> int:
        return self.seconds * 1000


class OncePerBundle:
    """Runs the unzip of one bundle version once across workers; replays get the first run's outcome."""

    def __init__(self, settings: UnzipperSettings):
        self.settings = settings
        self.persistence = DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto3_client=client("dynamodb", settings)
        )

    def run(self, version: dict[str, str], work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """``work()``'s result and True, or, when this version was already done, the stored result and False.

        ``version`` (bucket, key, etag) is the idempotency key. Waits while another worker holds it.
        """
        ran = False

        def unzip_bundle(bundle: dict[str, str]) -> dict[str, Any]:
            nonlocal ran
            ran = True
            with self._renewing(bundle):
                return work()

        config = IdempotencyConfig(expires_after_seconds=self.settings.idempotency_seconds)
        config.register_lambda_context(_Lease(self.settings.lease_seconds))
        once = idempotent_function(
            unzip_bundle, data_keyword_argument="bundle", persistence_store=self.persistence, config=config
        )
        uri = f"s3://{version['bucket']}/{version['key']}"
        waited_since = None
        while True:
            try:
                return once(bundle=version), ran
            except IdempotencyAlreadyInProgressError:
                if waited_since is None:
                    waited_since = time.monotonic()
                    log_event(
                        logger,
                        "bundle_in_progress_elsewhere",
                        f"another worker is unzipping {uri}; waiting for it",
                        bundle=uri,
                    )
                time.sleep(WAIT_SECONDS)

    @contextmanager
    def _renewing(self, bundle: dict[str, str]) -> Iterator[None]:
        """Renew this run's lease every third of it until the work ends."""
        stop = threading.Event()
        key = self.persistence.get_record(data=bundle).idempotency_key
        dynamodb = client("dynamodb", self.settings)

        def renew() -> None:
            while not stop.wait(self.settings.lease_seconds / 3):
                until = int((time.time() + self.settings.lease_seconds) * 1000)
                try:
                    dynamodb.update_item(
                        TableName=self.settings.idempotency_table,
                        Key={self.persistence.key_attr: {"S": key}},
                        UpdateExpression="SET #lease = :until",
                        ConditionExpression="#status = :in_progress",
                        ExpressionAttributeNames={
                            "#lease": self.persistence.in_progress_expiry_attr,
                            "#status": self.persistence.status_attr,
                        },
                        ExpressionAttributeValues={
                            ":until": {"N": str(until)},
                            ":in_progress": {"S": "INPROGRESS"},
                        },
                    )
                except Exception as exc:  # the next renewal may work; the run itself goes on
                    logger.warning("could not renew the lease of %s: %s", key, exc)

        renewer = threading.Thread(target=renew, name="unzip lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()

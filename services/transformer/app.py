"""The transformer service: consumes its queue, runs the transform per extract, serves health and metrics.

Run it with ``uvicorn services.transformer.app:app``. The runner warms up in the background at startup
(DuckDB, or the Spark session when ``MOVIEPIPE_TRANSFORM_RUNNER=local``), so ``/health`` answers at once
and ``/ready`` reports the engine once it is warm.
"""

from __future__ import annotations

import logging
import threading

from services.transformer.handler import STAGE, make_handler, transformer_metrics
from services.transformer.runner import make_runner
from services.transformer.settings import transformer_settings
from shared.logs import log_event
from shared.service import bucket_check, create_service, queue_check, table_check

logger = logging.getLogger(__name__)

READY_CHECK = {"glue": "glue", "local": "spark", "duckdb": "duckdb", "auto": "duckdb"}
"""What ``/ready`` calls the runner's own check: what the runner needs warm before the first batch."""

settings = transformer_settings()
runner = make_runner(settings)


def warm_up_in_background() -> None:
    """Warm the runner (Spark, or DuckDB) without holding up startup; the first extract then finds it warm."""

    def warm_up() -> None:
        try:
            runner.warm_up()
        except Exception as exc:  # /ready keeps saying why, and the first job starts Spark again
            log_event(logger, "warm_up_failed", str(exc), level=logging.ERROR)

    threading.Thread(target=warm_up, name="spark-warm-up", daemon=True).start()


app = create_service(
    STAGE,
    settings,
    transformer_metrics(),
    handler=make_handler(settings, runner),
    ready_checks={
        "processed_bucket": bucket_check(settings, "processed"),
        "archive_bucket": bucket_check(settings, "archive"),
        "quarantine_bucket": bucket_check(settings, "quarantine"),
        "queue": queue_check(settings, STAGE),
        "extracts_table": table_check(settings),
        READY_CHECK[settings.transform_runner]: runner.check,
    },
    on_startup=warm_up_in_background,
)

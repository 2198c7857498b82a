"""How the transform's Spark is configured, wherever it runs: the warm local session and a Glue job run.

Kept apart from ``glue_job`` so that what submits Glue runs needs no pyspark (the transformer's image in
AWS has none: Spark runs in Glue).
"""

from __future__ import annotations

SPARK_CONF = {
    "spark.sql.ansi.enabled": "false",
    # When a stage turns out empty (a batch with no clean row), adaptive execution replaces the rest of
    # the plan with an empty relation and drops the observation of the counts with it: its get() would
    # then wait forever.
    "spark.sql.adaptive.optimizer.excludedRules": (
        "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"
    ),
}
"""Session settings the job's semantics depend on (ANSI mode is off in Spark 3.5 but on in 4.x)."""

JVM_OPTIONS = "-XX:-DontCompileHugeMethods"
"""The transform's generated code has methods over HotSpot's 8,000-byte limit for compiling them, so
by default they stay interpreted; compiling them halves the job's time (1,000,000 rows, warm: 46 s → 23 s
on the 2-core bench machine). Set where this process starts the JVM; a Glue job takes it as ``--conf``."""
LAUNCH_CONF = {"spark.driver.extraJavaOptions": JVM_OPTIONS, "spark.executor.extraJavaOptions": JVM_OPTIONS}
"""Settings that only take effect when the JVM starts."""
GLUE_CONF_ARGUMENT = " --conf ".join(f"{key}={value}" for key, value in LAUNCH_CONF.items())
"""``LAUNCH_CONF`` as a Glue job's ``--conf`` argument (Glue reads further pairs joined by ``--conf``)."""

"""The local Spark runner starts a new session when the JVM under its session dies.

Run in a process of its own: pyspark allows one JVM per process, and the test session's shared Spark must
not be the one killed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, tempfile
    from pathlib import Path

    from services.transformer.glue_job import transform
    from services.transformer.runner import LocalSparkRunner, WARM_UP_ROWS, session_alive, warm_up_csv
    from services.transformer.settings import transformer_settings
    from shared.logs import configure_logging

    configure_logging("transformer", "INFO")
    runner = LocalSparkRunner(transformer_settings())
    first = runner.spark
    jvm = first.sparkContext._gateway.proc.pid
    os.kill(jvm, signal.SIGKILL)
    os.waitpid(jvm, 0)
    dead = session_alive(first)
    second = runner.spark
    with tempfile.TemporaryDirectory() as tmp:
        movies = Path(tmp) / "movies.csv"
        movies.write_text(warm_up_csv())
        counts = transform(
            second, input_path=str(movies), extract_id="after-death", expected_rows=WARM_UP_ROWS,
            output=(Path(tmp) / "out").as_uri(),
        )
    print(json.dumps({
        "alive_after_kill": dead,
        "new_jvm": second.sparkContext._gateway.proc.pid != jvm,
        "extracted": counts.extracted,
        "rows": WARM_UP_ROWS,
    }))
    """
)


def test_a_job_after_the_jvm_died_runs_on_a_new_session():
    # GIVEN a local Spark runner whose session's JVM is SIGKILLed
    # WHEN the next job asks the runner for its session
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # THEN the dead session was seen as dead, a new JVM runs the job, and the job transforms every row
    assert found["alive_after_kill"] is False
    assert found["new_jvm"] is True
    assert found["extracted"] == found["rows"]
    # AND the runner said what happened
    assert "spark_session_lost" in done.stdout + done.stderr

"""The local stack behaves like ECS: a process that dies is started again, the others run on; and what
it holds survives `moviepipe down` and `moviepipe up`."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from moviepipe import stack
from moviepipe.client import ExtractorClient
from shared.aws import client
from shared.events import s3_notification
from tests.e2e.conftest import run_cli
from tests.e2e.test_pipeline import messages, scalar

pytestmark = pytest.mark.e2e


def processes(settings) -> dict[str, dict]:
    state = stack.read_state(settings)
    assert state is not None, "stack.json is missing while the stack runs"
    return {process["name"]: process for process in state["processes"]}


def test_a_killed_service_is_started_again_and_the_pipeline_goes_on(stack_settings, loaded_extract):
    # GIVEN the running stack, every process up
    before = processes(stack_settings)
    assert {name: p["state"] for name, p in before.items()} == dict.fromkeys(before, "running")

    # WHEN the loader is killed outright
    os.kill(before["loader"]["pid"], signal.SIGKILL)

    # THEN the stack starts it again, on its port, and it answers ready
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        loader = processes(stack_settings)["loader"]
        if loader["state"] == "running" and stack.answers(f"{stack_settings.service_url('loader')}/ready"):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the loader was not started again: {processes(stack_settings)['loader']}")
    assert (loader["restarts"], loader["last_exit"]) == (1, -signal.SIGKILL)
    assert loader["pid"] != before["loader"]["pid"]
    # AND nothing else was restarted
    after = processes(stack_settings)
    for name, process in before.items():
        if name != "loader":
            assert (after[name]["pid"], after[name]["restarts"]) == (process["pid"], 0), name

    # AND an extract requested now goes through every stage, the new loader loading it
    client = ExtractorClient(stack_settings)
    record = client.follow(client.request_extract("imdb"), lambda _: None, timeout=300)
    assert record["status"] == "loaded"
    assert (
        record["stages"]["loader"]["counts"]["loaded"]
        == loaded_extract[1]["stages"]["loader"]["counts"]["loaded"]
    )

    # AND `moviepipe status` shows the restart
    shown = run_cli(stack_settings, "status", columns=200)
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if " loader " in f" {line} ")
    assert "running" in row and " 1 " in row and "-9" in row


def test_down_then_up_keeps_buckets_and_tables_and_the_warehouse_agrees(stack_settings, loaded_extract):
    # GIVEN the stack after a loaded extract: what its buckets, tables and warehouse hold
    extract_id, _ = loaded_extract
    s3 = client("s3", stack_settings)

    def keys() -> dict[str, set[str]]:
        return {
            role: {
                item["Key"]
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack_settings.bucket(role))
                for item in page.get("Contents", [])
            }
            for role in ("landing", "processed", "archive", "quarantine")
        }

    before = keys()
    rows_before = scalar(stack_settings, "SELECT COUNT(*) FROM MOVIES.RAW.MOVIES")
    assert before["archive"] and before["landing"]

    # WHEN it is stopped and started again, as a user does with `moviepipe down` and `moviepipe up`
    assert stack.stop_detached(stack_settings, lambda _: None)
    stack.start_detached(stack_settings, lambda _: None)

    # THEN the buckets hold what they held, the extract's progress is still known, the warehouse agrees
    assert keys() == before
    record = ExtractorClient(stack_settings).extract(extract_id)
    assert record["status"] == "loaded"
    assert scalar(stack_settings, "SELECT COUNT(*) FROM MOVIES.RAW.MOVIES") == rows_before
    # AND the extract's archived manifest, announced again, loads nothing twice and fails nothing
    archive_manifest = next(key for key in before["archive"] if key.endswith(f"{extract_id}/manifest.json"))
    succeeded, failed = messages(stack_settings, "loader")
    sqs = client("sqs", stack_settings)
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName=stack_settings.queue("loader"))["QueueUrl"],
        MessageBody=json.dumps(s3_notification(stack_settings.bucket("archive"), archive_manifest)),
    )
    deadline = time.monotonic() + 60
    while messages(stack_settings, "loader") == (succeeded, failed) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert messages(stack_settings, "loader") == (succeeded + 1, failed)
    assert scalar(stack_settings, "SELECT COUNT(*) FROM MOVIES.RAW.MOVIES") == rows_before

"""The local stack's plan, and how the benchmark reads timings off an extract's progress record."""

import json
import os

import pytest

from moviepipe import stack
from moviepipe.bench import timings
from shared.settings import Settings


def test_stack_starts_aws_then_warehouse_then_every_service_then_the_dashboard_on_its_port(tmp_path):
    # GIVEN
    settings = Settings(home=tmp_path, extractor_port=9101, loader_port=9104, dashboard_port=9100)
    # WHEN
    planned = stack.components(settings)
    # THEN
    assert [c.name for c in planned] == [
        "moto",
        "warehouse",
        "extractor",
        "unzipper",
        "transformer",
        "loader",
        "dashboard",
    ]
    ports = {c.name: c.port for c in planned}
    assert ports["extractor"] == 9101 and ports["loader"] == 9104 and ports["moto"] == 4566
    assert "services.loader.app:app" in planned[-2].argv
    dashboard = planned[-1]
    assert "services.dashboard.app:app" in dashboard.argv and "9100" in dashboard.argv
    assert dashboard.ready_path == "/ready" and dashboard.url(settings) == "http://127.0.0.1:9100"


def test_the_stack_is_up_only_when_the_dashboard_answers_too(tmp_path, monkeypatch):
    # GIVEN every service ready but the dashboard
    settings = Settings(home=tmp_path)
    dashboard = f"{settings.service_url('dashboard')}/ready"
    monkeypatch.setattr(stack, "answers", lambda url, timeout=1.0: url != dashboard)
    # THEN the stack is not up
    assert not stack.is_up(settings)
    # WHEN the dashboard answers as well, THEN it is
    monkeypatch.setattr(stack, "answers", lambda url, timeout=1.0: True)
    assert stack.is_up(settings)


def test_children_get_the_resolved_settings(tmp_path):
    settings = Settings(home=tmp_path, prefix="acme", warehouse_port=9190)
    env = stack.child_environment(settings)
    assert env["MOVIEPIPE_PREFIX"] == "acme"
    assert env["MOVIEPIPE_WAREHOUSE_PORT"] == "9190"
    assert env["MOVIEPIPE_DASHBOARD_PORT"] == "8000"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["MOVIEPIPE_HOME"] == str(tmp_path.resolve())


def test_no_stack_is_running_from_an_empty_home(tmp_path):
    assert stack.running_pid(Settings(home=tmp_path)) is None
    assert stack.stop_detached(Settings(home=tmp_path), lambda _: None) is False


def test_a_pid_file_read_while_it_is_written_is_left_for_the_stack(tmp_path):
    # GIVEN `up --detach` polling while the stack writes its pid file: seen empty, then whole
    settings = Settings(home=tmp_path)
    stack.pid_file(settings).write_text("")
    # THEN the empty file names no stack, and is not taken for a stale one and removed (the stack
    # would then be up with no pid file: never seen as up, never stopped by `down`)
    assert stack.running_pid(settings) is None and stack.pid_file(settings).exists()
    stack.pid_file(settings).write_text(str(os.getpid()))
    assert stack.running_pid(settings) == os.getpid()
    # AND a pid file of a process that is gone is stale, and removed
    stack.pid_file(settings).write_text("999999999")
    assert stack.running_pid(settings) is None and not stack.pid_file(settings).exists()


def test_bench_timings_split_work_from_waiting():
    # GIVEN a record whose stages each took one second, with half a second between them
    def entry(start, end):
        return {
            "status": "succeeded",
            "started_at": f"2026-01-01T00:00:{start:06.3f}+00:00",
            "at": f"2026-01-01T00:00:{end:06.3f}+00:00",
        }

    record = {
        "requested_at": "2026-01-01T00:00:00.000+00:00",
        "stages": {
            "extractor": entry(0.5, 1.5),
            "unzipper": entry(2.0, 3.0),
            "transformer": entry(3.5, 4.5),
            "loader": entry(5.0, 6.0),
        },
    }
    # WHEN
    measured = timings(record)
    # THEN
    assert measured["extractor"] == measured["loader"] == 1.0
    assert measured["between stages"] == 2.0
    assert measured["total"] == 6.0


# -- replicas and supervision ----------------------------------------------------------------------


def test_replicas_are_given_per_stage_or_for_every_stage():
    assert stack.parse_replicas(None) == dict.fromkeys(stack.SERVICES, 1)
    assert stack.parse_replicas("2") == dict.fromkeys(stack.SERVICES, 2)
    assert stack.parse_replicas("unzipper=3, loader=2") == {
        "extractor": 1,
        "unzipper": 3,
        "transformer": 1,
        "loader": 2,
    }
    for wrong, complaint in (("dashboard=2", "not a stage"), ("loader=0", "a count"), ("x", "a count")):
        with pytest.raises(stack.StackError, match=complaint):
            stack.parse_replicas(wrong)


def test_a_replica_listens_ten_ports_up_and_runs_the_same_app(tmp_path):
    # GIVEN two loaders
    settings = Settings(home=tmp_path, loader_port=9104)
    # WHEN the stack is planned
    planned = {c.name: c for c in stack.components(settings, {"loader": 2})}
    # THEN the second is loader-2, on 9114, running the loader's app
    assert planned["loader"].port == 9104 and planned["loader-2"].port == 9114
    assert planned["loader-2"].service == "loader" and planned["loader-2"].replica == 2
    assert "services.loader.app:app" in planned["loader-2"].argv and "9114" in planned["loader-2"].argv


class FakeProcess:
    """A process that has exited with ``code`` (or still runs, ``code`` None)."""

    pid = 4242

    def __init__(self, code=None):
        self.returncode = code

    def poll(self):
        return self.returncode


def supervised(tmp_path, monkeypatch):
    """A stack whose processes are fakes: launching one makes a running fake; alerts are collected."""
    settings = Settings(home=tmp_path)
    (tmp_path / "logs").mkdir()
    planned = stack.Stack(settings)
    for component in planned.components:
        component.process, component.started_at, component.started_wall = FakeProcess(), 0.0, 0.0

    def launch(component):
        component.process, component.started_at, component.started_wall = FakeProcess(), now[0], 0.0

    now = [0.0]
    alerts = []
    monkeypatch.setattr(planned, "_launch", launch)
    monkeypatch.setattr(planned, "_alert_crash_loop", lambda component, log: alerts.append(component.name))
    return planned, now, alerts


def by_name(planned, name):
    return next(c for c in planned.components if c.name == name)


def test_a_process_that_dies_is_started_again_after_its_back_off_and_the_rest_run_on(tmp_path, monkeypatch):
    # GIVEN a supervised stack, every process running
    planned, now, alerts = supervised(tmp_path, monkeypatch)
    loader = by_name(planned, "loader")
    others = {c.name: c.process for c in planned.components if c.name != "loader"}

    # WHEN the loader is killed (SIGKILL: exit code -9)
    now[0] = 100.0
    loader.process = FakeProcess(-9)
    planned.check_once(now[0])

    # THEN it is not started at once, but after the first back-off; nothing else is touched
    assert loader.restart_at == 101.0 and loader.last_exit == -9
    planned.check_once(100.5)
    assert loader.restarts == 0
    planned.check_once(101.0)
    assert loader.running and loader.restarts == 1 and loader.restart_at is None
    assert {c.name: c.process for c in planned.components if c.name != "loader"} == others
    assert alerts == []
    # AND stack.json says so
    state = json.loads((tmp_path / "stack.json").read_text())
    row = next(p for p in state["processes"] if p["name"] == "loader")
    assert (row["state"], row["restarts"], row["last_exit"]) == ("running", 1, -9)


def test_a_process_that_keeps_dying_backs_off_further_and_raises_one_alert(tmp_path, monkeypatch):
    # GIVEN a supervised stack whose unzipper dies as soon as it starts
    planned, now, alerts = supervised(tmp_path, monkeypatch)
    unzipper = by_name(planned, "unzipper")
    waits = []
    for _ in range(stack.CRASH_LOOP_EXITS + 2):
        unzipper.process = FakeProcess(1)
        planned.check_once(now[0])
        waits.append(unzipper.restart_at - now[0])
        now[0] = unzipper.restart_at
        planned.check_once(now[0])

    # THEN each wait doubles up to its cap, and one alert was raised, at the fifth exit in five minutes
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert alerts == ["unzipper"]


def test_a_process_that_stayed_up_starts_again_at_the_shortest_back_off(tmp_path, monkeypatch):
    # GIVEN a transformer that died twice in a row, then ran for ten minutes
    planned, now, _ = supervised(tmp_path, monkeypatch)
    transformer = by_name(planned, "transformer")
    for _ in range(2):
        transformer.process = FakeProcess(1)
        planned.check_once(now[0])
        now[0] = transformer.restart_at
        planned.check_once(now[0])
    now[0] += 600

    # WHEN it dies again THEN it waits one second, as for a first exit
    transformer.process = FakeProcess(1)
    planned.check_once(now[0])
    assert transformer.restart_at - now[0] == 1

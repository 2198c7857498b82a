"""The local stack's plan, and how the benchmark reads timings off an extract's progress record."""

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

"""deploy/prometheus/: a scrape config and alert rules Prometheus accepts, on metrics the services expose.

With ``promtool`` (Debian package ``prometheus``; ``.ci/run`` installs it) the config and rules go
through ``promtool check`` and the rules' unit tests through ``promtool test rules``; without it, the
same tests check the files' structure instead, and warn.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

from shared.settings import STAGES, Settings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = PROMETHEUS / "rules" / "moviepipe.yml"
RULE_TESTS = PROMETHEUS / "tests" / "moviepipe_test.yml"
SERVICES = ("dashboard", *STAGES)
PROMETHEUS_OWN = {"up"}
"""Series Prometheus itself writes for every scrape, not any service."""
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}


def promtool() -> str | None:
    found = shutil.which("promtool")
    if found is None:
        warnings.warn(
            "promtool is not installed (apt-get install prometheus): checking structure only",
            stacklevel=2,
        )
    return found


def run_promtool(tool: str, *args: str | Path) -> None:
    result = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def assert_scrape_config_structure() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == ["rules/*.yml"]
    targets = {
        job["job_name"]: [target for static in job["static_configs"] for target in static["targets"]]
        for job in config["scrape_configs"]
    }
    ports = {service: Settings.model_fields[f"{service}_port"].default for service in SERVICES}
    assert targets == {service: [f"127.0.0.1:{port}"] for service, port in ports.items()}


def assert_rules_structure() -> None:
    rules = alert_rules()
    assert rules
    for rule in rules:
        assert rule["alert"].startswith("Moviepipe"), rule
        assert rule["expr"].strip(), rule
        assert rule["labels"]["severity"] in ("critical", "warning"), rule
        assert rule["annotations"]["summary"].strip(), rule
        assert (
            "moviepipe " in rule["annotations"]["description"]
            or "/ready" in (rule["annotations"]["description"])
        ), f"{rule['alert']}'s description does not say what to run"


def test_the_scrape_config_scrapes_every_service_on_its_port():
    assert_scrape_config_structure()


def test_every_alert_rule_has_a_severity_and_says_what_to_do():
    assert_rules_structure()


def test_promtool_accepts_the_scrape_config():
    tool = promtool()
    if tool is None:
        assert_scrape_config_structure()
        return
    run_promtool(tool, "check", "config", CONFIG)


def test_promtool_accepts_the_alert_rules():
    tool = promtool()
    if tool is None:
        assert_rules_structure()
        return
    run_promtool(tool, "check", "rules", RULES)


def test_the_dead_letter_alert_fires_for_a_queue_holding_a_message():
    # GIVEN the rules' unit tests, among them a DLQ holding one message for longer than 5 minutes
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    (dead_letters,) = [test for test in tests if test["name"] == "dead letters"]
    fired = [
        case
        for case in dead_letters["alert_rule_test"]
        if case["alertname"] == "MoviepipeDeadLetters" and case["exp_alerts"]
    ]
    assert fired and fired[0]["exp_alerts"][0]["exp_labels"]["stage"] == "unzipper"
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {case["alertname"] for test in tests for case in test["alert_rule_test"]} <= alerts
    tool = promtool()
    if tool is None:
        return
    # WHEN / THEN promtool evaluates the rules on those series and gets the alerts the tests expect
    run_promtool(tool, "test", "rules", RULE_TESTS)


# -- the rules name only metrics the services expose -----------------------------------------------------
def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects; a ``__name__=~`` regex of alternatives is expanded."""
    names = set()
    for pattern in re.findall(r'__name__\s*=~\s*"([^"]*)"', expr):
        groups = re.findall(r"\(([\w|]+)\)", pattern)
        for choice in itertools.product(*(group.split("|") for group in groups)):
            name = pattern
            for group, alternative in zip(groups, choice, strict=True):
                name = name.replace(f"({group})", alternative, 1)
            assert re.fullmatch(r"[a-zA-Z_:][\w:]*", name), f"{pattern!r} is not a list of names"
            names.add(name)
    text = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    text = re.sub(r'"[^"]*"', " ", text)  # label_replace's arguments
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for word in re.findall(r"\b([a-zA-Z_:][\w:]*)\b(?!\s*\()", text):
        if word not in PROMQL_WORDS:
            names.add(word)
    return names


def exposed_metric_names() -> set[str]:
    """Every series name on the services' ``/metrics``: each stage's metrics, built as the services do."""
    import services.extractor.metrics
    import services.loader.metrics
    import services.transformer.metrics
    import services.unzipper.metrics  # noqa: F401

    text = generate_latest(REGISTRY).decode()
    declared = re.findall(r"^# HELP (\S+)", text, flags=re.MULTILINE)
    sampled = re.findall(r"^([a-zA-Z_:][\w:]*)[{ ]", text, flags=re.MULTILINE)
    return set(declared) | set(sampled)


def test_metric_names_are_read_from_expressions():
    expr = (
        'label_replace({__name__=~"moviepipe_(extractor|loader)_dlq_messages"}, "stage", "$1", '
        '"__name__", "moviepipe_(.+)_dlq_messages") > 0 and on (job) rate(x_total{a="b"}[5m]) > up'
    )
    assert metric_names_in(expr) == {
        "moviepipe_extractor_dlq_messages",
        "moviepipe_loader_dlq_messages",
        "x_total",
        "up",
    }


def test_every_metric_the_rules_name_is_exposed_by_a_service():
    # GIVEN the metrics every stage registers, and the process collector's
    exposed = exposed_metric_names()
    # WHEN the rules' expressions are read for the metrics they select
    named = {rule["alert"]: metric_names_in(rule["expr"]) for rule in alert_rules()}
    # THEN each one is a series some service exposes (or Prometheus's own `up`)
    missing = {
        alert: sorted(names - exposed - PROMETHEUS_OWN)
        for alert, names in named.items()
        if names - exposed - PROMETHEUS_OWN
    }
    assert not missing, f"the rules name metrics no service exposes: {missing}"
    assert all(named.values())
    every_stage = {f"moviepipe_{stage}_dlq_messages" for stage in STAGES}
    assert every_stage <= named["MoviepipeDeadLetters"]


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_exposes_the_shared_series(stage: str):
    exposed = exposed_metric_names()
    for what in (
        "messages_total",
        "batch_duration_seconds_bucket",
        "duration_seconds_bucket",
        "queue_lag_seconds",
        "dlq_messages",
        "consumer_up",
        "build_info",
    ):
        assert f"moviepipe_{stage}_{what}" in exposed
    assert "process_cpu_seconds_total" in exposed

"""docker-compose.yml describes the same stack as `moviepipe up`, and docker-compose accepts it."""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid():
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, (
        "docker-compose is needed to validate docker-compose.yml: apt-get install docker-compose"
    )
    result = subprocess.run(
        [docker_compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_every_component_with_a_health_check():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("moto", "warehouse", "extractor", "unzipper", "transformer", "loader", "dashboard"):
        assert name in services
        assert services[name]["healthcheck"]["test"][0] == "CMD-SHELL"


def test_the_dashboard_starts_once_the_warehouse_and_the_loader_are_healthy():
    dashboard = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["dashboard"]
    assert "services.dashboard.app:app" in dashboard["command"] and "8000" in dashboard["command"]
    assert dashboard["ports"] == ["8000:8000"]
    assert dashboard["depends_on"]["warehouse"]["condition"] == "service_healthy"
    assert dashboard["depends_on"]["loader"]["condition"] == "service_healthy"
    assert "8000/health" in dashboard["healthcheck"]["test"][1]

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
    for name in ("moto", "warehouse", "extractor", "unzipper", "transformer", "loader"):
        assert name in services
        assert services[name]["healthcheck"]["test"][0] == "CMD-SHELL"

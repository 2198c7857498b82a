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
    assert dashboard["command"] == "dashboard"
    assert dashboard["ports"] == ["8000:8000"]
    assert dashboard["depends_on"]["warehouse"]["condition"] == "service_healthy"
    assert dashboard["depends_on"]["loader"]["condition"] == "service_healthy"
    assert "8000/health" in dashboard["healthcheck"]["test"][1]


def _stages() -> dict[str, str]:
    """The Dockerfile's stages by name, each as its text."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    stages: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if line.startswith("FROM "):
            name = line.split(" AS ")[-1].strip()
            stages[name] = ""
        if name:
            stages[name] += line + "\n"
    return stages


def test_the_images_run_as_a_user_with_a_health_check_and_java_and_pyspark_only_where_spark_runs():
    stages = _stages()
    assert list(stages) == ["build", "build-spark", "runtime", "app", "spark"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in dockerfile
    for name in ("app", "spark"):
        assert stages[name].startswith("FROM runtime AS")
        users = [line.split()[1] for line in stages[name].splitlines() if line.startswith("USER ")]
        assert users and users[-1] == "moviepipe"
    assert "HEALTHCHECK" in stages["runtime"] and "ENTRYPOINT" in stages["runtime"]
    assert "openjdk" in stages["spark"] and "openjdk" not in stages["app"] + stages["build"]
    # pyspark only in the Spark image: app copies the environment built without it
    assert "COPY --from=build /opt/moviepipe" in stages["app"]
    assert "COPY --from=build-spark /opt/moviepipe" in stages["spark"]
    build_steps = [line for line in stages["build"].splitlines() if not line.startswith("#")]
    assert not [line for line in build_steps if "pyspark" in line]
    # extra CA certificates reach the build stages only
    published = stages["runtime"] + stages["app"] + stages["spark"]
    assert "EXTRA_CA_CERTS" not in published and "secret" not in published and "pip-install" not in published


def test_the_spark_image_installs_the_pyspark_pyproject_pins():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    (pin,) = project["optional-dependencies"]["spark"]
    assert pin.startswith("pyspark==")
    assert f"ARG PYSPARK_VERSION={pin.removeprefix('pyspark==')}" in dockerfile
    assert not any(dependency.startswith("pyspark") for dependency in project["dependencies"])


def test_every_compose_component_is_a_command_the_entrypoint_knows():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    entrypoint = (ROOT / "deploy" / "entrypoint.sh").read_text()
    for name, service in services.items():
        assert f"  {service['command']})" in entrypoint, name
    assert services["transformer"]["image"] == "moviepipe:spark"
    assert {service.get("image", "moviepipe:app") for name, service in services.items()} == {
        "moviepipe:app",
        "moviepipe:spark",
    }

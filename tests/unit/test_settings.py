"""Settings: names from the prefix, local defaults, and no default secrets outside local."""

import pytest

from shared.settings import Settings


def test_names_follow_the_prefix():
    settings = Settings(prefix="acme")
    assert settings.bucket("landing") == "acme-landing"
    assert settings.queue("loader") == "acme-loader"
    assert settings.dead_letter_queue("loader") == "acme-loader-dlq"
    assert settings.alerts_topic == "acme-alerts"


def test_local_defaults_to_the_local_moto_server(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert Settings(moto_port=4999).aws_endpoint_url == "http://127.0.0.1:4999"


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("MOVIEPIPE_PREFIX", "fromenv")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://example.invalid:1")
    settings = Settings()
    assert settings.prefix == "fromenv"
    assert settings.aws_endpoint_url == "http://example.invalid:1"


def test_outside_local_default_secrets_are_refused(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(ValueError, match="MOVIEPIPE_API_TOKEN"):
        Settings(environment="prod")
    with pytest.raises(ValueError, match="MOVIEPIPE_WAREHOUSE_PASSWORD"):
        Settings(environment="prod", api_token="x")
    assert Settings(environment="prod", api_token="x", warehouse_password="y").aws_endpoint_url is None

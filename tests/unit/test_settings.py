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


def test_outside_local_a_service_refuses_to_start_without_its_own_secrets(monkeypatch):
    from services.dashboard.settings import DashboardSettings
    from services.extractor.settings import ExtractorSettings
    from services.loader.settings import LoaderSettings
    from services.transformer.settings import TransformerSettings
    from services.unzipper.settings import UnzipperSettings

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(ValueError, match="MOVIEPIPE_API_TOKEN must be set"):
        ExtractorSettings(environment="prod")
    for warehouse_user in (LoaderSettings, DashboardSettings):
        with pytest.raises(ValueError, match="MOVIEPIPE_WAREHOUSE_PASSWORD must be set"):
            warehouse_user(environment="prod")
        with pytest.raises(ValueError, match="MOVIEPIPE_WAREHOUSE_PASSWORD must be set"):
            warehouse_user(environment="prod", warehouse_password="local")  # the stand-in's password
        assert warehouse_user(environment="prod", warehouse_password="y").aws_endpoint_url is None
    assert ExtractorSettings(environment="prod", api_token="x").aws_endpoint_url is None
    # The unzipper and the transformer use neither secret, and are given neither.
    assert UnzipperSettings(environment="prod").api_token is None
    assert TransformerSettings(environment="prod").warehouse_password == "local"

"""What a service is told: its settings as ``MOVIEPIPE_*`` variables, its credentials from Secrets Manager.

Variable names come from the settings classes (a renamed field fails the generator, not a deployment).
A service gets only the secrets it uses: the extractor the API token, the loader and the dashboard the
Snowflake credentials.
"""

from __future__ import annotations

from typing import Any

from deploy.aws.intrinsics import DELETED, Fn, ref, sub
from deploy.aws.workloads import API_TOKEN, WAREHOUSE, Service
from services.dashboard.settings import DashboardSettings
from services.extractor.settings import ExtractorSettings
from services.loader.settings import LoaderSettings
from services.transformer.settings import TransformerSettings
from services.unzipper.settings import UnzipperSettings
from shared.settings import Settings

SETTINGS = {
    "extractor": ExtractorSettings,
    "unzipper": UnzipperSettings,
    "transformer": TransformerSettings,
    "loader": LoaderSettings,
    "dashboard": DashboardSettings,
}
API_TOKEN_SECRET = "ApiTokenSecret"
WAREHOUSE_SECRET = "WarehouseSecret"
WAREHOUSE_KEYS = {"warehouse_account": "account", "warehouse_user": "user", "warehouse_password": "password"}
"""Which key of the Snowflake secret (JSON) each setting is read from."""
SECRET_SETTINGS = {API_TOKEN: ("api_token",), WAREHOUSE: tuple(WAREHOUSE_KEYS)}
"""The settings each secret fills in."""


def variable(settings: type[Settings], field: str) -> str:
    """``MOVIEPIPE_GLUE_JOB_NAME`` for ``glue_job_name``; a field the settings class lacks is an error."""
    if field not in settings.model_fields:
        raise KeyError(f"{settings.__name__} has no setting {field!r}")
    return f"MOVIEPIPE_{field.upper()}"


def shared_values(*, lambda_runtime: bool = False) -> dict[str, Any]:
    """The settings every service is given, by field name: where it runs and what its names start with."""
    values: dict[str, Any] = {
        "environment": "prod",
        "prefix": ref("Prefix"),
        "region": ref("AWS::Region"),
    }
    if lambda_runtime:
        values["home"] = "/tmp/moviepipe"  # the only writable path in Lambda
    return values


def warehouse_values() -> dict[str, Any]:
    """Where Snowflake is (its credentials come from the secret)."""
    return {
        "warehouse_host": sub("${SnowflakeAccount}.snowflakecomputing.com"),
        "warehouse_port": "443",
        "warehouse_protocol": "https",
        "warehouse_database": ref("SnowflakeDatabase"),
        "warehouse_name": ref("SnowflakeWarehouse"),
        "warehouse_role": ref("SnowflakeRole"),
    }


def service_values(service: Service, *, lambda_runtime: bool = False) -> dict[str, Any]:
    """Plain settings of ``service``: shared, its own, and where Snowflake is if it talks to Snowflake."""
    missing = [
        name
        for name in SETTINGS[service.name].secrets
        if not any(name in SECRET_SETTINGS[secret] for secret in service.secrets)
    ]
    if missing:
        # The service would refuse to start: its settings class needs a secret it is not given.
        raise ValueError(f"the {service.name} needs secret setting(s) {', '.join(missing)} it is not given")
    values = shared_values(lambda_runtime=lambda_runtime)
    values.update(dict(service.environment))
    if WAREHOUSE in service.secrets:
        values.update(warehouse_values())
    return values


def container_environment(service: Service) -> list[dict[str, Any]]:
    """The ECS container's ``Environment``."""
    settings = SETTINGS[service.name]
    return [
        {"Name": variable(settings, field), "Value": value}
        for field, value in service_values(service).items()
    ]


def lambda_environment(service: Service) -> dict[str, Any]:
    """The Lambda function's ``Environment.Variables``."""
    settings = SETTINGS[service.name]
    return {
        variable(settings, field): value
        for field, value in service_values(service, lambda_runtime=True).items()
    }


def container_secrets(service: Service) -> list[dict[str, Any]]:
    """The ECS container's ``Secrets``: the task execution role reads them when the task starts."""
    settings = SETTINGS[service.name]
    secrets = []
    if API_TOKEN in service.secrets:
        secrets.append({"Name": variable(settings, "api_token"), "ValueFrom": ref(API_TOKEN_SECRET)})
    if WAREHOUSE in service.secrets:
        secrets += [
            {"Name": variable(settings, field), "ValueFrom": sub(f"${{{WAREHOUSE_SECRET}}}:{key}::")}
            for field, key in WAREHOUSE_KEYS.items()
        ]
    return secrets


def secret_arns(services: tuple[Service, ...]) -> list[Fn]:
    """The secrets some service is given (what the task execution role may read)."""
    used = {name for service in services for name in service.secrets}
    return [
        ref(secret)
        for name, secret in ((API_TOKEN, API_TOKEN_SECRET), (WAREHOUSE, WAREHOUSE_SECRET))
        if name in used
    ]


def secrets() -> dict[str, dict[str, Any]]:
    """The API token, generated; the Snowflake credentials, from the (NoEcho) parameters."""
    return {
        API_TOKEN_SECRET: {
            "Type": "AWS::SecretsManager::Secret",
            **DELETED,
            "Properties": {
                "Name": sub("${Prefix}/api-token"),
                "Description": "Bearer token of the extractor API (MOVIEPIPE_API_TOKEN)",
                "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True},
            },
        },
        WAREHOUSE_SECRET: {
            "Type": "AWS::SecretsManager::Secret",
            **DELETED,
            "Properties": {
                "Name": sub("${Prefix}/snowflake"),
                "Description": "Snowflake credentials of the loader and dashboard (MOVIEPIPE_WAREHOUSE_*)",
                "SecretString": sub(
                    '{"account": "${SnowflakeAccount}", "user": "${SnowflakeUser}", '
                    '"password": "${SnowflakePassword}"}'
                ),
            },
        },
    }

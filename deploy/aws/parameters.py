"""What differs per deployment: the template's parameters, and the conditions and rules built on them.

Defaults come from the code's own constants and settings, so a deployment with every default behaves as
the local stack is configured.
"""

from __future__ import annotations

from typing import Any

from deploy.aws.intrinsics import equals, not_, ref
from deploy.aws.workloads import Service
from deploy.resources import ARCHIVE_TO_GLACIER_DAYS
from deploy.snowflake.generate import DATABASE, STORAGE_INTEGRATION, WAREHOUSE
from services.transformer.glue_assets import split_location
from services.transformer.settings import TransformerSettings

FARGATE_CPU = ["256", "512", "1024", "2048", "4096", "8192", "16384"]
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653]
GLUE_WORKER_TYPES = ["G.1X", "G.2X", "G.4X", "G.8X"]

UNZIPPER_ON_ECS = "UnzipperOnEcs"
UNZIPPER_ON_LAMBDA = "UnzipperOnLambda"
SNOWFLAKE_ROLE = "SnowflakeIntegrationGiven"


def _string(description: str, default: str | None = None, **more: Any) -> dict[str, Any]:
    parameter: dict[str, Any] = {"Type": "String", "Description": description}
    if default is not None:
        parameter["Default"] = default
    return {**parameter, **more}


def _number(description: str, default: int, **more: Any) -> dict[str, Any]:
    return {"Type": "Number", "Description": description, "Default": default, **more}


def service_size_parameters(services: tuple[Service, ...]) -> dict[str, Any]:
    """``ExtractorCpu``, ``ExtractorMemory``, …: each service's Fargate size, its declared size by default."""
    parameters: dict[str, Any] = {}
    for service in services:
        title = service.name.capitalize()
        parameters[f"{title}Cpu"] = _string(
            f"CPU units of each {service.name} task", str(service.cpu), AllowedValues=FARGATE_CPU
        )
        parameters[f"{title}Memory"] = _string(
            f"Memory (MiB) of each {service.name} task; a size Fargate allows with its CPU",
            str(service.memory),
            AllowedPattern="^[0-9]+$",
        )
    return parameters


def parameters(services: tuple[Service, ...]) -> dict[str, Any]:
    """Every parameter of the template, with its default."""
    transformer = TransformerSettings.model_construct()
    return {
        "Prefix": _string(
            "Prefix of every name (MOVIEPIPE_PREFIX): buckets {Prefix}-landing, queues, topic, tables",
            "moviepipe",
            AllowedPattern="^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$",
        ),
        "ImageUri": _string(
            "The moviepipe image (deploy/Dockerfile), e.g. ACCOUNT.dkr.ecr.REGION…/moviepipe:TAG"
        ),
        "VpcId": {
            "Type": "AWS::EC2::VPC::Id",
            "Description": "The VPC the services and load balancer run in",
        },
        "SubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Subnets (two or more zones) with a route to AWS APIs and Snowflake (NAT)",
        },
        "AssignPublicIp": _string(
            "ENABLED only in public subnets without NAT", "DISABLED", AllowedValues=["DISABLED", "ENABLED"]
        ),
        "ApiAllowedCidr": _string(
            "Who may reach the internal load balancer (extractor API, dashboard)", "10.0.0.0/8"
        ),
        "AlertEmail": _string(
            "Address every alert is emailed to (confirm the subscription SNS sends)",
            AllowedPattern="^[^@\\s]+@[^@\\s]+$",
        ),
        "ArchiveToGlacierDays": _number(
            "Days before archive and quarantine objects move to Glacier", ARCHIVE_TO_GLACIER_DAYS, MinValue=1
        ),
        "QuarantineExpirationDays": _number(
            "Days before a quarantined object is deleted (after its move to Glacier)", 365, MinValue=1
        ),
        "LandingOldVersionDays": _number(
            "Days an overwritten or deleted landing bundle is kept as an old version", 30, MinValue=1
        ),
        "LogRetentionDays": _number("Days the services' logs are kept", 30, AllowedValues=LOG_RETENTION_DAYS),
        "UnzipperRuntime": _string(
            "Where the unzipper runs: an ECS service, or a Lambda function fed by its queue",
            "ecs",
            AllowedValues=["ecs", "lambda"],
        ),
        "LambdaCodeBucket": _string("With UnzipperRuntime=lambda: the bucket holding the package", ""),
        "LambdaCodeKey": _string("With UnzipperRuntime=lambda: the package's key (a zip)", ""),
        "GlueAssetsPrefix": _string(
            "Key prefix in {Prefix}-processed where the transformer uploads the Glue job's code",
            split_location(transformer.glue_assets_location)[1],
            AllowedPattern="^[A-Za-z0-9_][A-Za-z0-9_/-]*[A-Za-z0-9_]$",
        ),
        "GlueWorkerType": _string(
            "Worker type of the Glue job", transformer.glue_worker_type, AllowedValues=GLUE_WORKER_TYPES
        ),
        "GlueWorkers": _number("Workers of each Glue job run", transformer.glue_workers, MinValue=2),
        "GlueMaxConcurrentRuns": _number(
            "Glue job runs at once (one per extract being transformed)", 4, MinValue=1
        ),
        "NoLoadHours": _number(
            "Alarm when the loader has loaded no extract for this many hours", 24, MinValue=1, MaxValue=168
        ),
        "SnowflakeAccount": _string(
            "Snowflake account identifier (orgname-accountname); the host is {account}.snowflakecomputing.com"
        ),
        "SnowflakeUser": _string("Snowflake user the loader and dashboard connect as", "MOVIEPIPE"),
        "SnowflakePassword": _string(
            "That user's password, kept in Secrets Manager (as JSON: no double quote or backslash)",
            NoEcho=True,
            AllowedPattern='^[^"\\\\]+$',
        ),
        "SnowflakeRole": _string("Snowflake role to use; empty: the user's default", ""),
        "SnowflakeWarehouse": _string("Snowflake warehouse the queries run on", WAREHOUSE),
        "SnowflakeDatabase": _string("Snowflake database (MOVIEPIPE_WAREHOUSE_DATABASE)", DATABASE),
        "SnowflakeStorageIntegration": _string(
            "Storage integration the loader's stage reads the archive through", STORAGE_INTEGRATION
        ),
        "SnowflakeIamUserArn": _string(
            "STORAGE_AWS_IAM_USER_ARN of DESC INTEGRATION; empty: no role for Snowflake yet", ""
        ),
        "SnowflakeExternalId": _string("STORAGE_AWS_EXTERNAL_ID of DESC INTEGRATION", ""),
        **service_size_parameters(services),
    }


def conditions() -> dict[str, Any]:
    """The unzipper runs on ECS or on Lambda, never both; Snowflake's role exists once its ids are known."""
    return {
        UNZIPPER_ON_ECS: equals(ref("UnzipperRuntime"), "ecs"),
        UNZIPPER_ON_LAMBDA: equals(ref("UnzipperRuntime"), "lambda"),
        SNOWFLAKE_ROLE: not_(equals(ref("SnowflakeIamUserArn"), "")),
    }


def rules() -> dict[str, Any]:
    """Refuse a Lambda unzipper without its package, and a Snowflake role without its external id."""
    return {
        "LambdaUnzipperNeedsItsPackage": {
            "RuleCondition": equals(ref("UnzipperRuntime"), "lambda"),
            "Assertions": [
                {
                    "Assert": not_(equals(ref("LambdaCodeBucket"), "")),
                    "AssertDescription": "UnzipperRuntime=lambda needs LambdaCodeBucket and LambdaCodeKey",
                },
                {
                    "Assert": not_(equals(ref("LambdaCodeKey"), "")),
                    "AssertDescription": "UnzipperRuntime=lambda needs LambdaCodeBucket and LambdaCodeKey",
                },
            ],
        },
        "SnowflakeRoleNeedsExternalId": {
            "RuleCondition": not_(equals(ref("SnowflakeIamUserArn"), "")),
            "Assertions": [
                {
                    "Assert": not_(equals(ref("SnowflakeExternalId"), "")),
                    "AssertDescription": "SnowflakeIamUserArn needs SnowflakeExternalId (DESC INTEGRATION)",
                }
            ],
        },
    }

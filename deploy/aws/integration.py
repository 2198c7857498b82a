"""The role Snowflake's storage integration assumes to read the archive (``deploy/snowflake/README.md``).

Its name is fixed (``{Prefix}-snowflake``) because the integration is created with the role's ARN before
Snowflake says who will assume it; the role exists once ``SnowflakeIamUserArn`` and
``SnowflakeExternalId`` (from ``DESC INTEGRATION``) are given.
"""

from __future__ import annotations

from typing import Any

from deploy.aws import iam
from deploy.aws.intrinsics import bucket_arn, ref, sub
from deploy.aws.parameters import SNOWFLAKE_ROLE
from deploy.aws.workloads import snowflake_grants
from shared.settings import Settings


def snowflake_role(settings: Settings) -> dict[str, dict[str, Any]]:
    versions = {
        "Sid": "ReadObjectVersions",
        "Effect": "Allow",
        "Action": ["s3:GetObjectVersion"],
        "Resource": [bucket_arn(settings.bucket("archive"), "*")],
    }
    trust = iam.assumed_by(
        {"AWS": ref("SnowflakeIamUserArn")},
        {"StringEquals": {"sts:ExternalId": ref("SnowflakeExternalId")}},
    )
    return {
        "SnowflakeIntegrationRole": iam.role(
            "Snowflake's storage integration: the archive, read",
            trust,
            iam.policy(snowflake_grants(settings), versions),
            name=sub("${Prefix}-snowflake"),
            condition=SNOWFLAKE_ROLE,
        )
    }

"""The unzipper as a Lambda function (``UnzipperRuntime=lambda``), fed by its queue; then no ECS service.

The function runs ``services.unzipper.handler.handler``, the same code the ECS service's consumer feeds,
and answers ``batchItemFailures`` so only the failed messages of a batch come back.
"""

from __future__ import annotations

from typing import Any

from deploy.aws import iam
from deploy.aws.environment import lambda_environment
from deploy.aws.intrinsics import DELETED, get_att, log_group_arn, logical_id, ref, sub
from deploy.aws.parameters import UNZIPPER_ON_LAMBDA
from deploy.aws.workloads import Service, unzipper_grants
from deploy.resources import VISIBILITY_SECONDS
from shared.settings import Settings

HANDLER = "services.unzipper.handler.handler"
RUNTIME = "python3.11"
"""The image's Python (deploy/Dockerfile), and Glue 5.0's."""
TIMEOUT_SECONDS = VISIBILITY_SECONDS["unzipper"] // 2
"""Half the queue's visibility timeout: a message is not handed out again while its invocation runs."""
MEMORY_MB = 1024
"""A 1 GB bundle unzips in 164 MiB (docs/BENCHMARKS.md); Lambda's CPU grows with its memory."""
BATCH_SIZE = 1
"""A bundle per invocation, so one large bundle cannot push the rest of a batch past the timeout."""
LOG_GROUP = "/aws/lambda/${Prefix}-unzipper"


def unzipper_function(service: Service, settings: Settings) -> dict[str, dict[str, Any]]:
    """The function, its log group, its role (the ECS role's grants) and its queue's event source mapping."""
    logs = {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [log_group_arn(LOG_GROUP)],
    }
    return {
        "UnzipperFunctionLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Condition": UNZIPPER_ON_LAMBDA,
            **DELETED,
            "Properties": {"LogGroupName": sub(LOG_GROUP), "RetentionInDays": ref("LogRetentionDays")},
        },
        "UnzipperFunctionRole": iam.role(
            "moviepipe unzipper on Lambda: the same grants as on ECS, and its own logs",
            iam.assumed_by({"Service": "lambda.amazonaws.com"}),
            iam.policy(unzipper_grants(settings), logs),
            condition=UNZIPPER_ON_LAMBDA,
        ),
        "UnzipperFunction": {
            "Type": "AWS::Lambda::Function",
            "Condition": UNZIPPER_ON_LAMBDA,
            # The package parameters are empty by default (the unzipper runs on ECS); the template's rule
            # refuses them empty when it runs here, which cfn-lint does not follow.
            "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W1030"]}}},
            "Properties": {
                "FunctionName": sub("${Prefix}-unzipper"),
                "Description": "moviepipe unzipper: landing bundle → processed files and manifest",
                "Runtime": RUNTIME,
                "Handler": HANDLER,
                "Code": {"S3Bucket": ref("LambdaCodeBucket"), "S3Key": ref("LambdaCodeKey")},
                "Role": get_att("UnzipperFunctionRole", "Arn"),
                "MemorySize": MEMORY_MB,
                "Timeout": TIMEOUT_SECONDS,
                "Environment": {"Variables": lambda_environment(service)},
                "LoggingConfig": {"LogGroup": ref("UnzipperFunctionLogGroup")},
            },
        },
        "UnzipperEventSourceMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Condition": UNZIPPER_ON_LAMBDA,
            "Properties": {
                "EventSourceArn": get_att(logical_id(settings.queue("unzipper"), "Queue"), "Arn"),
                "FunctionName": ref("UnzipperFunction"),
                "BatchSize": BATCH_SIZE,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        },
    }

"""IAM: one role per principal, whose policy is its ``Grants`` and nothing more.

Every resource is named by ARN (from its name, see ``intrinsics``); no statement of a service's role
has ``Resource: "*"``.
"""

from __future__ import annotations

from typing import Any

from deploy.aws.intrinsics import (
    Fn,
    bucket_arn,
    glue_arn,
    queue_arn,
    ref,
    sub,
    table_arn,
    topic_arn,
)
from deploy.aws.workloads import CONSUME, DELETE, READ, SEND, WATCH, WRITE, Grants

S3_OBJECT_ACTIONS = {
    READ: ["s3:GetObject"],
    WRITE: ["s3:PutObject", "s3:AbortMultipartUpload"],
    DELETE: ["s3:DeleteObject"],
}
S3_BUCKET_ACTIONS = ["s3:ListBucket"]
"""With read: a missing key answers 404 (not 403), ``HeadBucket`` (``/ready``) and listings work."""
SQS_ACTIONS = {
    CONSUME: [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
    ],
    SEND: ["sqs:SendMessage", "sqs:GetQueueUrl"],
    WATCH: ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
}
DYNAMODB_ACTIONS = {
    READ: ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:Query"],
    WRITE: ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
}
SNS_ACTIONS = ["sns:Publish"]
GLUE_JOB_ACTIONS = [
    "glue:GetJob",
    "glue:StartJobRun",
    "glue:GetJobRun",
    "glue:GetJobRuns",
    "glue:BatchStopJobRun",
]
GLUE_CATALOG_ACTIONS = [
    # catalog.py creates its database at first use (and takes "already exists" as done).
    "glue:CreateDatabase",
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:GetPartition",
    "glue:CreatePartition",
    "glue:UpdatePartition",
]


def _statement(sid: str, actions: list[str], resources: list[Fn]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def _sid(*words: str) -> str:
    return "".join(word.capitalize() for word in words)


def bucket_statements(grants: Grants) -> list[dict[str, Any]]:
    """Objects by access (read, write, delete), then listing of every bucket read."""
    statements = []
    for access, actions in S3_OBJECT_ACTIONS.items():
        objects = [bucket_arn(g.bucket, key) for g in grants.buckets if g.access == access for key in g.keys]
        if objects:
            statements.append(_statement(_sid("objects", access), actions, objects))
    listed = [bucket_arn(g.bucket) for g in grants.buckets if g.access == READ]
    if listed:
        statements.append(_statement("ListBuckets", S3_BUCKET_ACTIONS, listed))
    return statements


def queue_statements(grants: Grants) -> list[dict[str, Any]]:
    statements = []
    for access, actions in SQS_ACTIONS.items():
        queues = [queue_arn(g.queue) for g in grants.queues if g.access == access]
        if queues:
            statements.append(_statement(_sid("queues", access), actions, queues))
    return statements


def table_statements(grants: Grants) -> list[dict[str, Any]]:
    statements = []
    for access, actions in DYNAMODB_ACTIONS.items():
        tables = [g.table for g in grants.tables if g.access == access]
        if tables:
            arns = [table_arn(table) for table in tables]
            if access == READ:  # a query on a global secondary index names the index
                arns += [table_arn(table, indexes=True) for table in tables]
            statements.append(_statement(_sid("tables", access), actions, arns))
    return statements


def other_statements(grants: Grants) -> list[dict[str, Any]]:
    """Alerts published; Glue job runs; the Glue Data Catalog."""
    statements = []
    if grants.topics:
        statements.append(_statement("PublishAlerts", SNS_ACTIONS, [topic_arn(t) for t in grants.topics]))
    if grants.glue_jobs:
        jobs = [glue_arn(f"job/{job}") for job in grants.glue_jobs]
        statements.append(_statement("RunGlueJob", GLUE_JOB_ACTIONS, jobs))
    if grants.glue_databases:
        catalog = [glue_arn("catalog")]
        for database in grants.glue_databases:
            catalog += [glue_arn(f"database/{database}"), glue_arn(f"table/{database}/*")]
        statements.append(_statement("RegisterInCatalog", GLUE_CATALOG_ACTIONS, catalog))
    return statements


def policy(grants: Grants, *extra: dict[str, Any]) -> dict[str, Any]:
    """The policy document that allows exactly ``grants`` (and the ``extra`` statements)."""
    statements = [
        *bucket_statements(grants),
        *queue_statements(grants),
        *table_statements(grants),
        *other_statements(grants),
        *extra,
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def assumed_by(principal: dict[str, Any], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trust policy: ``principal`` (``{"Service": "glue.amazonaws.com"}``) may assume the role."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


ECS_TASKS = assumed_by(
    {"Service": "ecs-tasks.amazonaws.com"},
    # Only ECS acting for this account's tasks (the confused-deputy guard ECS documents).
    {
        "ArnLike": {"aws:SourceArn": sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*")},
        "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
    },
)


def role(
    description: str,
    trust: dict[str, Any],
    document: dict[str, Any] | None = None,
    *,
    managed: list[Fn] | None = None,
    name: Fn | None = None,
    condition: str | None = None,
) -> dict[str, Any]:
    """An ``AWS::IAM::Role`` with its one inline policy."""
    properties: dict[str, Any] = {"Description": description, "AssumeRolePolicyDocument": trust}
    if name is not None:
        properties["RoleName"] = name
    if managed:
        properties["ManagedPolicyArns"] = managed
    if document is not None:
        properties["Policies"] = [{"PolicyName": "moviepipe", "PolicyDocument": document}]
    resource: dict[str, Any] = {"Type": "AWS::IAM::Role"}
    if condition:
        resource["Condition"] = condition
    resource["Properties"] = properties
    return resource

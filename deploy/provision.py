"""Apply the declared resources through AWS API calls; every call is idempotent."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from botocore.exceptions import ClientError

from deploy.resources import ABANDONED_UPLOAD_DAYS, Index, Resources, Table, resources
from shared.aws import client
from shared.settings import Settings


def provision(settings: Settings, declared: Resources | None = None) -> Resources:
    """Create whatever of the declared resources does not exist yet, and (re)apply their wiring."""
    declared = declared or resources(settings)
    s3, sqs, sns, dynamodb = (client(name, settings) for name in ("s3", "sqs", "sns", "dynamodb"))

    for bucket in declared.buckets:
        try:
            create = {"Bucket": bucket.name}
            if settings.region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
            s3.create_bucket(**create)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        # An upload abandoned by a worker that died mid-file is never visible; this removes its parts.
        rules = [
            {
                "ID": "abort-abandoned-uploads",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABANDONED_UPLOAD_DAYS},
            }
        ]
        if bucket.glacier_after_days:
            rules.append(
                {
                    "ID": "to-glacier",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Transitions": [{"Days": bucket.glacier_after_days, "StorageClass": "GLACIER"}],
                }
            )
        s3.put_bucket_lifecycle_configuration(Bucket=bucket.name, LifecycleConfiguration={"Rules": rules})

    arns: dict[str, str] = {}
    urls: dict[str, str] = {}
    for queue in declared.queues:  # dead-letter queues are declared before the queues that use them
        attributes = {"VisibilityTimeout": str(queue.visibility_seconds), "MessageRetentionPeriod": "1209600"}
        if queue.dead_letter_queue:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": arns[queue.dead_letter_queue],
                    "maxReceiveCount": queue.max_receive_count,
                }
            )
        url = sqs.create_queue(QueueName=queue.name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        urls[queue.name] = url
        arns[queue.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    by_bucket = defaultdict(list)
    for notification in declared.notifications:
        by_bucket[notification.bucket].append(notification)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arns[notification.queue],
                    "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{notification.bucket}"}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=urls[notification.queue], Attributes={"Policy": json.dumps(policy)})
    for bucket, notifications in by_bucket.items():
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arns[n.queue],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": n.suffix}]}},
                    }
                    for n in notifications
                ]
            },
        )

    for topic in declared.topics:
        topic_arn = sns.create_topic(Name=topic.name)["TopicArn"]
        subscribed = {
            s["Endpoint"]
            for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
        }
        for queue_name in topic.queue_subscribers:
            if arns[queue_name] not in subscribed:
                sns.subscribe(
                    TopicArn=topic_arn,
                    Protocol="sqs",
                    Endpoint=arns[queue_name],
                    Attributes={"RawMessageDelivery": "true"},
                )

    for table in declared.tables:
        _provision_table(dynamodb, table)
    return declared


def _provision_table(dynamodb: Any, table: Table) -> None:
    """Create the table with its indexes, or add the indexes an older table lacks; set its time to live."""
    attributes = {table.key} | {name for index in table.indexes for name in (index.partition, index.sort)}
    definitions = [{"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)]
    create: dict[str, Any] = {
        "TableName": table.name,
        "KeySchema": [{"AttributeName": table.key, "KeyType": "HASH"}],
        "AttributeDefinitions": definitions,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if table.indexes:
        create["GlobalSecondaryIndexes"] = [_index(index) for index in table.indexes]
    try:
        dynamodb.create_table(**create)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        existing = dynamodb.describe_table(TableName=table.name)["Table"]
        present = {index["IndexName"] for index in existing.get("GlobalSecondaryIndexes", [])}
        for index in table.indexes:
            if index.name not in present:
                dynamodb.update_table(
                    TableName=table.name,
                    AttributeDefinitions=definitions,
                    GlobalSecondaryIndexUpdates=[{"Create": _index(index)}],
                )
    if table.expires_attribute:
        described = dynamodb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        if described.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.expires_attribute},
            )


def _index(index: Index) -> dict[str, Any]:
    return {
        "IndexName": index.name,
        "KeySchema": [
            {"AttributeName": index.partition, "KeyType": "HASH"},
            {"AttributeName": index.sort, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def main() -> None:
    """``python -m deploy.provision``: provision from the environment's settings (used by compose)."""
    settings = Settings()
    declared = provision(settings)
    print(
        f"provisioned {len(declared.buckets)} buckets, {len(declared.queues)} queues, "
        f"{len(declared.notifications)} notifications, {len(declared.topics)} topic(s), "
        f"{len(declared.tables)} table(s) at {settings.aws_endpoint_url or 'AWS'}"
    )


if __name__ == "__main__":
    main()

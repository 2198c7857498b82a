"""Buckets, queues, the alerts topic and the tables: ``deploy.resources`` translated, value for value.

S3 checks that it may send to a queue when the bucket's notification is created, so each bucket
``DependsOn`` the policy of the queues it notifies; that policy names the bucket by an ARN built from its
name, not by ``!GetAtt``, or the two would wait for each other.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from deploy.aws.intrinsics import DELETED, RETAINED, bucket_arn, get_att, logical_id, ref, sub
from deploy.resources import ABANDONED_UPLOAD_DAYS, ARCHIVE_TO_GLACIER_DAYS, Bucket, Queue, Resources, Table

MESSAGE_RETENTION_SECONDS = 14 * 24 * 3600
"""As ``deploy/provision.py`` sets it: SQS's longest, so a message waits in a DLQ as long as it can."""
VERSIONED = ("landing",)
"""Buckets whose objects keep their old versions: a bundle landed twice is never lost."""
EXPIRING = {"quarantine": "QuarantineExpirationDays"}
"""Buckets whose objects are deleted after the parameter's days."""


def _role(bucket: Bucket) -> str:
    return bucket.name.rsplit("-", 1)[-1]


def lifecycle_rules(bucket: Bucket) -> list[dict[str, Any]]:
    """``deploy/provision.py``'s rules (same ids), with the template's parameters for the days."""
    rules: list[dict[str, Any]] = [
        {
            "Id": "abort-abandoned-uploads",
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABANDONED_UPLOAD_DAYS},
        }
    ]
    if bucket.glacier_after_days:
        days = (
            ref("ArchiveToGlacierDays")
            if bucket.glacier_after_days == ARCHIVE_TO_GLACIER_DAYS
            else bucket.glacier_after_days
        )
        rules.append(
            {
                "Id": "to-glacier",
                "Status": "Enabled",
                "Transitions": [{"StorageClass": "GLACIER", "TransitionInDays": days}],
            }
        )
    if _role(bucket) in EXPIRING:
        rules.append({"Id": "expire", "Status": "Enabled", "ExpirationInDays": ref(EXPIRING[_role(bucket)])})
    if _role(bucket) in VERSIONED:
        rules.append(
            {
                "Id": "expire-old-versions",
                "Status": "Enabled",
                "NoncurrentVersionExpiration": {"NoncurrentDays": ref("LandingOldVersionDays")},
            }
        )
    return rules


def bucket(declared: Bucket, resources: Resources) -> dict[str, Any]:
    """One bucket: encrypted, private, owner-enforced, its lifecycle rules and its notifications."""
    notified = [n for n in resources.notifications if n.bucket == declared.name]
    properties: dict[str, Any] = {
        "BucketName": sub(declared.name),
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    }
    if _role(declared) in VERSIONED:
        properties["VersioningConfiguration"] = {"Status": "Enabled"}
    properties["LifecycleConfiguration"] = {"Rules": lifecycle_rules(declared)}
    if notified:
        properties["NotificationConfiguration"] = {
            "QueueConfigurations": [
                {
                    "Event": "s3:ObjectCreated:*",
                    "Queue": get_att(logical_id(n.queue, "Queue"), "Arn"),
                    "Filter": {"S3Key": {"Rules": [{"Name": "suffix", "Value": n.suffix}]}},
                }
                for n in notified
            ]
        }
    resource: dict[str, Any] = {"Type": "AWS::S3::Bucket", **RETAINED}
    if notified:
        resource["DependsOn"] = sorted({logical_id(n.queue, "QueuePolicy") for n in notified})
    resource["Properties"] = properties
    return resource


def tls_only(declared: Bucket) -> dict[str, Any]:
    """The bucket's policy: any request not over TLS is denied."""
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": ref(logical_id(declared.name, "Bucket")),
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn(declared.name), bucket_arn(declared.name, "*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        },
    }


def queue(declared: Queue) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "QueueName": sub(declared.name),
        "VisibilityTimeout": declared.visibility_seconds,
        "MessageRetentionPeriod": MESSAGE_RETENTION_SECONDS,
        "SqsManagedSseEnabled": True,
    }
    if declared.dead_letter_queue:
        properties["RedrivePolicy"] = {
            "deadLetterTargetArn": get_att(logical_id(declared.dead_letter_queue, "Queue"), "Arn"),
            "maxReceiveCount": declared.max_receive_count,
        }
    return {"Type": "AWS::SQS::Queue", **DELETED, "Properties": properties}


def queue_policies(resources: Resources) -> dict[str, dict[str, Any]]:
    """Per queue that S3 or SNS sends to, one policy allowing exactly those senders (by source ARN)."""
    senders: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for notification in resources.notifications:
        senders[notification.queue].append(
            {
                "Sid": "BucketNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": get_att(logical_id(notification.queue, "Queue"), "Arn"),
                "Condition": {
                    "ArnLike": {"aws:SourceArn": bucket_arn(notification.bucket)},
                    "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
                },
            }
        )
    for topic in resources.topics:
        for subscriber in topic.queue_subscribers:
            senders[subscriber].append(
                {
                    "Sid": "TopicSubscription",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": get_att(logical_id(subscriber, "Queue"), "Arn"),
                    "Condition": {"ArnEquals": {"aws:SourceArn": ref(logical_id(topic.name, "Topic"))}},
                }
            )
    return {
        logical_id(name, "QueuePolicy"): {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [ref(logical_id(name, "Queue"))],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            },
        }
        for name, statements in senders.items()
    }


def topics(resources: Resources) -> dict[str, dict[str, Any]]:
    """The alerts topic, emailed to ``AlertEmail``, and the queues subscribed to it (raw delivery)."""
    declared: dict[str, dict[str, Any]] = {}
    for topic in resources.topics:
        topic_id = logical_id(topic.name, "Topic")
        declared[topic_id] = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": sub(topic.name)}}
        declared[logical_id(topic.name, "EmailSubscription")] = {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": ref(topic_id), "Protocol": "email", "Endpoint": ref("AlertEmail")},
        }
        for subscriber in topic.queue_subscribers:
            declared[logical_id(subscriber, "Subscription")] = {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": ref(topic_id),
                    "Protocol": "sqs",
                    "Endpoint": get_att(logical_id(subscriber, "Queue"), "Arn"),
                    "RawMessageDelivery": True,
                },
            }
    return declared


def table(declared: Table) -> dict[str, Any]:
    """A table as ``deploy/provision.py`` creates it: string keys, indexes projecting everything."""
    attributes = {declared.key} | {
        name for index in declared.indexes for name in (index.partition, index.sort)
    }
    properties: dict[str, Any] = {
        "TableName": sub(declared.name),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)
        ],
        "KeySchema": [{"AttributeName": declared.key, "KeyType": "HASH"}],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }
    if declared.indexes:
        properties["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition, "KeyType": "HASH"},
                    {"AttributeName": index.sort, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in declared.indexes
        ]
    if declared.expires_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": declared.expires_attribute, "Enabled": True}
    return {"Type": "AWS::DynamoDB::Table", **RETAINED, "Properties": properties}


def storage(resources: Resources) -> dict[str, dict[str, Any]]:
    """Every declared bucket (with its policy), queue (with its policy), topic and table."""
    declared: dict[str, dict[str, Any]] = {}
    for each in resources.buckets:
        declared[logical_id(each.name, "Bucket")] = bucket(each, resources)
        declared[logical_id(each.name, "BucketPolicy")] = tls_only(each)
    for each in resources.queues:
        declared[logical_id(each.name, "Queue")] = queue(each)
    declared.update(queue_policies(resources))
    declared.update(topics(resources))
    for each in resources.tables:
        declared[logical_id(each.name, "Table")] = table(each)
    return declared

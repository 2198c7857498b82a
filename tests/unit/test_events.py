"""S3 notifications, direct or through SQS: keys decoded, test events skipped."""

import json

from shared.batch import s3_event_handler
from shared.events import objects_in_notification, objects_in_sqs_body, s3_notification


def sqs_event(*bodies):
    return {
        "Records": [
            {
                "messageId": str(i),
                "receiptHandle": "r",
                "body": body,
                "eventSource": "aws:sqs",
                "attributes": {},
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_keys_arrive_decoded():
    # GIVEN a notification whose key S3 URL-encoded
    notification = s3_notification("moviepipe-landing", "imdb/an extract+1.zip")
    assert "%2F" in notification["Records"][0]["s3"]["object"]["key"]
    # WHEN
    (created,) = objects_in_notification(notification)
    # THEN
    assert created.key == "imdb/an extract+1.zip"
    assert created.uri == "s3://moviepipe-landing/imdb/an extract+1.zip"


def test_test_event_yields_nothing():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert objects_in_sqs_body(body) == []


def test_sqs_batch_reports_only_the_failed_message():
    # GIVEN one good and one failing record
    seen = []

    def process(created):
        if "bad" in created.key:
            raise RuntimeError("boom")
        seen.append(created.key)

    handler = s3_event_handler(process)
    event = sqs_event(
        json.dumps(s3_notification("b", "good.zip")), json.dumps(s3_notification("b", "bad.zip"))
    )
    # WHEN
    result = handler(event, None)
    # THEN
    assert result == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert seen == ["good.zip"]


def test_direct_s3_event_is_processed():
    seen = []
    handler = s3_event_handler(lambda created: seen.append(created.key))
    assert handler(s3_notification("b", "x/y.zip"), None) == {"batchItemFailures": []}
    assert seen == ["x/y.zip"]

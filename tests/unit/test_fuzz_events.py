"""Fuzzing the S3-event parser and the SQS batch handler (issue 11).

``shared.events`` reads an S3 notification into ``ObjectCreated`` values, or refuses it with the errors
its callers catch (``ValueError``, ``KeyError``, ``TypeError``: ``named_extract``, the consumer's
dead-letter alert, ``moviepipe dlq``); a test event or a non-creation event yields nothing. A well-formed
notification gives back the bucket, key, size and ETag it was made of. ``shared.batch`` processes an SQS
batch message by message and reports back only the messages that failed.
"""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.batch import s3_event_handler
from shared.events import (
    ObjectCreated,
    named_extract,
    objects_in_notification,
    objects_in_sqs_body,
    s3_notification,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

UNREADABLE = (ValueError, KeyError, TypeError)
"""What a notification that cannot be read raises: the errors every caller of ``shared.events`` catches."""

# -- strategies ---------------------------------------------------------------------------------------

TEXT = st.text(max_size=12)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=10,
)
NOT_AN_OBJECT = JSON_SCALARS | st.lists(JSON_VALUES, max_size=3)
"""A JSON value where the notification has an object: the wrong type."""

KEYS = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
"""Object keys: any Unicode (S3 keys are UTF-8, so no lone surrogates), spaces and ``+`` included."""
BUCKETS = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True)
ETAGS = st.from_regex(r"[0-9a-f]{32}(-[0-9]{1,5})?", fullmatch=True)
SIZES = st.integers(min_value=0, max_value=5 * 1024**4)
EVENT_NAMES = st.sampled_from(
    [
        "ObjectCreated:Put",
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectCreated:Copy",
        "ObjectRemoved:Delete",
        "ObjectRestore:Completed",
        "s3:TestEvent",
    ]
)
ENCODED_KEYS = (
    KEYS.map(lambda key: quote_plus(key, safe=""))
    | KEYS.map(lambda key: quote_plus(key, safe="/"))
    | st.text(alphabet="%+/2FfEe9 zé", max_size=12)  # stray and broken escapes: "%", "%zz", "%E9"
    | TEXT
)


def shaped(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict]:
    """A JSON object with any of ``fields`` present, each as the strategy says."""
    return st.fixed_dictionaries({}, optional=fields)


# The well-formed records: an S3 record's eventName and object key strings, its s3 an object (or missing);
# records typed otherwise are refused (the test of wrongly typed records below).
S3_OBJECTS = shaped(
    {"key": ENCODED_KEYS, "size": SIZES | JSON_VALUES, "eTag": ETAGS | JSON_VALUES, "sequencer": TEXT}
)
S3_MESSAGES = shaped(
    {
        "s3SchemaVersion": st.just("1.0"),
        "bucket": shaped({"name": BUCKETS | JSON_VALUES, "arn": TEXT}) | NOT_AN_OBJECT,
        "object": S3_OBJECTS | NOT_AN_OBJECT,
        "get_object": S3_OBJECTS | NOT_AN_OBJECT,
    }
)
RECORDS = shaped(
    {
        "eventVersion": st.just("2.1"),
        "eventSource": st.sampled_from(["aws:s3", "aws:sqs", ""]) | JSON_VALUES,
        "eventName": EVENT_NAMES | TEXT,
        "s3": S3_MESSAGES,
    }
)
NOTIFICATIONS = shaped(
    {
        "Records": st.lists(RECORDS | NOT_AN_OBJECT, max_size=3) | JSON_VALUES,
        "Service": st.just("Amazon S3"),
        "Event": st.just("s3:TestEvent"),
        "Bucket": BUCKETS,
    }
)
"""S3 notifications of every shape: records missing, of the wrong type, partly there, or whole."""


@st.composite
def message_bodies(draw: st.DrawFn) -> str:
    """What an SQS message may carry: a notification of any shape, any JSON, or text that is no JSON."""
    return draw(
        st.one_of(
            NOTIFICATIONS.map(json.dumps),
            JSON_VALUES.map(json.dumps),
            st.text(max_size=40),
            st.builds(
                lambda notification, cut: json.dumps(notification)[:cut],  # a body cut short
                NOTIFICATIONS,
                st.integers(min_value=0, max_value=200),
            ),
        )
    )


def read_or_refused(read, value) -> list[ObjectCreated] | None:
    """The objects ``read(value)`` finds, or None when it refuses with an error its callers catch."""
    try:
        found = read(value)
    except UNREADABLE:
        return None
    assert isinstance(found, list)
    assert all(isinstance(created, ObjectCreated) for created in found)
    assert all(created.event_name.startswith("ObjectCreated") for created in found)
    return found


# -- any notification: objects, nothing, or an error its callers catch ----------------------------------


@FUZZ
@given(notification=NOTIFICATIONS)
@example(notification={"Records": None})
@example(notification={"Records": "aws:s3"})
@example(notification={"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]})
def test_a_notification_of_any_shape_is_read_or_refused_with_an_error_its_callers_catch(notification):
    # GIVEN an S3 notification of any shape, WHEN read
    found = read_or_refused(objects_in_notification, notification)
    # THEN it names at most one object per record, every one created in S3
    if found is not None:
        assert len(found) <= len(notification.get("Records", []))


@FUZZ
@given(body=message_bodies())
@example(body="")
@example(body='"Records"')  # a JSON string that contains "Records"
@example(body="[]")
@example(body="null")
def test_an_sqs_body_of_any_kind_is_read_or_refused_with_an_error_its_callers_catch(body):
    # GIVEN any SQS message body, WHEN read, THEN objects, nothing, or an error its callers catch
    read_or_refused(objects_in_sqs_body, body)


@FUZZ
@given(body=message_bodies() | st.builds(lambda e: json.dumps({"extract_id": e}), JSON_VALUES))
def test_the_extract_a_message_names_is_found_or_none_whatever_the_body(body):
    # GIVEN any SQS message body (a dead-lettered one is often garbage)
    # WHEN the extract it is about is looked for
    extract_id, source = named_extract(body)
    # THEN it never raises: an extract and source, or none
    assert extract_id is None or isinstance(extract_id, str)
    assert source is None or isinstance(source, str)


@pytest.mark.parametrize(
    "body",
    [
        '{"Records": [{"eventSource": "aws:s3", "eventName": 0}]}',
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": []}]}',
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",'
        ' "s3": {"bucket": {"name": "b"}, "object": {"key": 0}}}]}',
    ],
    ids=["event-name-a-number", "s3-a-list", "key-a-number"],
)
def test_a_record_with_a_wrongly_typed_event_name_s3_or_key_is_refused_as_unreadable(body):
    # GIVEN an S3 record with a number or list where S3 writes a string or an object
    # WHEN read, THEN it is refused as its callers expect, and names no extract
    with pytest.raises(UNREADABLE):
        objects_in_sqs_body(body)
    assert named_extract(body) == (None, None)


@FUZZ
@given(bucket=BUCKETS, extra=shaped({"Time": TEXT, "RequestId": TEXT, "HostId": TEXT}))
def test_a_test_event_names_no_object(bucket, extra):
    # GIVEN the test event S3 sends when a notification is configured
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket, **extra})
    # WHEN read, THEN it names nothing and no extract
    assert objects_in_sqs_body(body) == []
    assert named_extract(body) == (None, None)


# -- well-formed notifications round-trip ----------------------------------------------------------------


@FUZZ
@given(bucket=BUCKETS, key=KEYS, size=SIZES, etag=ETAGS)
@example(bucket="moviepipe-landing", key="imdb/an extract+1.zip", size=0, etag="0" * 32)
@example(bucket="b.b", key="a b+c%20d/é 東京 🎬.zip", size=1, etag="0" * 32 + "-2")
@example(bucket="b-b", key="%2F+%", size=2, etag="f" * 32)
def test_a_notification_gives_back_the_bucket_key_size_and_etag_it_was_made_of(bucket, key, size, etag):
    # GIVEN the notification S3 sends for an object (key URL-encoded, a space as "+")
    notification = s3_notification(bucket, key, size=size, etag=etag)
    # WHEN read directly, and as the body of an SQS message
    direct = objects_in_notification(notification)
    queued = objects_in_sqs_body(json.dumps(notification))
    # THEN both name the object exactly as it was created
    expected = ObjectCreated(bucket=bucket, key=key, size=size, etag=etag, event_name="ObjectCreated:Put")
    assert direct == queued == [expected]
    assert expected.uri == f"s3://{bucket}/{key}"


@FUZZ
@given(bucket=BUCKETS, key=KEYS)
def test_a_key_reads_the_same_whether_its_slashes_are_encoded_or_not(bucket, key):
    # GIVEN the same notification with "/" sent as "%2F", and left as it is
    encoded = s3_notification(bucket, key)
    plain = json.loads(json.dumps(encoded))
    plain["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
    # WHEN read, THEN both give the key back
    assert [created.key for created in objects_in_notification(encoded)] == [key]
    assert [created.key for created in objects_in_notification(plain)] == [key]


@FUZZ
@given(bucket=BUCKETS, key=KEYS, event_name=EVENT_NAMES.filter(lambda name: "Created" not in name))
def test_an_event_other_than_a_creation_names_no_object(bucket, key, event_name):
    # GIVEN a notification of an object removed or restored
    notification = s3_notification(bucket, key)
    notification["Records"][0]["eventName"] = event_name
    # WHEN read, THEN it names nothing
    assert objects_in_notification(notification) == []


# -- SQS batches: a bad message fails alone -------------------------------------------------------------


def sqs_event(bodies: list[str]) -> dict:
    """An SQS event as Lambda (and the local consumer) delivers it: message ids "0", "1", …"""
    return {
        "Records": [
            {
                "messageId": str(number),
                "receiptHandle": f"handle-{number}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:moviepipe-unzipper",
                "awsRegion": "us-east-1",
            }
            for number, body in enumerate(bodies)
        ]
    }


GOOD_BODIES = st.builds(lambda key: json.dumps(s3_notification("landing", f"imdb/{key}.zip")), KEYS)
POISON_BODIES = st.builds(lambda key: json.dumps(s3_notification("landing", f"poison/{key}.zip")), KEYS)
"""Well-formed notifications of an object whose processing always fails."""


@FUZZ
@given(bodies=st.lists(GOOD_BODIES | POISON_BODIES | message_bodies(), min_size=1, max_size=10))
def test_an_sqs_batch_reports_exactly_the_messages_that_failed_and_processes_the_others(bodies):
    # GIVEN a batch mixing good notifications, notifications whose processing fails, and garbage
    processed = []

    def process(created: ObjectCreated) -> None:
        if created.key.startswith("poison/"):
            raise RuntimeError(f"cannot process {created.key}")
        processed.append(created.key)

    # WHEN the stage's handler takes the batch
    result = s3_event_handler(process)(sqs_event(bodies), None)
    # THEN a message is reported failed exactly when its body cannot be read or an object it names fails:
    # garbage fails alone, and a body that names nothing (a test event, any object without Records) is
    # done; every other message's objects are processed, in batch order
    failed, expected_processed = [], []
    for number, body in enumerate(bodies):
        found = read_or_refused(objects_in_sqs_body, body)
        if found is None:
            failed.append(number)
            continue
        for created in found:
            if created.key.startswith("poison/"):
                failed.append(number)
                break
            expected_processed.append(created.key)
    assert result == {"batchItemFailures": [{"itemIdentifier": str(number)} for number in failed]}
    assert processed == expected_processed

"""``shared.aws``: telling an absent S3 object from any other failure."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from shared.aws import is_missing


def s3_error(code: str, operation: str = "GetObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, operation)


@pytest.mark.parametrize(
    ("code", "operation"), [("NoSuchKey", "GetObject"), ("404", "HeadObject"), ("NotFound", "HeadObject")]
)
def test_each_way_s3_says_an_object_is_absent_is_missing(code, operation):
    assert is_missing(s3_error(code, operation))


@pytest.mark.parametrize("code", ["NoSuchBucket", "AccessDenied", "403", "SlowDown", "InternalError"])
def test_other_s3_errors_are_not_an_absent_object(code):
    # A missing bucket or a refusal is a fault to retry or fix, never "not there yet"
    assert not is_missing(s3_error(code))


def test_an_error_without_a_response_is_not_an_absent_object():
    assert not is_missing(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert not is_missing(ValueError("no"))

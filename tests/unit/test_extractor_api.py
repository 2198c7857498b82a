"""The extractor's HTTP surface without AWS: the bearer token, request validation, extract ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.extractor.app import create_app
from services.extractor.deps import Authorized
from services.extractor.exceptions import InvalidExtractRequest
from services.extractor.extract import EXTRACT_ID_PATTERN, new_extract_id
from services.extractor.handler import parse_request
from services.extractor.settings import ExtractorSettings

TOKEN = "s3cret-token"


def guarded_app(api_token: str | None) -> TestClient:
    """A one-route app behind the extractor's token dependency."""
    app = FastAPI()
    app.state.settings = ExtractorSettings(api_token=api_token)

    @app.post("/things")
    def make_thing(_: Authorized) -> dict[str, str]:
        return {"made": "yes"}

    return TestClient(app)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}],
    ids=["no header", "wrong token", "basic scheme", "no scheme"],
)
def test_a_token_protected_endpoint_refuses_callers_without_the_token(headers):
    # GIVEN a service with an API token WHEN called without presenting it
    response = guarded_app(TOKEN).post("/things", headers=headers)
    # THEN 401, telling the caller how to authenticate
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_a_token_protected_endpoint_admits_the_bearer_of_the_token():
    response = guarded_app(TOKEN).post("/things", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


def test_without_a_configured_token_no_header_is_needed():
    assert guarded_app(None).post("/things").status_code == 200


@pytest.fixture
def extractor(tmp_path) -> TestClient:
    # The checks below answer before any AWS call, so no moto server is needed.
    return TestClient(create_app(ExtractorSettings(aws_endpoint_url="http://127.0.0.1:9", home=tmp_path)))


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "body.source: Field required"),
        ({"source": ""}, "body.source: String should have at least 1 character"),
        ({"source": "imdb", "extra": 1}, "body.extra: Extra inputs are not permitted"),
        ({"source": "../etc"}, "body.source: String should match pattern"),
    ],
)
def test_bad_request_bodies_get_422_with_a_readable_message(extractor, body, says):
    response = extractor.post("/extracts", json=body)
    assert response.status_code == 422
    assert says in response.json()["detail"]


def test_a_body_that_is_not_json_gets_422(extractor):
    response = extractor.post(
        "/extracts", content=b"source=imdb", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: body")


def test_an_unknown_source_gets_404_naming_the_known_sources(extractor):
    response = extractor.post("/extracts", json={"source": "netflix"})
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown source 'netflix'; known sources: imdb"}


def test_the_token_is_checked_before_the_body(tmp_path):
    app = create_app(ExtractorSettings(api_token=TOKEN, aws_endpoint_url="http://127.0.0.1:9", home=tmp_path))
    assert TestClient(app).post("/extracts", json={}).status_code == 401


def test_extract_ids_are_utc_timestamps_with_a_random_suffix_and_sort_by_time():
    # GIVEN ids made a second apart
    earlier = new_extract_id(datetime(2026, 11, 26, 4, 17, tzinfo=UTC))
    later = new_extract_id(datetime(2026, 11, 26, 4, 17, tzinfo=UTC) + timedelta(seconds=1))
    # THEN they follow the documented shape and sort in time order
    assert re.fullmatch(r"20261126T041700Z-[0-9a-f]{8}", earlier)
    assert EXTRACT_ID_PATTERN.match(new_extract_id())
    assert sorted([later, earlier]) == [earlier, later]
    assert new_extract_id() != new_extract_id()


def test_extract_ids_of_the_same_second_sort_by_millisecond():
    # GIVEN ids requested a millisecond apart, many times over (the random part must not decide)
    start = datetime(2026, 11, 26, 4, 17, 0, 998_000, tzinfo=UTC)
    for _ in range(50):
        earlier, later = new_extract_id(start - timedelta(milliseconds=1)), new_extract_id(start)
        # THEN the later one always sorts after the earlier one
        assert earlier < later
    assert new_extract_id(start).startswith("20261126T041700Z-3e6")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "not an extract request"),
        ('{"source": "imdb"}', "extract_id: Field required"),
        ('{"extract_id": "x", "source": "imdb"}', "extract_id: String should match pattern"),
    ],
)
def test_queue_messages_that_are_not_extract_requests_are_refused(body, says):
    with pytest.raises(InvalidExtractRequest, match=says):
        parse_request(body)


def test_the_document_asks_for_the_token_only_when_the_service_has_one(tmp_path):
    def post_extracts(api_token: str | None) -> dict:
        settings = ExtractorSettings(
            api_token=api_token, aws_endpoint_url="http://127.0.0.1:9", home=tmp_path
        )
        return create_app(settings).openapi()["paths"]["/extracts"]["post"]

    guarded, unguarded = post_extracts(TOKEN), post_extracts(None)
    assert guarded["security"] == [{"HTTPBearer": []}] and "401" in guarded["responses"]
    assert "security" not in unguarded and "401" not in unguarded["responses"]


def test_a_method_the_path_does_not_take_gets_405_naming_every_method_it_does(extractor):
    # GET and POST /extracts are two routes; Starlette's 405 would name only the first one's method
    response = extractor.put("/extracts")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"

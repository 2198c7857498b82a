"""The bodies of error answers, and an OpenAPI document that says which of them each route really returns."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

SCHEMAS = "#/components/schemas/"


class Problem(BaseModel):
    """An error answer: one sentence saying what was wrong."""

    detail: str


class ValidationProblem(BaseModel):
    """A request that is not what the route takes: one sentence, and each field's problem."""

    detail: str
    errors: list[dict[str, Any]]


AUTH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Problem,
        "description": "The API token is missing or wrong",
        "headers": {
            "WWW-Authenticate": {"description": "How to authenticate", "schema": {"const": "Bearer"}}
        },
    }
}


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable sentence in ``detail`` (and the field-by-field errors beside it)."""
    errors = exc.errors()
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors
    )
    echoed = _finite(jsonable_encoder(errors))
    problem = ValidationProblem(detail=f"invalid request: {problems}", errors=echoed)
    return JSONResponse(problem.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (a request may send them; JSON has no way to answer them) as text,
    so that echoing the request's input back can never fail the answer."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def declare_problems(app: FastAPI, *, needs_token: bool) -> None:
    """Answer bad requests with ``invalid_request``, and make ``app.openapi()`` say what FastAPI leaves out.

    FastAPI documents its own 422 body (``HTTPValidationError``), not ``ValidationProblem``; it answers
    400, undocumented, to a body it cannot decode (not UTF-8) before any route runs; and it declares the
    bearer token, with its 401, on a guarded route even when the service has no token to ask for.
    """
    app.add_exception_handler(RequestValidationError, invalid_request)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_real_problems(generate(), needs_token=needs_token)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_real_problems(document: dict[str, Any], *, needs_token: bool) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (Problem, ValidationProblem):
        schemas.setdefault(model.__name__, model.model_json_schema(ref_template=SCHEMAS + "{model}"))
    for path in document.get("paths", {}).values():
        for operation in path.values():
            responses = operation["responses"]
            if _refers_to(responses.get("422"), "HTTPValidationError"):
                responses["422"] = _answer("The request is not what the route takes", ValidationProblem)
            if "requestBody" in operation:
                responses.setdefault("400", _answer("The body cannot be decoded (it is not UTF-8)", Problem))
            if not needs_token and operation.pop("security", None) is not None:
                responses.pop("401", None)
    if not needs_token:
        components.pop("securitySchemes", None)
    if not _refers_to(document, "HTTPValidationError"):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def _answer(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": SCHEMAS + model.__name__}}},
    }


def _refers_to(part: Any, schema: str) -> bool:
    return f'"{SCHEMAS}{schema}"' in json.dumps(part)

"""The served OpenAPI document says everything a generated client needs (API.md, "The OpenAPI
document"): each answer with its schema, problems described from the table of codes, the
headers sent, the security of each route as README's table of who may call what says, the
tokens a route requires, and no generated examples."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from holdsvc import errors
from holdsvc.api.throttle import RATE_LIMIT_HEADERS
from tests.helpers import Client
from tests.test_staff_access import table_rows

METHODS = ("get", "post", "put", "patch", "delete")
PROBLEM = "#/components/schemas/Problem"
Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
async def document(client: Client) -> dict[str, Any]:
    """The document as the app serves it."""
    answer = await client.get("/schema/openapi.json")
    assert answer.status_code == 200
    served: dict[str, Any] = answer.json()
    return served


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    """(method, path, operation) of every operation."""
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def answers(operation: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """An operation's responses by status."""
    return {int(status): response for status, response in operation["responses"].items()}


def header_names(response: dict[str, Any]) -> set[str]:
    return set(response.get("headers", {}))


def test_every_refusal_is_a_problem_described_by_the_table_of_codes(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        for status, response in answers(operation).items():
            if status < 400:
                continue
            where = f"{method.upper()} {path} {status}"
            assert response["content"]["application/problem+json"] == {"schema": {"$ref": PROBLEM}}
            # One refusal has a body of its own besides: /ready's not_ready (API.md).
            others = set(response["content"]) - {"application/problem+json"}
            assert not others or (path, status) == ("/ready", 503), where
            codes = [p.code for p in errors.Problem if p.status == status]
            for code in codes:
                assert code in response["description"], (where, code)


def test_every_route_that_can_refuse_says_how(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        statuses = answers(operation).keys()
        where = f"{method.upper()} {path}"
        if "requestBody" in operation:
            assert {400, 415} <= statuses, where
        if "{" in path:
            assert {400, 404} <= statuses, where
        if operation.get("security"):
            assert 401 in statuses, where
        if path not in ("/health", "/metrics"):
            assert 503 in statuses, where


def test_answers_name_the_headers_they_carry(document: dict[str, Any]) -> None:
    limited = set(RATE_LIMIT_HEADERS)
    assert limited <= document["components"]["headers"].keys()
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        for status, response in answers(operation).items():
            if status in (409, 429, 503):
                assert "Retry-After" in header_names(response), (where, status)
            if "/holds" in path and status != 429:
                assert limited <= header_names(response), (where, status)
            if "/holds" not in path:
                assert not limited & header_names(response), (where, status)
        assert ("/holds" in path) == (429 in answers(operation)), where


def test_security_follows_who_may_call_what(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    assert schemes["manageToken"]["type"] == "apiKey"
    assert (schemes["manageToken"]["in"], schemes["manageToken"]["name"]) == (
        "header",
        "Manage-Token",
    )
    shape = re.compile(r"\{[^}]*\}")
    secured = {
        (method, shape.sub("{}", path)): operation.get("security")
        for method, path, operation in operations(document)
    }
    rows = table_rows()
    assert rows
    for method, path, who in rows:
        key = (method.lower(), shape.sub("{}", path.split("?")[0]))
        if who.startswith("manage token"):
            expected = [{"manageToken": []}, {"bearerAuth": ["host"]}]
        else:
            least = who.replace("host (`bookings_open` alone), manager", "host")
            expected = [{"bearerAuth": [least]}]
        assert secured[key] == expected, (method, path, who)
    in_table = {(m.lower(), shape.sub("{}", p.split("?")[0])) for m, p, _ in rows}
    for key, security in secured.items():
        # /v1/me takes any valid token, of any role.
        if security and key != ("get", "/v1/me"):
            assert key in in_table, key


def test_secret_headers_are_required_and_the_manage_token_is_a_scheme(
    document: dict[str, Any],
) -> None:
    with_hold_token = 0
    for method, path, operation in operations(document):
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        if "/holds/{hold_id}" in path:
            token = headers["Hold-Token"]
            assert token["required"] is True, (method, path)
            assert token["schema"]["type"] == "string"
            with_hold_token += 1
        else:
            assert "Hold-Token" not in headers, (method, path)
        if "Manage-Token" in headers:
            assert path.startswith("/v1/reservations/"), path
            assert {"manageToken": []} in operation["security"], path
    assert with_hold_token == 8  # get, release, refresh, confirm; restaurants and events


def test_creations_document_their_replays(document: dict[str, Any]) -> None:
    by_id = {operation["operationId"]: operation for _, _, operation in operations(document)}
    for name, model in [
        ("placeHold", "Hold"),
        ("placeSeatHold", "Hold"),
        ("confirmHold", "Reservation"),
        ("confirmSeatHold", "Reservation"),
    ]:
        documented = answers(by_id[name])
        for status in (200, 201):
            schema = documented[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{model}"}, (name, status)


def test_ready_describes_its_body(document: dict[str, Any]) -> None:
    ready = document["paths"]["/ready"]["get"]["responses"]["200"]
    assert ready["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Ready"}
    status = document["components"]["schemas"]["Ready"]["properties"]["status"]
    assert status.get("const", (status.get("enum") or [None])[0]) == "ready"


def test_no_generated_examples(document: dict[str, Any]) -> None:
    def keys(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from keys(item)
        elif isinstance(value, list):
            for item in value:
                yield from keys(item)

    assert not {"example", "examples"} & set(keys(document))

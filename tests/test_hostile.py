"""Hostile input and abuse: rate limits, body size, constant-time secrets, quiet logs."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

import holdsvc.web
from holdsvc.app import create_app
from holdsvc.settings import Settings
from tests.conftest import MakeClient
from tests.helpers import ADMIN, Send, assert_refused_unchanged, tomorrow
from tests.serverproc import ServerProcess

Client = AsyncTestClient[Any]


async def venue(client: Client) -> str:
    body = {
        "name": "R",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    rid = str((await client.post("/v1/restaurants", json=body, headers=ADMIN)).json()["id"])
    await client.post(
        f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}] * 3}, headers=ADMIN
    )
    await client.post(
        f"/v1/restaurants/{rid}/slots", json={"from": tomorrow(), "to": tomorrow()}, headers=ADMIN
    )
    return rid


async def test_hold_endpoints_are_rate_limited_per_client(
    make_client: MakeClient, redis: Redis
) -> None:
    async with make_client(rate_limit_per_minute=5) as client:
        rid = await venue(client)
        slot = f"{tomorrow()}T19:00"
        answers = [
            await client.post(
                f"/v1/restaurants/{rid}/holds",
                json={"user_id": f"u{i}", "slot": slot, "party_size": 2},
            )
            for i in range(7)
        ]
        assert [a.status_code for a in answers[:5]].count(201) == 3  # 3 tables, then 409s
        refused = answers[5]
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "rate_limited" and "Retry-After" in refused.headers
        # Other endpoints are not limited.
        for _ in range(10):
            assert (await client.get(f"/v1/restaurants/{rid}")).status_code == 200
    # Nothing beyond the 3 holds happened.
    assert await redis.hlen(f"hs:{{{rid}}}:cells:{slot}") == 3


async def test_oversized_body_is_a_problem_and_changes_nothing(
    client: Client, redis: Redis
) -> None:
    rid = await venue(client)
    huge = {"user_id": "u", "slot": f"{tomorrow()}T19:00", "party_size": 2, "pad": "x" * 200_000}
    answer = await client.post(f"/v1/restaurants/{rid}/holds", json=huge)
    assert 400 <= answer.status_code < 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await redis.exists(f"hs:{{{rid}}}:cells:{tomorrow()}T19:00") == 0


async def test_no_token_phone_or_name_in_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rid = await venue(client)
    hold = (
        await client.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": "u", "slot": f"{tomorrow()}T19:00", "party_size": 2},
        )
    ).json()
    confirmed = (
        await client.post(
            f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
            json={"name": "Zelda Secretname", "phone": "+12125550142"},
            headers={"Hold-Token": hold["token"]},
        )
    ).json()
    await client.get("/v1/reservations", params={"phone": "+12125550142"}, headers=ADMIN)
    await client.get(
        f"/v1/reservations/{confirmed['reference']}", headers={"Manage-Token": "wrong"}
    )
    logged = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("httpx")
    )
    for secret in (hold["token"], confirmed["manage_token"], "Secretname", "5550142", "test-admin"):
        assert secret not in logged


def test_admin_tokens_are_kept_as_digests_only() -> None:
    settings = Settings(_env_file=None, admin_tokens=["plain-admin", "sha256:" + "ab" * 32])
    digests = settings.admin_token_digests()
    assert "plain-admin" not in digests and "ab" * 32 in digests
    app = create_app(settings)
    assert "plain-admin" not in repr(app.state.admin_digests)


def test_server_logs_carry_no_secrets(redis_url: str) -> None:
    """A real server at log level info: access lines name routes, never ids, tokens or phones."""
    with ServerProcess(redis_url, env={"HOLDSVC_LOG_LEVEL": "info"}) as server:
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        with httpx.Client(base_url=server.url, timeout=10) as http:
            body = {
                "name": "Logs",
                "phone": "+12125550100",
                "timezone": "UTC",
                "opens": "10:00",
                "closes": "22:00",
            }
            rid = http.post("/v1/restaurants", json=body, headers=admin).json()["id"]
            http.post(
                f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}]}, headers=admin
            )
            http.post(
                f"/v1/restaurants/{rid}/slots",
                json={"from": tomorrow(), "to": tomorrow()},
                headers=admin,
            )
            hold = http.post(
                f"/v1/restaurants/{rid}/holds",
                json={"user_id": "u", "slot": f"{tomorrow()}T19:00", "party_size": 2},
            ).json()
            res = http.post(
                f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
                json={"name": "Zelda Secretname", "phone": "+12125550142"},
                headers={"Hold-Token": hold["token"]},
            ).json()
            http.get("/v1/reservations", params={"phone": "+12125550142"}, headers=admin)
            http.get(f"/v1/reservations/{res['reference']}", params={"token": res["manage_token"]})
        # Log lines go through a queue: give the last one a moment to reach the output.
        for _ in range(50):
            if "GET /v1/reservations/{reference} 403" in server.output():
                break
            time.sleep(0.05)
        output = server.output()
    assert "GET /v1/reservations/{reference} 403" in output  # access lines are there
    for secret in (
        hold["token"],
        res["manage_token"],
        "Secretname",
        "5550142",
        server.admin_token,
        res["reference"],
    ):
        assert secret not in output


async def test_cors_is_off_unless_configured(make_client: MakeClient) -> None:
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    async with make_client() as client:
        answer = await client.get("/health", headers={"Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in answer.headers
    async with make_client(cors_origins=["https://shop.example"]) as client:
        answer = await client.options("/v1/restaurants", headers=preflight)
        assert answer.headers.get("access-control-allow-origin") == "https://shop.example"
        other = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


# -- cross-site requests: JSON bodies only ---------------------------------------------------

NOT_JSON = {
    # What a plain <form> on any site can send without a CORS preflight.
    "form-urlencoded": ("application/x-www-form-urlencoded", b"user_id=u&party_size=2"),
    "form-text-plain": ("text/plain", b'{"user_id": "u", "party_size": 2, "x": "="}'),
    "multipart": (
        "multipart/form-data; boundary=b",
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n',
    ),
    # JSON by another name, or in another charset, is not the JSON we decode either.
    "json-suffix": ("application/vnd.api+json", b"{}"),
    "latin-1": ("application/json; charset=latin-1", b"{}"),
}


def _content(content_type: str | None, body: bytes) -> dict[str, Any]:
    headers = {**ADMIN}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return {"content": body, "headers": headers}


async def test_a_cross_site_form_cannot_place_a_hold(client: Client, redis: Redis) -> None:
    """The exact request a hostile page's <form enctype="text/plain"> makes a visitor's browser
    send: a valid JSON hold, labelled text/plain. It must not hold anything."""
    rid = await venue(client)
    slot = f"{tomorrow()}T19:00"
    hold = json.dumps({"user_id": "victim", "slot": slot, "party_size": 2}).encode()
    url = f"/v1/restaurants/{rid}/holds"
    cases: dict[str, Send] = {
        "text/plain": partial(
            client.post, url, content=hold, headers={"Content-Type": "text/plain"}
        ),
        "no content type": partial(client.post, url, content=hold, headers={"Content-Type": ""}),
        **{
            name: partial(client.post, url, **_content(content_type, body))
            for name, (content_type, body) in NOT_JSON.items()
        },
    }
    await assert_refused_unchanged(redis, cases, 415, "unsupported_media_type")
    # The same body as JSON (with or without a charset) is a hold.
    for content_type in ("application/json", "Application/JSON; charset=UTF-8"):
        placed = await client.post(url, content=hold, headers={"Content-Type": content_type})
        assert placed.status_code == 201, placed.text
        await client.delete(
            f"{url}/{placed.json()['id']}", headers={"Hold-Token": placed.json()["token"]}
        )


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "ABCDEF", path)


async def test_every_json_body_route_refuses_other_media_types_and_documents_415(
    client: Client, redis: Redis
) -> None:
    """One rule: each operation with a request body answers 415 for a body that is not JSON
    (before its guards, so with or without a token) and lists 415 in its responses; no
    operation without a body lists it."""
    document = (await client.get("/schema/openapi.json")).json()
    cases: dict[str, Send] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            has_body = "requestBody" in operation
            assert ("415" in operation["responses"]) == has_body, (method, path)
            if not has_body:
                continue
            for name, (content_type, body) in NOT_JSON.items():
                send = partial(
                    client.request, method.upper(), _fill(path), **_content(content_type, body)
                )
                cases[f"{method} {path} {name}"] = send
                cases[f"{method} {path} no content type"] = partial(
                    client.request,
                    method.upper(),
                    _fill(path),
                    content=b"{}",
                    headers={"Content-Type": ""},
                )
    assert len({case.rsplit(" ", 2)[0] for case in cases}) >= 10
    await assert_refused_unchanged(redis, cases, 415, "unsupported_media_type")


def test_the_pages_send_their_bodies_as_json() -> None:
    """Every body a page sends goes through api.js, which labels it JSON; the other fetch()
    calls (the staff feed, the service worker relaying the page's own requests) send none,
    and no page posts a form."""
    web = Path(holdsvc.web.__file__).parent
    api = (web / "static" / "js" / "api.js").read_text()
    labelled = r'init\.body = JSON\.stringify\(body\);\s+init\.headers\["Content-Type"\] = '
    assert re.search(labelled + '"application/json";', api)
    for script in (web / "static" / "js").glob("*.js"):
        for line in script.read_text().splitlines():
            if "fetch(" in line and script.name != "api.js":
                assert "body" not in line.split("fetch(", 1)[1], (script.name, line)
    for template in (web / "templates").rglob("*.html"):
        assert 'method="post"' not in template.read_text().lower(), template.name


# -- bad input is a 4xx that changes nothing, never a 500 ------------------------------------


def _event(starts_at: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Edge", "starts_at": starts_at, "total_seats": 10, **extra}


async def test_event_times_no_zone_can_show_are_refused_before_anything_is_stored(
    client: Client, redis: Redis
) -> None:
    cases: dict[str, Send] = {
        starts_at: partial(
            client.post, "/v1/events", json=_event(starts_at, **extra), headers=ADMIN
        )
        for starts_at, extra in (
            ("0001-01-01T00:00:00+14:00", {}),
            ("0001-01-01T23:59:59Z", {}),
            ("9999-12-31T23:59:59-14:00", {}),
            ("9999-12-31T00:00:00Z", {}),
            ("9999-12-31T10:00:00+00:00", {"timezone": "Pacific/Kiritimati"}),
        )
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    assert (await client.get("/v1/events")).json() == {"events": []}


async def test_the_earliest_and_latest_times_make_usable_events(client: Client) -> None:
    """At the edges of the range an event is shown, listed and refuses holds as any other."""
    early = await client.post("/v1/events", json=_event("0001-01-02T00:00:00Z"), headers=ADMIN)
    late = await client.post("/v1/events", json=_event("9999-12-30T00:00:00-14:00"), headers=ADMIN)
    assert early.status_code == 201 and late.status_code == 201, (early.text, late.text)
    assert early.json()["slot"] == "0001-01-02T00:00"
    assert late.json()["starts_at"] == "9999-12-30T00:00:00.000-14:00"
    listed = await client.get("/v1/events")
    assert listed.status_code == 200 and len(listed.json()["events"]) == 2
    for event in (early.json(), late.json()):
        assert (await client.get(f"/v1/events/{event['id']}/seats")).status_code == 200
    hold = await client.post(
        f"/v1/events/{early.json()['id']}/holds", json={"user_id": "u", "count": 1}
    )
    assert hold.status_code == 409 and hold.json()["code"] == "slot_in_past", hold.text
    hold = await client.post(
        f"/v1/events/{late.json()['id']}/holds", json={"user_id": "u", "count": 1}
    )
    assert hold.status_code == 201 and hold.json()["slot"] == "9999-12-30T00:00", hold.text


async def test_slot_grids_in_early_years_have_well_formed_slot_ids(client: Client) -> None:
    rid = await venue(client)
    days = {"from": "0005-01-01", "to": "0005-01-01"}
    assert (
        await client.post(f"/v1/restaurants/{rid}/slots", json=days, headers=ADMIN)
    ).status_code == 201
    slots = (await client.get(f"/v1/restaurants/{rid}/slots", params=days)).json()["slots"]
    assert slots[0]["slot"] == "0005-01-01T10:00"
    assert (await client.get(f"/v1/restaurants/{rid}/slots/0005-01-01T10:00")).status_code == 200
    hold = await client.post(
        f"/v1/restaurants/{rid}/holds",
        json={"user_id": "u", "slot": "0005-01-01T10:00", "party_size": 2},
    )
    assert hold.status_code == 409 and hold.json()["code"] == "slot_in_past", hold.text


def _deep(depth: int, kind: str) -> bytes:
    if kind == "arrays":
        return b"[" * depth + b"]" * depth
    return b'{"name":' * depth + b"1" + b"}" * depth


async def real_ids(client: Client) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Ids of real things for every path parameter, and the headers each face's hold needs,
    so that a request reaches the decoding of its body."""
    rid = await venue(client)
    event = await client.post("/v1/events", json=_event("2030-06-01T20:00:00Z"), headers=ADMIN)
    eid = event.json()["id"]
    table = await client.post(
        f"/v1/restaurants/{rid}/holds",
        json={"user_id": "u", "slot": f"{tomorrow()}T19:00", "party_size": 2},
    )
    seats = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "u", "count": 1})
    kept = await client.post(
        f"/v1/restaurants/{rid}/holds",
        json={"user_id": "u", "slot": f"{tomorrow()}T20:00", "party_size": 2},
    )
    booked = await client.post(
        f"/v1/restaurants/{rid}/holds/{kept.json()['id']}/confirm",
        json={"name": "Ada", "phone": "+12125550100"},
        headers={"Hold-Token": kept.json()["token"]},
    )
    ids = {
        "rid": rid,
        "eid": eid,
        "reference": booked.json()["reference"],
        "slot": f"{tomorrow()}T19:00",
    }
    by_face = {
        "/v1/restaurants/": {"hold_id": table.json()["id"], "Hold-Token": table.json()["token"]},
        "/v1/events/": {"hold_id": seats.json()["id"], "Hold-Token": seats.json()["token"]},
    }
    return ids, by_face


async def test_deeply_nested_bodies_are_a_400_on_every_json_route(
    client: Client, redis: Redis
) -> None:
    ids, by_face = await real_ids(client)
    document = (await client.get("/schema/openapi.json")).json()
    cases: dict[str, Send] = {}
    for path, item in document["paths"].items():
        face = next((v for k, v in by_face.items() if path.startswith(k)), {})
        # Path parameters this test has no real value for (a closure's day, a staff token's id)
        # get a placeholder: the body is what is under test.
        known = {**ids, "hold_id": face.get("hold_id", "NONE")}
        url = path.format_map(defaultdict(lambda: "NONE", known))
        headers = {**ADMIN, "Content-Type": "application/json"}
        if "Hold-Token" in face:
            headers["Hold-Token"] = face["Hold-Token"]
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            for kind in ("arrays", "objects"):
                cases[f"{method} {path} {kind}"] = partial(
                    client.request,
                    method.upper(),
                    url,
                    content=_deep(5000, kind),
                    headers=headers,
                )
    await assert_refused_unchanged(redis, cases, 400, "validation_error")


BAD_POSITIONS = (
    "18446744073709551616-0",
    "0-18446744073709551616",
    "99999999999999999999",
    "99999999999999999999-99999999999999999999",
    "\uff11\uff12-0",  # digits, but not ASCII ones
)


async def test_feed_positions_beyond_64_bits_are_a_400_in_both_variants(
    client: Client, redis: Redis
) -> None:
    rid = await venue(client)
    url = f"/v1/restaurants/{rid}/changes"
    as_json = {**ADMIN, "Accept": "application/json"}
    cases: dict[str, Send] = {}
    for position in BAD_POSITIONS:
        cases[f"page since={position}"] = partial(
            client.get, url, params={"since": position}, headers=as_json
        )
        cases[f"stream since={position}"] = partial(
            client.get, url, params={"since": position}, headers=ADMIN
        )
        if position.isascii():
            cases[f"stream Last-Event-ID={position}"] = partial(
                client.get, url, headers={**ADMIN, "Last-Event-ID": position}
            )
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    # The largest id there is: a valid position after which nothing can come.
    last = f"{2**64 - 1}-{2**64 - 1}"
    page = await client.get(url, params={"since": last}, headers=as_json)
    assert page.status_code == 200 and page.json() == {"changes": [], "last_id": last}


# -- admin tokens: the whole token or nothing --------------------------------------------------


async def test_only_the_exact_admin_token_is_accepted(client: Client, redis: Redis) -> None:
    """A token that merely starts with a real admin token (or is one cut short, or in
    another case) is refused on every kind of admin route, and changes nothing."""
    rid = await venue(client)
    near_misses = (
        "test-admin-x",
        "test-adminX",
        "test-admin2",
        "test-admi",
        "TEST-ADMIN",
        "test-admin.",
    )
    cases: dict[str, Send] = {}
    for token in near_misses:
        bearer = {"Authorization": f"Bearer {token}"}
        cases |= {
            f"create {token}": partial(
                client.post,
                "/v1/restaurants",
                json={
                    "name": "R",
                    "phone": "+12125550100",
                    "timezone": "UTC",
                    "opens": "10:00",
                    "closes": "22:00",
                },
                headers=bearer,
            ),
            f"audit {token}": partial(client.get, f"/v1/restaurants/{rid}/audit", headers=bearer),
            f"pause {token}": partial(
                client.patch,
                f"/v1/restaurants/{rid}",
                json={"bookings_open": False},
                headers=bearer,
            ),
            f"phone search {token}": partial(
                client.get, "/v1/reservations", params={"phone": "+12125550100"}, headers=bearer
            ),
            f"reservation {token}": partial(
                client.get, f"/v1/reservations/{rid}-ABCDEF", headers=bearer
            ),
        }
    await assert_refused_unchanged(redis, cases, 401, "unauthorized")
    # The real one passes the same doors.
    assert (await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)).status_code == 200

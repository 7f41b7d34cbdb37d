"""A client generated from the served OpenAPI document runs the guest flow, every answer
parsed into its documented model.

``openapi-python-client`` generates a package from ``/schema/openapi.json`` of a real
``holdsvc serve`` (2 workers) into a temporary directory, with no warning at all; the tests
import it and drive the server through it: availability, a hold and its idempotent retry
(200), refresh, confirm and its replay (200), the reservation read, moved and cancelled with
its manage token, and the refusals a client must handle (403, 409, 410, 401, 429).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from holdsvc.api.throttle import RATE_LIMIT_HEADERS
from tests.helpers import tomorrow
from tests.serverproc import ServerProcess

PACKAGE = "holdsvc_client"
# No formatter run after generating (the default runs ruff twice): the code is only imported.
CONFIG = f"package_name_override: {PACKAGE}\npost_hooks: []\n"
GUEST = {"name": "Ada Lovelace", "phone": "+12125550100"}


def generate(document: bytes, directory: Path) -> str:
    """Generate the client package into ``directory``; the generator's whole output."""
    (directory / "openapi.json").write_bytes(document)
    (directory / "config.yaml").write_text(CONFIG)
    generator = Path(sys.executable).parent / "openapi-python-client"
    run = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            "openapi.json",
            "--config",
            "config.yaml",
            "--meta",
            "none",
            "--output-path",
            PACKAGE,
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def api(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated client's package, imported: ``api.client``, ``api.models``, and each
    operation module by its name (``api.place_hold``)."""
    directory = tmp_path_factory.mktemp("client")
    document = httpx.get(f"{server.url}/schema/openapi.json", timeout=10).content
    output = generate(document, directory)
    assert "Generating" in output, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(directory))
    try:
        package = importlib.import_module(PACKAGE)
        operations = {
            path.stem: importlib.import_module(f"{PACKAGE}.api.{path.parent.name}.{path.stem}")
            for path in (directory / PACKAGE / "api").glob("*/*.py")
            if path.stem != "__init__"
        }
        yield SimpleNamespace(
            client=package,
            models=importlib.import_module(f"{PACKAGE}.models"),
            **operations,
        )
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def parsed(answer: Any, status: int, model: type[Any]) -> Any:
    """The answer has this status and parses into ``model`` with every field it sent
    documented (nothing left over in ``additional_properties``, nothing lost)."""
    assert answer.status_code == status, answer.content
    value: Any = answer.parsed
    assert isinstance(value, model), (type(value), answer.content)
    assert value.additional_properties == {}, value.additional_properties
    assert value.to_dict() == json.loads(answer.content)
    return value


def problem(answer: Any, api: Any, status: int, code: str) -> Any:
    """The answer is the documented Problem with this status and code."""
    refusal = parsed(answer, status, api.models.Problem)
    assert (refusal.status, refusal.code) == (status, code)
    return refusal


@pytest.fixture
async def admin(api: Any, server: ServerProcess, redis: Redis) -> AsyncIterator[Any]:
    """The generated client with the admin bearer token (Redis flushed)."""
    async with api.client.AuthenticatedClient(
        base_url=server.url, token=server.admin_token
    ) as client:
        yield client


@pytest.fixture
async def guest(api: Any, server: ServerProcess) -> AsyncIterator[Any]:
    """The generated client with no token."""
    async with api.client.Client(base_url=server.url) as client:
        yield client


async def restaurant(api: Any, admin: Any, **rules: Any) -> str:
    """A restaurant with a 2-top and a 4-top and tomorrow's slots, made through the client."""
    models = api.models
    body = models.RestaurantInput(
        name="Chez Client",
        phone=GUEST["phone"],
        timezone="UTC",
        opens="10:00",
        closes="22:00",
        **rules,
    )
    created = parsed(
        await api.create_restaurant.asyncio_detailed(client=admin, body=body),
        201,
        models.Restaurant,
    )
    tables = models.TablesInput(
        tables=[models.TableInput(capacity=2), models.TableInput(capacity=4)]
    )
    parsed(
        await api.add_tables.asyncio_detailed(created.id, client=admin, body=tables),
        201,
        models.TableList,
    )
    span = models.SlotsInput(from_=tomorrow(), to=tomorrow())
    parsed(
        await api.add_slots.asyncio_detailed(created.id, client=admin, body=span),
        201,
        models.SlotsCreated,
    )
    return str(created.id)


async def test_the_guest_flow_retries_included(
    api: Any, admin: Any, guest: Any, server: ServerProcess
) -> None:
    models = api.models
    rid = await restaurant(api, admin)
    available = parsed(
        await api.get_availability.asyncio_detailed(
            rid, client=guest, from_=tomorrow(), to=tomorrow(), party_size=2
        ),
        200,
        models.AvailableSlotList,
    )
    slot = available.slots[0].slot
    ask = models.HoldInput(user_id="guest-1", slot=slot, party_size=2)

    hold = parsed(
        await api.place_hold.asyncio_detailed(rid, client=guest, body=ask, idempotency_key="k1"),
        201,
        models.Hold,
    )
    retried = parsed(
        await api.place_hold.asyncio_detailed(rid, client=guest, body=ask, idempotency_key="k1"),
        200,
        models.Hold,
    )
    assert (retried.id, retried.token) == (hold.id, hold.token)
    refreshed = parsed(
        await api.refresh_hold.asyncio_detailed(rid, hold.id, client=guest, hold_token=hold.token),
        200,
        models.Hold,
    )
    assert refreshed.id == hold.id

    details = models.ConfirmInput(name=GUEST["name"], phone=GUEST["phone"])
    confirm = api.confirm_hold.asyncio_detailed
    made = parsed(
        await confirm(rid, hold.id, client=guest, body=details, hold_token=hold.token),
        201,
        models.Reservation,
    )
    again = parsed(
        await confirm(rid, hold.id, client=guest, body=details, hold_token=hold.token),
        200,
        models.Reservation,
    )
    assert again.reference == made.reference

    # The manage token is the apiKey scheme: the generated client sends it as its auth header.
    async with api.client.AuthenticatedClient(
        base_url=server.url,
        token=made.manage_token,
        prefix="",
        auth_header_name="Manage-Token",
    ) as manager:
        seen = parsed(
            await api.get_reservation.asyncio_detailed(made.reference, client=manager),
            200,
            models.Reservation,
        )
        assert (seen.reference, seen.slot, seen.status) == (made.reference, slot, "confirmed")
        later = available.slots[-1].slot
        moved = parsed(
            await api.change_reservation.asyncio_detailed(
                made.reference, client=manager, body=models.ReservationPatch(slot=later)
            ),
            200,
            models.Reservation,
        )
        assert moved.slot == later != slot
        cancelled = parsed(
            await api.cancel_reservation.asyncio_detailed(made.reference, client=manager),
            200,
            models.Reservation,
        )
        assert cancelled.status == "cancelled"


async def test_refusals_parse_as_problems(
    api: Any, admin: Any, guest: Any, server: ServerProcess
) -> None:
    models = api.models
    rid = await restaurant(api, admin)
    slot = f"{tomorrow()}T19:00"
    ask = models.HoldInput(user_id="guest-1", slot=slot, party_size=2, table_id="T1")
    hold = parsed(
        await api.place_hold.asyncio_detailed(rid, client=guest, body=ask), 201, models.Hold
    )

    taken = await api.place_hold.asyncio_detailed(
        rid,
        client=guest,
        body=models.HoldInput(user_id="guest-2", slot=slot, party_size=2, table_id="T1"),
    )
    refusal = problem(taken, api, 409, "unit_unavailable")
    assert refusal.retry_after >= 1 and taken.headers["Retry-After"] == str(refusal.retry_after)

    wrong = await api.get_hold.asyncio_detailed(rid, hold.id, client=guest, hold_token="x" * 40)
    problem(wrong, api, 403, "forbidden")

    async with api.client.AuthenticatedClient(base_url=server.url, token="wrong") as nobody:
        problem(
            await api.list_restaurant_reservations.asyncio_detailed(rid, client=nobody),
            api,
            401,
            "unauthorized",
        )

    missing = await api.get_restaurant.asyncio_detailed("NOSUCH", client=guest)
    problem(missing, api, 404, "not_found")


async def test_a_lapsed_hold_is_410(api: Any, admin: Any, guest: Any) -> None:
    models = api.models
    rid = await restaurant(api, admin, hold_seconds=1, max_hold_seconds=1)
    ask = models.HoldInput(user_id="guest-1", slot=f"{tomorrow()}T19:00", party_size=2)
    hold = parsed(
        await api.place_hold.asyncio_detailed(rid, client=guest, body=ask), 201, models.Hold
    )
    await asyncio.sleep(1.2)
    details = models.ConfirmInput(name=GUEST["name"], phone=GUEST["phone"])
    lapsed = await api.confirm_hold.asyncio_detailed(
        rid, hold.id, client=guest, body=details, hold_token=hold.token
    )
    problem(lapsed, api, 410, "hold_expired")


async def test_rate_limited_answers_parse_and_carry_their_headers(
    api: Any, redis_url: str, redis: Redis
) -> None:
    models = api.models
    limited = ServerProcess(redis_url, env={"HOLDSVC_RATE_LIMIT_PER_MINUTE": "2"})
    with limited:
        async with (
            api.client.AuthenticatedClient(
                base_url=limited.url, token=limited.admin_token
            ) as admin,
            api.client.Client(base_url=limited.url) as guest,
        ):
            rid = await restaurant(api, admin)
            ask = models.HoldInput(user_id="guest-1", slot=f"{tomorrow()}T19:00", party_size=2)
            first = await api.place_hold.asyncio_detailed(rid, client=guest, body=ask)
            parsed(first, 201, models.Hold)
            assert first.headers["RateLimit-Limit"] == "2"
            # What the document names is what is sent (the headers are case-insensitive).
            assert all(name in first.headers for name in RATE_LIMIT_HEADERS)
            answers = [await api.get_restaurant.asyncio_detailed(rid, client=guest)]  # not limited
            for _ in range(2):
                answers.append(await api.place_hold.asyncio_detailed(rid, client=guest, body=ask))
    parsed(answers[0], 200, models.Restaurant)
    parsed(answers[1], 201, models.Hold)
    refused = answers[2]
    limit = problem(refused, api, 429, "rate_limited")
    assert refused.headers["Retry-After"] == str(limit.retry_after)

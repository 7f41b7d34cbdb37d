"""A small load of guests for the crash tests: hold, then confirm (and maybe cancel) or release.

Every confirm and cancel the server acknowledged is recorded, so a test can check afterwards
that each one is still there.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx


@dataclass
class Outcome:
    """What the clients saw."""

    confirmed: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    requests: int = 0
    confirm_times: list[float] = field(default_factory=list)


async def guest(
    http: httpx.AsyncClient,
    rid: str,
    slots: list[str],
    name: str,
    until: float,
    outcome: Outcome,
    rng: random.Random,
) -> None:
    """One virtual guest, looping until ``until`` (monotonic seconds)."""
    while time.monotonic() < until:
        try:
            await one_visit(http, rid, rng.choice(slots), name, outcome, rng)
        except httpx.HTTPError:
            outcome.transport_errors += 1
            await asyncio.sleep(0.05)


async def one_visit(
    http: httpx.AsyncClient, rid: str, slot: str, name: str, outcome: Outcome, rng: random.Random
) -> None:
    outcome.requests += 1
    hold = await http.post(
        f"/v1/restaurants/{rid}/holds", json={"user_id": name, "slot": slot, "party_size": 2}
    )
    outcome.statuses[hold.status_code] += 1
    if hold.status_code != 201:
        await asyncio.sleep(0.01)
        return
    token = {"Hold-Token": hold.json()["token"]}
    path = f"/v1/restaurants/{rid}/holds/{hold.json()['id']}"
    outcome.requests += 1
    if rng.random() < 0.3:
        released = await http.delete(path, headers=token)
        outcome.statuses[released.status_code] += 1
        return
    confirmed = await http.post(
        f"{path}/confirm", json={"name": "Crash Test", "phone": "+12125550100"}, headers=token
    )
    outcome.statuses[confirmed.status_code] += 1
    if confirmed.status_code not in (200, 201):
        return
    reference = confirmed.json()["reference"]
    outcome.confirmed.add(reference)
    outcome.confirm_times.append(time.monotonic())
    if rng.random() < 0.3:
        outcome.requests += 1
        cancelled = await http.delete(
            f"/v1/reservations/{reference}",
            headers={"Manage-Token": confirmed.json().get("manage_token", "")},
        )
        outcome.statuses[cancelled.status_code] += 1
        if cancelled.status_code == 200:
            outcome.cancelled.add(reference)


async def run_load(
    base_url: str, rid: str, slots: list[str], *, users: int, seconds: float, seed: int = 1
) -> Outcome:
    """``users`` guests for ``seconds``; returns what they saw acknowledged."""
    outcome = Outcome()
    rng = random.Random(seed)
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=users * 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=5, limits=limits) as http:
        await asyncio.gather(
            *(guest(http, rid, slots, f"g{n}", until, outcome, rng) for n in range(users))
        )
    return outcome


async def load_venue(
    base: str, admin: dict[str, str], *, name: str, tables: int, hold_seconds: int
) -> tuple[str, list[str]]:
    """A UTC restaurant for a load: ``tables`` two-seat tables, 12 slots tomorrow, a cap of 2."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=10) as http:
        body = {
            "name": name,
            "phone": "+12125550100",
            "timezone": "UTC",
            "opens": "10:00",
            "closes": "22:00",
            "hold_seconds": hold_seconds,
            "max_hold_seconds": hold_seconds,
            "max_holds_per_user": 2,
        }
        rid = (await http.post("/v1/restaurants", json=body)).json()["id"]
        await http.post(
            f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}] * tables}
        )
        await http.post(f"/v1/restaurants/{rid}/slots", json={"from": tomorrow, "to": tomorrow})
    return str(rid), [f"{tomorrow}T{h}:00" for h in range(10, 22)]

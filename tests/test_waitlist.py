"""The waitlist (API.md "Waitlist", DESIGN.md invariant 9): join, read, leave, the staff list,
and the hand-off of freed cells inside the step that frees them."""

from __future__ import annotations

from typing import Any

from holdsvc.keys import Keys
from holdsvc.services import Services
from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    GUEST,
    Client,
    assert_problem,
    day_after,
    lapse,
    new_hold,
    new_reservation,
    new_venue,
)

redis_backend = both_backends

DAY = day_after(1)
SLOT = f"{DAY}T19:00"
OTHER_SLOT = f"{DAY}T20:00"
WAITER = {"name": "Grace Hopper", "phone": "+1 212 555 0199"}


async def join(
    client: Client, rid: str, user: str, *, party: int = 2, slot: str = SLOT
) -> dict[str, Any]:
    """Join a restaurant slot's waitlist (must succeed)."""
    answer = await client.post(
        f"/v1/restaurants/{rid}/waitlist",
        json={"user_id": user, "slot": slot, "party_size": party, **WAITER},
    )
    assert answer.status_code == 201, answer.text
    entry: dict[str, Any] = answer.json()
    return entry


async def entry_of(client: Client, rid: str, entry: dict[str, Any]) -> dict[str, Any]:
    answer = await client.get(
        f"/v1/restaurants/{rid}/waitlist/{entry['id']}", headers={"Waitlist-Token": entry["token"]}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def feed(client: Client, rid: str) -> list[dict[str, Any]]:
    answer = await client.get(
        f"/v1/restaurants/{rid}/changes", headers={**ADMIN, "Accept": "application/json"}
    )
    changes: list[dict[str, Any]] = answer.json()["changes"]
    return changes


async def test_a_cancel_offers_the_table_to_the_waiting_entry(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    made = await new_reservation(client, rid, "guest", slot=SLOT)
    entry = await join(client, rid, "waiter")
    assert entry["status"] == "waiting" and entry["position"] == 1 and entry["token"]
    cancelled = await client.delete(
        f"/v1/reservations/{made['reference']}", headers={"Manage-Token": made["manage_token"]}
    )
    assert cancelled.status_code == 200
    seen = await entry_of(client, rid, entry)
    assert seen["status"] == "offered" and seen["position"] is None
    hold = seen["hold"]
    assert hold["user_id"] == "waiter" and hold["table_id"] == "T1" and hold["token"]
    # The feed: the cancel, then one 'offered' entry and no 'held' one.
    events = [c["event"] for c in await feed(client, rid)]
    assert events[-2:] == ["cancelled", "offered"]
    assert events.count("held") == 1  # the guest's own hold only
    # Nobody else can take the table now.
    other = await client.post(
        f"/v1/restaurants/{rid}/holds", json={"user_id": "bot", "slot": SLOT, "party_size": 2}
    )
    assert_problem(other, 409, "no_table_available")
    confirmed = await client.post(
        f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
        json=GUEST,
        headers={"Hold-Token": hold["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    assert (await entry_of(client, rid, entry))["status"] == "confirmed"

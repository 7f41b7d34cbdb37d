"""A restaurant's booking rules: durations by party size, combinations, pacing, one booking per
guest (no HTTP here).

The rules decide which keys a claim touches (how many slots, whether the combinations are
read), so the service reads them from a per-process cache and passes them, with the venue's
``rules_version``, to the script; the script refuses (STALE) when the version moved on, and
the caller reads the rules again. A venue with none of them keeps the plain one-slot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, tzinfo

from holdsvc import slots as timegrid
from holdsvc.keys import VenueKeys

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class BookingRules:
    """The rules of one venue as its venue hash stores them."""

    version: str = "0"
    durations: tuple[tuple[int, int], ...] = ()
    covers_cap: int = 0
    one_booking: bool = False
    combinations: bool = False

    @property
    def rich(self) -> bool:
        """Whether a claim needs more than the plain one-slot path."""
        return bool(self.durations) or self.covers_cap > 0 or self.one_booking or self.combinations

    def slot_count(self, party_size: int, slot_minutes: int) -> int:
        """How many grid slots a party's booking spans: the first rule whose ``max_party``
        seats it, else one slot."""
        for max_party, minutes in self.durations:
            if party_size <= max_party:
                return max(1, minutes // slot_minutes)
        return 1

    def script_args(self, slot_ids: list[str], slot_minutes: int) -> list[str | int]:
        """The rich path's ARGV tail shared by hold, book and change: slot ids, step ms, covers
        cap, one booking, combinations."""
        return [
            json.dumps(slot_ids),
            slot_minutes * MINUTE_MS,
            self.covers_cap,
            "1" if self.one_booking else "0",
            "1" if self.combinations else "0",
        ]


def read_rules(fields: dict[str, str]) -> BookingRules:
    """The rules stored in a venue hash."""
    durations = (
        tuple(
            (int(max_party), int(minutes)) for max_party, minutes in json.loads(fields["durations"])
        )
        if fields.get("durations")
        else ()
    )
    return BookingRules(
        version=fields.get("rules_version", "0"),
        durations=durations,
        covers_cap=int(fields.get("max_covers_per_slot", "0")),
        one_booking=fields.get("one_booking_per_guest") == "1",
        combinations=int(fields.get("combinations", "0")) > 0,
    )


def span_slot_ids(slot: str, count: int, slot_minutes: int, tz: tzinfo) -> list[str]:
    """The ids of ``count`` slots back to back from ``slot`` (by the clock: slot_minutes
    apart in real time). Only ``slot`` when its local time does not exist (the script then
    finds it missing from the grid)."""
    if count <= 1:
        return [slot]
    start = timegrid.slot_start_ms(slot, tz)
    if start is None:
        return [slot]
    step = slot_minutes * MINUTE_MS
    return [slot] + [
        timegrid.format_slot_id(datetime.fromtimestamp((start + i * step) / 1000, tz))
        for i in range(1, count)
    ]


def record_slots(fields: dict[str, str]) -> list[str]:
    """The slots a hold or reservation record spans, in order (include/booking_slots.lua)."""
    spanned = fields.get("slots")
    if spanned:
        loaded: list[str] = json.loads(spanned)
        return loaded
    return [fields["slot"]]


def following_slot_keys(keys: VenueKeys, slot_ids: list[str]) -> list[str]:
    """The cells and held keys of every slot after the first (include/slot_keys.lua)."""
    return [key for slot in slot_ids[1:] for key in (keys.cells(slot), keys.held(slot))]


def booking_tail(keys: VenueKeys, fields: dict[str, str]) -> list[str]:
    """The keys a script that ends or changes a hold needs after its own: the covers hash of
    its first slot, its user's guest hash, then the following slots' cells and held keys."""
    return [
        keys.covers(fields["slot"]),
        keys.guest(fields.get("user", "")),
        *following_slot_keys(keys, record_slots(fields)),
    ]

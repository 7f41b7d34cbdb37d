"""The audit: one venue checked against every invariant of DESIGN.md. Read-only.

Each slot is read in one MULTI (cells, held set and every hold and reservation of that slot
together), so its picture is consistent even while the venue takes bookings. Checks that
span slots (indexes, user sets, the feed) are read separately; a violation is reported only
when a second, fresh pass finds it again, so a change racing the audit is not a false alarm.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from holdsvc.booking_rules import MINUTE_MS, BookingRules, read_rules, record_slots
from holdsvc.clock import redis_now_ms
from holdsvc.errors import NotFound
from holdsvc.keys import KeyFamily, Keys, VenueKeys, user_digest
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.seatmap import SeatMap, fits, index_problems
from holdsvc.units import decode_units

# A booking's time as the guest rule sees it: start ms, end ms, hold id or reference.
_Span = tuple[int, int, str | None, str | None]
LIVE_RESERVATION = ("confirmed", "seated", "no_show", "completed")
LIVE_ENTRY = ("waiting", "offered")
NEED_SCALE = 1 << 32
TERMINAL_EVENT = {"released": "released", "expired": "expired", "confirmed": "confirmed"}
SNAPSHOT_TRIES = 5


class Violation(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """One broken invariant, with the ids it concerns."""

    check: str
    detail: str
    slot: str | None = None
    unit: str | None = None
    hold_id: str | None = None
    reference: str | None = None
    user_id: str | None = None


class AuditReport(msgspec.Struct, kw_only=True):
    """The audit of one venue."""

    venue_id: str
    ok: bool
    violations: list[Violation]
    checked: dict[str, int]


@dataclass
class _Waitlist:
    """The waitlist as one pass read it: entries, and per slot its sets."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: dict[str, dict[str, int]] = field(default_factory=dict)
    # The waiting entries passed over at the cap (marked `capped`), per slot.
    capped: dict[str, dict[str, int]] = field(default_factory=dict)
    queue: dict[str, dict[str, int]] = field(default_factory=dict)
    live: dict[str, dict[str, int]] = field(default_factory=dict)
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    # The slots the scripts list as having waiting entries (slot -> start ms).
    waiting_slots: dict[str, int] = field(default_factory=dict)
    # Ended entries -> when they ended (the oldest are dropped a week on).
    ended: dict[str, int] = field(default_factory=dict)
    # Combination id -> its tables and capacity (a waiting party may fit one).
    combinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # An event's seat map (offers take blocks together), else None.
    seat_map: SeatMap | None = None


@dataclass
class _Venue:
    """Everything one pass read."""

    fields: dict[str, str]
    now: int
    slots: dict[str, int]
    units: set[str] = field(default_factory=set)
    # Removed tables -> when (ms): past bookings may name them, no slot after may claim them.
    removed: dict[str, int] = field(default_factory=dict)
    capacities: dict[str, int] = field(default_factory=dict)
    cells: dict[str, dict[str, str]] = field(default_factory=dict)
    held: dict[str, dict[str, float]] = field(default_factory=dict)
    holds: dict[str, dict[str, str]] = field(default_factory=dict)
    reservations: dict[str, dict[str, str]] = field(default_factory=dict)


class Auditor:
    """Reads a venue and reports every invariant it breaks."""

    def __init__(self, redis: AnyRedis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def audit(self, venue_id: str, kind: str | None = None) -> AuditReport:
        """Audit one venue (NotFound when it does not exist, or is of another kind)."""
        first, counts = await self._pass(venue_id, kind)
        if first:
            # Report only what a fresh second look confirms.
            second, counts = await self._pass(venue_id, kind)
            confirmed = set(second)
            first = [v for v in first if v in confirmed]
        return AuditReport(venue_id=venue_id, ok=not first, violations=first, checked=counts)

    async def _pass(
        self, venue_id: str, kind: str | None
    ) -> tuple[list[Violation], dict[str, int]]:
        keys = self._keys.of(venue_id)
        venue = await self._read(venue_id, keys, kind)
        violations: list[Violation] = []
        violations += self._check_cells(venue)
        violations += self._check_record_units(venue)
        violations += self._check_holds(venue)
        violations += self._check_reservations(venue)
        violations += self._check_spans(venue)
        violations += self._check_covers(venue)
        violations += self._check_guests(venue)
        violations += await self._check_indexes(venue_id, keys, venue)
        violations += await self._check_seat_index(keys, venue)
        feed_entries = await self._feed(keys)
        violations += self._check_feed(venue, feed_entries)
        waitlist = await self._read_waitlist(keys)
        violations += check_waitlist(venue, waitlist)
        counts = {
            "slots": len(venue.slots),
            "cells": sum(len(c) for c in venue.cells.values()),
            "holds": len(venue.holds),
            "reservations": len(venue.reservations),
            "feed_entries": len(feed_entries),
            "waitlist_entries": len(waitlist.entries),
        }
        return violations, counts

    # -- the list of venues ----------------------------------------------------------------

    async def unlisted_venues(self) -> dict[str, tuple[str, int]]:
        """Venues that exist but no list of venues names: venue id -> (kind, created ms).

        The list is written after the venue's own atomic step (it lives in another cluster
        slot), so a crash in between leaves such a venue. SCANs every primary of a cluster,
        counting only keys shaped exactly like a venue's settings.
        """
        family = self._keys.every_venue
        found: dict[str, tuple[str, int]] = {}
        async for key in self._redis.scan_iter(match=family.glob, count=1000):
            venue_id = family.part(str(key))
            if venue_id is None:
                continue
            kind, created = await self._redis.hmget(str(key), ["kind", "created"])
            if kind and await self._redis.zscore(self._keys.venues(kind), venue_id) is None:
                found[venue_id] = (kind, int(created or 0))
        return found

    async def free_stuck_cells(self, report: AuditReport, scripts: Scripts) -> list[Violation]:
        """Free each cell the report found reserved by a reservation that does not own it
        (``cell_owner`` with a reference); the ones freed. Each is one repair.lua call that
        checks the cell again, so one claimed or owned again since the audit is left."""
        keys = self._keys.of(report.venue_id)
        freed: list[Violation] = []
        for violation in report.violations:
            if violation.check != "cell_owner" or not violation.reference:
                continue
            repaired = await scripts.repair(
                keys,
                slot=str(violation.slot),
                unit=str(violation.unit),
                reference=violation.reference,
            )
            if repaired.changed:
                freed.append(violation)
        return freed

    async def relist(self, venue_id: str, kind: str, created_ms: int) -> None:
        """Put a venue back on its list (the repair of a ``venue_index`` violation)."""
        await self._redis.zadd(self._keys.venues(kind), {venue_id: created_ms}, nx=True)

    # -- reading ---------------------------------------------------------------------------

    async def _read(self, venue_id: str, keys: VenueKeys, kind: str | None) -> _Venue:
        fields: dict[str, str] = await self._redis.hgetall(keys.venue)
        if not fields or (kind is not None and fields.get("kind") != kind):
            raise NotFound(f"No such {kind or 'venue'}")
        slots = {
            s: int(ms) for s, ms in await self._redis.zrange(keys.slots, 0, -1, withscores=True)
        }
        venue = _Venue(fields=fields, now=await redis_now_ms(self._redis), slots=slots)
        capacities: dict[str, str] = await self._redis.hgetall(keys.units)
        venue.units = set(capacities)
        venue.capacities = {unit: int(capacity) for unit, capacity in capacities.items()}
        removed: dict[str, str] = await self._redis.hgetall(keys.units_removed)
        venue.removed = {unit: int(text.split("|", 1)[0]) for unit, text in removed.items()}
        hold_ids = set(await self._redis.zrange(keys.holds, 0, -1))
        hold_ids |= await self._ids(keys.every_hold)
        refs = set(await self._redis.zrange(keys.reservations_by_start, 0, -1))
        refs |= await self._ids(keys.every_reservation)
        holds = await self._records(keys.hold, hold_ids)
        reservations = await self._records(keys.reservation, refs)
        for slot in set(slots) | await self._ids(keys.every_cells):
            await self._snapshot(keys, slot, venue, holds, reservations)
        # Records of no slot (or of a slot not in the grid) still count.
        venue.holds = {**holds, **venue.holds}
        venue.reservations = {**reservations, **venue.reservations}
        return venue

    async def _ids(self, family: KeyFamily) -> set[str]:
        """The variable parts of every key of ``family`` (keys of another shape: none)."""
        found: set[str] = set()
        async for key in self._redis.scan_iter(match=family.glob, count=1000):
            part = family.part(str(key))
            if part is not None:
                found.add(part)
        return found

    async def _records(self, key_of: Any, ids: set[str]) -> dict[str, dict[str, str]]:
        pipe = self._redis.pipeline(transaction=False)
        ordered = sorted(ids)
        for record_id in ordered:
            pipe.hgetall(key_of(record_id))
        rows = await pipe.execute() if ordered else []
        return {rid: row for rid, row in zip(ordered, rows, strict=True) if row}

    async def _snapshot(
        self,
        keys: VenueKeys,
        slot: str,
        venue: _Venue,
        holds: dict[str, dict[str, str]],
        reservations: dict[str, dict[str, str]],
    ) -> None:
        """One slot's cells, held set and records, read together in one MULTI."""
        hold_ids = {h for h, row in holds.items() if slot in _slots(row)}
        refs = {r for r, row in reservations.items() if slot in _slots(row)}
        for _ in range(SNAPSHOT_TRIES):
            pipe = self._redis.pipeline(transaction=True)
            pipe.hgetall(keys.cells(slot))
            pipe.zrange(keys.held(slot), 0, -1, withscores=True)
            ordered_holds, ordered_refs = sorted(hold_ids), sorted(refs)
            for hold_id in ordered_holds:
                pipe.hgetall(keys.hold(hold_id))
            for ref in ordered_refs:
                pipe.hgetall(keys.reservation(ref))
            cells, held, *rows = await pipe.execute()
            owners = _owners(cells)
            missing_holds = owners["h"] - hold_ids
            missing_refs = owners["r"] - refs
            if not missing_holds and not missing_refs:
                break
            # A claim appeared since the first read: include its record and read again.
            hold_ids |= missing_holds
            refs |= missing_refs
        venue.cells[slot] = cells
        venue.held[slot] = dict(held)
        for hold_id, row in zip(ordered_holds, rows[: len(ordered_holds)], strict=True):
            if row:
                venue.holds[hold_id] = row
        for ref, row in zip(ordered_refs, rows[len(ordered_holds) :], strict=True):
            if row:
                venue.reservations[ref] = row

    async def _read_waitlist(self, keys: VenueKeys) -> _Waitlist:
        """Every entry, and each slot's waitlist sets, read together in one MULTI per slot
        (a slot's sets change only with its entries, in one script)."""
        waitlist = _Waitlist()
        slots = await self._ids(keys.every_waitlist_queue)
        raw: dict[str, str] = await self._redis.hgetall(keys.waitlist)
        waitlist.entries = {entry_id: json.loads(text) for entry_id, text in raw.items()}
        slots |= {
            str(e.get("slot")) for e in waitlist.entries.values() if e.get("status") in LIVE_ENTRY
        }
        for slot in sorted(slots):
            pipe = self._redis.pipeline(transaction=True)
            pipe.zrange(keys.waitlist_waiting(slot), 0, -1, withscores=True)
            pipe.zrange(keys.waitlist_capped(slot), 0, -1, withscores=True)
            pipe.zrange(keys.waitlist_queue(slot), 0, -1, withscores=True)
            pipe.zrange(keys.waitlist_live(slot), 0, -1, withscores=True)
            pipe.hgetall(keys.waitlist_users(slot))
            waiting, capped, queue, live, users = await pipe.execute()
            waitlist.waiting[slot] = {e: int(s) for e, s in waiting}
            waitlist.capped[slot] = {e: int(s) for e, s in capped}
            waitlist.queue[slot] = {e: int(s) for e, s in queue}
            waitlist.live[slot] = {e: int(s) for e, s in live}
            waitlist.users[slot] = users
        listed = await self._redis.zrange(keys.waitlist_slots, 0, -1, withscores=True)
        waitlist.waiting_slots = {slot: int(start) for slot, start in listed}
        ended = await self._redis.zrange(keys.waitlist_ended, 0, -1, withscores=True)
        waitlist.ended = {entry_id: int(at) for entry_id, at in ended}
        plan = await self._redis.hget(keys.seat_index, "map")
        waitlist.seat_map = SeatMap.from_json(plan) if plan else None
        combinations: dict[str, str] = await self._redis.hgetall(keys.combinations)
        waitlist.combinations = {cid: json.loads(text) for cid, text in combinations.items()}
        # Entries settled after the first read are read again (the sets were read later).
        raw = await self._redis.hgetall(keys.waitlist)
        waitlist.entries = {entry_id: json.loads(text) for entry_id, text in raw.items()}
        return waitlist

    async def _feed(self, keys: VenueKeys) -> list[tuple[str, dict[str, str]]]:
        entries: list[tuple[str, dict[str, str]]] = await self._redis.xrange(keys.feed)
        return entries

    # -- checks ----------------------------------------------------------------------------

    def _check_cells(self, venue: _Venue) -> list[Violation]:
        """Invariant 1: each claimed cell agrees with the one live record that claims it."""
        found: list[Violation] = []
        for slot, cells in venue.cells.items():
            if slot not in venue.slots:
                found.append(
                    Violation(
                        check="cell_outside_grid",
                        detail="cells of a slot not in the grid",
                        slot=slot,
                    )
                )
            for unit, state in cells.items():
                if unit in venue.removed:
                    found += _removed_unit_cell(venue, slot, unit)
                elif unit not in venue.units:
                    found.append(
                        Violation(
                            check="cell_unit",
                            detail="a cell of a unit the venue does not have",
                            slot=slot,
                            unit=unit,
                        )
                    )
                found += self._check_cell(venue, slot, unit, state)
            for unit, expires in venue.held.get(slot, {}).items():
                state = cells.get(unit, "")
                if not state.startswith("h|") or int(state.rsplit("|", 1)[1]) != int(expires):
                    found.append(
                        Violation(
                            check="held_index",
                            detail="held set disagrees with the cell",
                            slot=slot,
                            unit=unit,
                        )
                    )
        return found

    def _check_cell(self, venue: _Venue, slot: str, unit: str, state: str) -> list[Violation]:
        if state.startswith("r|"):
            ref = state[2:]
            row = venue.reservations.get(ref)
            if row is None or row.get("status") not in LIVE_RESERVATION:
                status = row.get("status") if row else "missing"
                detail = f"cell reserved by a reservation that is {status}"
                return [
                    Violation(
                        check="cell_owner", detail=detail, slot=slot, unit=unit, reference=ref
                    )
                ]
            if slot not in _slots(row) or unit not in _units(row):
                detail = "the reservation does not claim this cell"
                return [
                    Violation(
                        check="cell_owner", detail=detail, slot=slot, unit=unit, reference=ref
                    )
                ]
            return []
        try:
            _, hold_id, expires = state.split("|", 2)
        except ValueError:
            return [
                Violation(
                    check="cell_state",
                    detail=f"unreadable cell state {state!r}",
                    slot=slot,
                    unit=unit,
                )
            ]
        hold = venue.holds.get(hold_id)
        if hold is None or hold.get("status") != "held":
            status = hold.get("status") if hold else "missing"
            detail = f"cell held by a hold that is {status}"
            return [
                Violation(check="cell_owner", detail=detail, slot=slot, unit=unit, hold_id=hold_id)
            ]
        if slot not in _slots(hold) or unit not in _units(hold):
            detail = "the hold does not claim this cell"
            return [
                Violation(check="cell_owner", detail=detail, slot=slot, unit=unit, hold_id=hold_id)
            ]
        if hold.get("expires") != expires:
            detail = "cell and hold disagree on when it lapses"
            return [
                Violation(check="cell_expiry", detail=detail, slot=slot, unit=unit, hold_id=hold_id)
            ]
        return []

    def _check_record_units(self, venue: _Venue) -> list[Violation]:
        """Each hold and reservation claims a readable list of distinct units of the venue."""
        found: list[Violation] = []
        for hold_id, hold in venue.holds.items():
            problem = _units_problem(hold.get("units", ""), venue.units | set(venue.removed))
            if problem:
                found.append(Violation(check="record_units", detail=problem, hold_id=hold_id))
        for ref, row in venue.reservations.items():
            problem = _units_problem(row.get("units", ""), venue.units | set(venue.removed))
            if problem:
                found.append(Violation(check="record_units", detail=problem, reference=ref))
        return found

    def _check_holds(self, venue: _Venue) -> list[Violation]:
        """Invariants 1-3: live holds own their cells, stay within lifetime and the cap."""
        found: list[Violation] = []
        live_units: Counter[str] = Counter()
        claims: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        for hold_id, hold in venue.holds.items():
            if hold.get("status") != "held":
                continue
            units = _units(hold)
            expires, created = int(hold.get("expires", 0)), int(hold.get("created", 0))
            if int(hold.get("n", -1)) != len(units):
                found.append(
                    Violation(check="hold_record", detail="unit count disagrees", hold_id=hold_id)
                )
            if "ends" in hold and expires > int(hold["ends"]):
                found.append(
                    Violation(
                        check="hold_lifetime",
                        detail="lives past its maximum lifetime",
                        hold_id=hold_id,
                    )
                )
            if (
                expires > created + int(venue.fields.get("max_hold_seconds", 0)) * 1000
                and "ends" not in hold
            ):
                found.append(
                    Violation(
                        check="hold_lifetime", detail="lives past max_hold_seconds", hold_id=hold_id
                    )
                )
            lapsed = expires <= venue.now
            # Invariant 8: every cell of every slot of its booking, owned together.
            for slot in _slots(hold):
                for unit in units:
                    claims[(slot, unit)].append(hold_id)
                    cell = venue.cells.get(slot, {}).get(unit)
                    if not lapsed and cell != f"h|{hold_id}|{expires}":
                        detail = "a live hold whose cell does not point at it"
                        found.append(
                            Violation(
                                check="hold_cell",
                                detail=detail,
                                slot=slot,
                                unit=unit,
                                hold_id=hold_id,
                            )
                        )
            if not lapsed:
                live_units[hold.get("user", "")] += len(units)
        for (slot, unit), owners in claims.items():
            if len(owners) > 1:
                detail = f"claimed by {len(owners)} holds at once"
                found.append(
                    Violation(
                        check="double_claim", detail=detail, slot=slot, unit=unit, hold_id=owners[0]
                    )
                )
        cap = int(venue.fields.get("max_holds_per_user", 0))
        for user, units_held in live_units.items():
            if units_held > cap:
                detail = f"holds {units_held} live units, the cap is {cap}"
                found.append(Violation(check="user_cap", detail=detail, user_id=user))
        return found

    def _check_reservations(self, venue: _Venue) -> list[Violation]:
        """Invariant 1: confirmed reservations own their cells; cancelled ones own none."""
        found: list[Violation] = []
        claims: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        for ref, row in venue.reservations.items():
            slot = row.get("slot", "")
            for slot_of, unit in ((s, u) for s in _slots(row) for u in _units(row)):
                cell = venue.cells.get(slot_of, {}).get(unit)
                if row.get("status") in LIVE_RESERVATION:
                    claims[(slot_of, unit)].append(ref)
                    if cell != f"r|{ref}":
                        detail = "a confirmed reservation whose cell does not point at it"
                        found.append(
                            Violation(
                                check="reservation_cell",
                                detail=detail,
                                slot=slot_of,
                                unit=unit,
                                reference=ref,
                            )
                        )
                elif cell == f"r|{ref}":
                    detail = "a cancelled reservation still holds its cell"
                    found.append(
                        Violation(
                            check="reservation_cell",
                            detail=detail,
                            slot=slot_of,
                            unit=unit,
                            reference=ref,
                        )
                    )
            if slot and slot in venue.slots and row.get("starts") != str(venue.slots[slot]):
                found.append(
                    Violation(
                        check="reservation_record",
                        detail="start disagrees with its slot",
                        reference=ref,
                    )
                )
        for (slot, unit), owners in claims.items():
            if len(owners) > 1:
                detail = f"reserved by {len(owners)} reservations at once"
                found.append(
                    Violation(
                        check="double_claim",
                        detail=detail,
                        slot=slot,
                        unit=unit,
                        reference=owners[0],
                    )
                )
        return found

    def _check_spans(self, venue: _Venue) -> list[Violation]:
        """Invariant 8: a live booking of k slots spans k consecutive grid slots, back to
        back, and ends where its last slot does."""
        found: list[Violation] = []
        step = int(venue.fields.get("slot_minutes", 60)) * MINUTE_MS
        live = [
            (hold_id, None, row)
            for hold_id, row in venue.holds.items()
            if row.get("status") == "held" and int(row.get("expires", 0)) > venue.now
        ] + [
            (None, ref, row)
            for ref, row in venue.reservations.items()
            if row.get("status") in LIVE_RESERVATION
        ]
        for hold_id, ref, row in live:
            slots = _slots(row)
            if len(slots) < 2 and not row.get("stops"):
                continue
            starts = [venue.slots.get(slot) for slot in slots]
            first = starts[0]
            back_to_back = first is not None and all(
                start == first + i * step for i, start in enumerate(starts)
            )
            end = row.get("stops") if hold_id else row.get("ends")
            if not back_to_back or (
                first is not None and end and int(end) != first + len(slots) * step
            ):
                found.append(
                    Violation(
                        check="booking_span",
                        detail=f"its {len(slots)} slots are not consecutive grid slots "
                        "ending where it ends",
                        slot=slots[0],
                        hold_id=hold_id,
                        reference=ref,
                    )
                )
        return found

    def _check_covers(self, venue: _Venue) -> list[Violation]:
        """Invariant 10: the party sizes of live holds and reservations not cancelled that
        start in one slot never add up to more than max_covers_per_slot."""
        cap = int(venue.fields.get("max_covers_per_slot", 0))
        if cap <= 0:
            return []
        covers: Counter[str] = Counter()
        for row in venue.holds.values():
            if row.get("status") == "held" and int(row.get("expires", 0)) > venue.now:
                covers[row.get("slot", "")] += int(row.get("party", 0))
        for row in venue.reservations.values():
            if row.get("status") in LIVE_RESERVATION:
                covers[row.get("slot", "")] += int(row.get("party", 0))
        return [
            Violation(
                check="covers", detail=f"{count} covers start here, the cap is {cap}", slot=slot
            )
            for slot, count in sorted(covers.items())
            if count > cap
        ]

    def _check_guests(self, venue: _Venue) -> list[Violation]:
        """Invariant 10: with one_booking_per_guest, no user (live holds and reservations)
        and no phone (reservations) has two bookings whose times overlap."""
        if venue.fields.get("one_booking_per_guest") != "1":
            return []
        step = int(venue.fields.get("slot_minutes", 60)) * MINUTE_MS
        by_guest: defaultdict[str, list[_Span]] = defaultdict(list)
        for hold_id, row in venue.holds.items():
            start = venue.slots.get(row.get("slot", ""))
            if row.get("status") == "held" and int(row.get("expires", 0)) > venue.now and start:
                span: _Span = (start, start + len(_slots(row)) * step, hold_id, None)
                by_guest[f"user {row.get('user', '')}"].append(span)
        for ref, row in venue.reservations.items():
            if row.get("status") not in LIVE_RESERVATION or not row.get("starts"):
                continue
            start = int(row["starts"])
            booked: _Span = (start, int(row.get("ends") or start + step), None, ref)
            if row.get("user"):
                by_guest[f"user {row['user']}"].append(booked)
            by_guest[f"phone {row.get('phone', '')}"].append(booked)
        found: list[Violation] = []
        for guest, spans in sorted(by_guest.items()):
            reach = 0
            for start, end, span_hold, span_ref in sorted(spans):
                # Half-open times: one ending when the next starts does not overlap it.
                overlaps = start < reach
                reach = max(reach, end)
                if overlaps:
                    found.append(
                        Violation(
                            check="guest_overlap",
                            detail=f"{guest} has two bookings at once",
                            hold_id=span_hold,
                            reference=span_ref,
                        )
                    )
        return found

    async def _check_indexes(
        self, venue_id: str, keys: VenueKeys, venue: _Venue
    ) -> list[Violation]:
        """Expiry set, user sets, by-start, by-phone and the venues list agree with the records."""
        return [
            *await self._check_expiry_index(keys, venue),
            *await self._check_user_sets(keys, venue),
            *await self._check_reservation_indexes(keys, venue),
            *await self._check_venue_listed(venue_id, venue),
            *await self._check_consumers(venue_id, keys, venue),
        ]

    async def _check_consumers(
        self, venue_id: str, keys: VenueKeys, venue: _Venue
    ) -> list[Violation]:
        """Invariant 12: feed consumers (webhooks, mail) can reach every entry to come: no
        position is ahead of the clock (entries written later would be skipped), and a venue
        with webhooks of its own is on the list the delivery loop walks."""
        found: list[Violation] = []
        positions = await self._redis.hgetall(keys.consumers)
        for name, text in sorted(positions.items()):
            cursor = str(json.loads(text).get("cursor", "0-0"))
            if int(cursor.partition("-")[0]) > venue.now:
                found.append(
                    Violation(
                        check="consumer_position",
                        detail=f"{name} stands at {cursor}, ahead of the clock: "
                        "entries written before then would be skipped",
                    )
                )
        if await self._redis.hlen(keys.webhooks) and not await self._redis.sismember(
            self._keys.webhook_venues, venue_id
        ):
            found.append(
                Violation(
                    check="webhook_index",
                    detail="the venue has webhooks but is missing from the list of "
                    "venues with webhooks: nothing would be delivered",
                )
            )
        return found

    async def _check_seat_index(self, keys: VenueKeys, venue: _Venue) -> list[Violation]:
        """A seat map's row index, GA counters and run tree agree with the cells."""
        slot = venue.fields.get("slot")
        if venue.fields.get("seatmap") != "1" or not slot:
            return []
        # The index and the cells from one MULTI: both change in the same scripts.
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(keys.seat_index)
        pipe.hgetall(keys.cells(slot))
        index, cells = await pipe.execute()
        return [
            Violation(check=check, detail=detail, slot=slot, unit=unit or None)
            for check, detail, unit in index_problems(index, cells)
        ]

    async def _check_expiry_index(self, keys: VenueKeys, venue: _Venue) -> list[Violation]:
        """The sweeper's set names exactly the live holds, at their expiry."""
        found: list[Violation] = []
        expiry = {
            h: int(s) for h, s in await self._redis.zrange(keys.holds, 0, -1, withscores=True)
        }
        for hold_id, hold in venue.holds.items():
            live = hold.get("status") == "held"
            if live and expiry.get(hold_id) != int(hold.get("expires", -1)):
                found.append(
                    Violation(
                        check="expiry_index",
                        detail="live hold missing from the sweeper's set",
                        hold_id=hold_id,
                    )
                )
            if not live and hold_id in expiry:
                found.append(
                    Violation(
                        check="expiry_index",
                        detail="ended hold still in the sweeper's set",
                        hold_id=hold_id,
                    )
                )
        for hold_id in set(expiry) - set(venue.holds):
            found.append(
                Violation(
                    check="expiry_index",
                    detail="sweeper's set names a missing hold",
                    hold_id=hold_id,
                )
            )
        return found

    async def _check_user_sets(self, keys: VenueKeys, venue: _Venue) -> list[Violation]:
        """Each user's set names only that user's live holds, with their unit counts."""
        found: list[Violation] = []
        users = {user_digest(h["user"]): h["user"] for h in venue.holds.values() if "user" in h}
        family = keys.every_user
        async for key in self._redis.scan_iter(match=family.glob, count=1000):
            digest = family.part(str(key))
            if digest is None:
                continue
            for member, score in await self._redis.zrange(key, 0, -1, withscores=True):
                hold_id, _, units = str(member).rpartition("|")
                hold = venue.holds.get(hold_id, {})
                lapsed = int(score) <= venue.now
                if not lapsed and (
                    hold.get("status") != "held"
                    or user_digest(hold.get("user", "")) != digest
                    or hold.get("n") != units
                ):
                    detail = "user set names a hold that is not this user's live hold"
                    found.append(
                        Violation(
                            check="user_index",
                            detail=detail,
                            hold_id=hold_id,
                            user_id=users.get(digest, digest),
                        )
                    )
        return found

    async def _check_reservation_indexes(self, keys: VenueKeys, venue: _Venue) -> list[Violation]:
        """By-start and by-phone name exactly the reservations, at their start and phone."""
        found: list[Violation] = []
        starts = {
            r: int(s)
            for r, s in await self._redis.zrange(keys.reservations_by_start, 0, -1, withscores=True)
        }
        for ref, row in venue.reservations.items():
            if starts.get(ref) != int(row.get("starts", -1)):
                found.append(
                    Violation(
                        check="start_index",
                        detail="missing or wrong in the by-start index",
                        reference=ref,
                    )
                )
            phone_set = keys.reservations_by_phone(row.get("phone", ""))
            if not await self._redis.sismember(phone_set, ref):
                found.append(
                    Violation(
                        check="phone_index", detail="missing from its phone's index", reference=ref
                    )
                )
        for ref in set(starts) - set(venue.reservations):
            found.append(
                Violation(
                    check="start_index",
                    detail="by-start names a missing reservation",
                    reference=ref,
                )
            )
        phones = keys.every_phone
        async for key in self._redis.scan_iter(match=phones.glob, count=1000):
            phone = phones.part(str(key))
            if phone is None:
                continue
            for ref in await self._redis.smembers(key):
                if venue.reservations.get(ref, {}).get("phone") != phone:
                    found.append(
                        Violation(
                            check="phone_index",
                            detail=f"{phone} index names a reservation of another phone",
                            reference=ref,
                        )
                    )
        return found

    async def _check_venue_listed(self, venue_id: str, venue: _Venue) -> list[Violation]:
        """The global list of venues names this one (written after it: see insert_venue)."""
        listed = await self._redis.zscore(self._keys.venues(venue.fields.get("kind", "")), venue_id)
        if listed is not None:
            return []
        return [
            Violation(check="venue_index", detail="the venue is missing from the list of venues")
        ]

    def _check_feed(
        self, venue: _Venue, entries: list[tuple[str, dict[str, str]]]
    ) -> list[Violation]:
        """Invariant 5: each record's latest retained feed entry matches its state."""
        found: list[Violation] = []
        by_hold: defaultdict[str, list[str]] = defaultdict(list)
        by_ref: defaultdict[str, list[str]] = defaultdict(list)
        for _, entry in entries:
            if entry.get("hold") and entry.get("event") != "changed":
                by_hold[entry["hold"]].append(entry["event"])
            if entry.get("ref"):
                by_ref[entry["ref"]].append(entry["event"])
        for hold_id, hold in venue.holds.items():
            events = by_hold.get(hold_id)
            # A waitlist offer begins with 'offered' where any other hold begins with 'held'.
            if not events or events[0] not in ("held", "offered"):
                continue  # its first entries were trimmed away: nothing to compare
            if events.count("held") + events.count("offered") != 1:
                found.append(
                    Violation(check="feed", detail="more than one 'held' entry", hold_id=hold_id)
                )
            terminal = [e for e in events if e in TERMINAL_EVENT]
            status = hold.get("status")
            if len(terminal) > 1:
                found.append(
                    Violation(
                        check="feed",
                        detail=f"ended {len(terminal)} times: {terminal}",
                        hold_id=hold_id,
                    )
                )
            elif status == "held" and terminal:
                found.append(
                    Violation(
                        check="feed",
                        detail=f"live hold with a '{terminal[0]}' entry",
                        hold_id=hold_id,
                    )
                )
            elif status != "held" and terminal != [TERMINAL_EVENT.get(str(status), "?")]:
                found.append(
                    Violation(
                        check="feed", detail=f"{status} hold without its entry", hold_id=hold_id
                    )
                )
        for ref, row in venue.reservations.items():
            events = by_ref.get(ref)
            if not events or events[0] != "confirmed":
                continue
            cancelled = events.count("cancelled")
            if cancelled != (1 if row.get("status") == "cancelled" else 0):
                detail = f"{row.get('status')} reservation with {cancelled} 'cancelled' entries"
                found.append(Violation(check="feed", detail=detail, reference=ref))
        return found


def _slots(record: dict[str, str]) -> list[str]:
    """The slots a hold or reservation record spans (its one slot, or its 'slots' list)."""
    try:
        return record_slots(record) if record.get("slot") else []
    except ValueError:
        return [record["slot"]]


def _units(record: dict[str, str]) -> list[str]:
    """The units a hold or reservation record claims (none when unreadable: see
    ``_check_record_units``)."""
    try:
        return decode_units(record.get("units", ""))
    except ValueError:
        return []


def _removed_unit_cell(venue: _Venue, slot: str, unit: str) -> list[Violation]:
    """A removed table may keep the cells of slots that had ended when it was removed (past
    bookings), never one of a slot that had not (remove_table.lua checks that in its step)."""
    start = venue.slots.get(slot)
    slot_ms = int(venue.fields.get("slot_minutes", "60")) * 60_000
    if start is not None and start + slot_ms <= venue.removed[unit]:
        return []
    return [
        Violation(
            check="removed_unit_cell",
            detail="a cell of a removed table in a slot that had not ended when it was removed",
            slot=slot,
            unit=unit,
        )
    ]


def _units_problem(text: str, known: set[str]) -> str | None:
    """What is wrong with a record's stored units, if anything."""
    try:
        units = decode_units(text)
    except ValueError:
        return f"unreadable units {text!r}"
    if not units:
        return "claims no unit"
    repeated = [unit for unit, count in Counter(units).items() if count > 1]
    if repeated:
        return f"names {repeated[0]} more than once"
    unknown = [unit for unit in units if unit not in known]
    if unknown:
        return f"names {unknown[0]}, a unit the venue does not have"
    return None


def _owners(cells: dict[str, str]) -> dict[str, set[str]]:
    """Hold ids and references that a slot's cells name."""
    owners: dict[str, set[str]] = {"h": set(), "r": set()}
    for state in cells.values():
        if state.startswith("r|"):
            owners["r"].add(state[2:])
        elif state.startswith("h|"):
            owners["h"].add(state.split("|", 2)[1])
    return owners


def check_waitlist(venue: _Venue, waitlist: _Waitlist) -> list[Violation]:
    """Invariant 9: entry states agree with their sets and offers, and no free cell fits a
    waiting entry while it waits (unless its user is at the cap, or the slot started)."""
    found: list[Violation] = []
    for entry_id, entry in waitlist.entries.items():
        found += _check_entry(venue, waitlist, entry_id, entry)
    for slot, members in waitlist.live.items():
        for entry_id in members:
            if waitlist.entries.get(entry_id, {}).get("status") not in LIVE_ENTRY:
                found.append(
                    Violation(
                        check="waitlist_state",
                        detail=f"the live list names entry {entry_id}, which has ended",
                        slot=slot,
                    )
                )
    found += _check_waiting_slots(venue, waitlist)
    found += _check_ended(waitlist)
    for slot in waitlist.queue:
        found += _check_fit(venue, waitlist, slot)
    return found


def _check_ended(waitlist: _Waitlist) -> list[Violation]:
    """Every ended entry is listed among the ended ones, when it ended (so that it is dropped
    in time), and the list names no other."""
    found: list[Violation] = []
    for entry_id, entry in waitlist.entries.items():
        ended = entry.get("status") not in LIVE_ENTRY
        if ended and waitlist.ended.get(entry_id) != entry.get("ended"):
            found.append(
                Violation(
                    check="waitlist_state",
                    detail=f"ended entry {entry_id} is not listed as ended when it ended",
                    slot=entry.get("slot"),
                )
            )
    for entry_id in waitlist.ended:
        if waitlist.entries.get(entry_id, {}).get("status") in LIVE_ENTRY:
            found.append(
                Violation(
                    check="waitlist_state",
                    detail=f"live entry {entry_id} is listed as ended",
                    slot=waitlist.entries[entry_id].get("slot"),
                )
            )
    return found


def _check_waiting_slots(venue: _Venue, waitlist: _Waitlist) -> list[Violation]:
    """The list of slots with waiting entries (where a freeing step looks for the waitlists
    its cells may fit) names exactly the slots still to come that have waiting entries."""
    found: list[Violation] = []
    for slot in sorted(set(waitlist.waiting) | set(waitlist.capped) | set(waitlist.waiting_slots)):
        starts = venue.slots.get(slot)
        if starts is None or starts <= venue.now:
            continue
        has_waiting = bool(waitlist.waiting.get(slot) or waitlist.capped.get(slot))
        if has_waiting != (slot in waitlist.waiting_slots):
            wrong = "is not listed" if has_waiting else "is listed, with no waiting entry"
            found.append(
                Violation(
                    check="waitlist_state",
                    detail=f"the slot {wrong} among the slots with waiting entries",
                    slot=slot,
                )
            )
    return found


def _check_entry(
    venue: _Venue, waitlist: _Waitlist, entry_id: str, entry: dict[str, Any]
) -> list[Violation]:
    """One entry against its slot's sets and, when offered, its offer's hold."""
    slot, status, seq = str(entry.get("slot")), entry.get("status"), int(entry.get("seq", 0))
    waiting = waitlist.waiting.get(slot, {}).get(entry_id)
    capped = waitlist.capped.get(slot, {}).get(entry_id)
    # A waiting entry is in one of the two: the capped zset once passed over at the cap.
    placed, other = (capped, waiting) if entry.get("capped") else (waiting, capped)
    queued = waitlist.queue.get(slot, {}).get(entry_id)
    live = waitlist.live.get(slot, {}).get(entry_id)
    mine = waitlist.users.get(slot, {}).get(str(entry.get("user"))) == entry_id
    problem = None
    if status == "waiting":
        group = int(entry.get("group") or entry["need"])
        in_sets = placed == group * NEED_SCALE + seq and other is None
        if not in_sets or queued != seq or live != seq:
            problem = "a waiting entry missing from its slot's sets"
        elif not mine:
            problem = "a waiting entry its user's index does not name"
    elif status == "offered":
        hold = venue.holds.get(str(entry.get("hold")), {})
        if placed is not None or other is not None or queued is not None or live != seq:
            problem = "an offered entry in the wrong sets"
        elif not mine:
            problem = "an offered entry its user's index does not name"
        elif hold.get("wl") != entry_id or hold.get("status") != "held":
            problem = f"an offered entry whose offer is {hold.get('status', 'missing')}"
    elif any(found is not None for found in (waiting, capped, queued, live)) or mine:
        problem = f"a {status} entry still in its slot's sets"
    if problem is None:
        return []
    return [
        Violation(
            check="waitlist_state",
            detail=f"{problem}: {entry_id}",
            slot=slot,
            hold_id=entry.get("hold"),
            user_id=entry.get("user"),
        )
    ]


def _check_fit(venue: _Venue, waitlist: _Waitlist, slot: str) -> list[Violation]:
    """No free cell of the slot (nothing on it at all) fits a waiting entry; at a restaurant
    with booking rules, no free table or combination for the entry's whole duration, within
    the covers cap and the guest's other bookings."""
    starts = venue.slots.get(slot)
    if starts is None or starts <= venue.now or not waitlist.queue[slot]:
        return []
    rules = read_rules(venue.fields)
    cap = int(venue.fields.get("max_holds_per_user", "0"))
    held_by: defaultdict[str, int] = defaultdict(int)
    for hold in venue.holds.values():
        if hold.get("status") == "held" and int(hold.get("expires", 0)) > venue.now:
            held_by[hold.get("user", "")] += int(hold.get("n", "0"))
    found: list[Violation] = []
    for entry_id in waitlist.queue[slot]:
        entry = waitlist.entries.get(entry_id, {})
        need = int(entry.get("need", 0))
        if venue.fields.get("kind") == "event":
            section = entry.get("section") or None
            fits, units = _event_fits(venue, waitlist, slot, need, section), need
        elif rules.rich:
            fits, units = _booking_fits(venue, waitlist, rules, slot, entry), 1
        else:
            fits, units = _table_fits(venue, [slot], need), 1
        # An entry passed over at the user cap (marked) waits for the slot's next freeing
        # step, even if the user's holds have ended since: offers follow freed cells.
        under_cap = held_by[str(entry.get("user"))] + units <= cap and not entry.get("capped")
        if fits and under_cap:
            found.append(
                Violation(
                    check="waitlist_fit",
                    detail=f"free cells fit waiting entry {entry_id}",
                    slot=slot,
                    user_id=entry.get("user"),
                )
            )
    return found


def _free_tables(venue: _Venue, slots: list[str]) -> set[str] | None:
    """The tables with no cell in any of ``slots``; None when a lapsed hold the sweeper has
    yet to end sits there (it blocks best fit; its expiry offers the cells,
    lua/include/waitlist_offer.lua)."""
    free = set(venue.units)
    for slot in slots:
        cells = venue.cells.get(slot, {})
        if any(_lapsed(state, venue.now) for state in cells.values()):
            return None
        free -= set(cells)
    return free


def _event_fits(
    venue: _Venue, waitlist: _Waitlist, slot: str, need: int, section: str | None
) -> bool:
    free = _free_tables(venue, [slot])
    if free is None:
        return False
    if waitlist.seat_map is not None:
        return fits(waitlist.seat_map, set(venue.cells.get(slot, {})), section, need)
    return len(free) >= need


def _table_fits(venue: _Venue, slots: list[str], need: int) -> bool:
    free = _free_tables(venue, slots)
    return free is not None and any(venue.capacities.get(u, 0) >= need for u in free)


def _booking_fits(
    venue: _Venue, waitlist: _Waitlist, rules: BookingRules, slot: str, entry: dict[str, Any]
) -> bool:
    """Whether a hold for the entry would be placed now (lua/hold.lua's rich path)."""
    need = int(entry.get("need", 0))
    step = int(venue.fields.get("slot_minutes", 60)) * MINUTE_MS
    starts = venue.slots[slot]
    by_start = {start: sid for sid, start in venue.slots.items()}
    count = rules.slot_count(need, step // MINUTE_MS)
    span = [by_start.get(starts + i * step) for i in range(count)]
    if None in span:
        return False
    slots = [sid for sid in span if sid is not None]
    if rules.covers_cap and _covers(venue, slot) + need > rules.covers_cap:
        return False
    if rules.one_booking and _user_booked(venue, str(entry.get("user")), starts, count * step):
        return False
    free = _free_tables(venue, slots)
    if free is None:
        return False
    if any(venue.capacities.get(u, 0) >= need for u in free):
        return True
    return rules.combinations and any(
        int(combo["capacity"]) >= need and set(combo["tables"]) <= free
        for combo in waitlist.combinations.values()
    )


def _covers(venue: _Venue, slot: str) -> int:
    """Covers starting in ``slot``: live holds and reservations not cancelled."""
    total = sum(
        int(row.get("party", 0))
        for row in venue.holds.values()
        if row.get("slot") == slot
        and row.get("status") == "held"
        and int(row.get("expires", 0)) > venue.now
    )
    return total + sum(
        int(row.get("party", 0))
        for row in venue.reservations.values()
        if row.get("slot") == slot and row.get("status") in LIVE_RESERVATION
    )


def _user_booked(venue: _Venue, user: str, starts: int, length: int) -> bool:
    """Whether the user has a live hold or reservation overlapping [starts, starts+length)."""
    return any(begin < starts + length and starts < end for begin, end in _user_spans(venue, user))


def _user_spans(venue: _Venue, user: str) -> list[tuple[int, int]]:
    """The times of the user's live holds and reservations."""
    step = int(venue.fields.get("slot_minutes", 60)) * MINUTE_MS
    spans = []
    for row in venue.holds.values():
        begin = venue.slots.get(row.get("slot", ""))
        live = row.get("status") == "held" and int(row.get("expires", 0)) > venue.now
        if row.get("user") == user and live and begin is not None:
            spans.append((begin, begin + len(_slots(row)) * step))
    for row in venue.reservations.values():
        if row.get("user") == user and row.get("status") in LIVE_RESERVATION and row.get("starts"):
            begin = int(row["starts"])
            spans.append((begin, int(row.get("ends") or begin + step)))
    return spans


def _lapsed(state: str, now: int) -> bool:
    """A cell held by a hold that has lapsed (its expiry not yet swept)."""
    return state.startswith("h|") and int(state.rsplit("|", 1)[1]) <= now

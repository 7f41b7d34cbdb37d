"""Property test for seat maps: random best-available holds (together or apart, any section,
general admission), named seats, releases, confirms, cancels, sweeps and time passing, run by
the real scripts on a real Redis and checked after every step against a Python reference of
the picking rule (API.md), the free counts, and the audit (row index, GA counters, tree).

Time passes as in tests/test_model.py: every live hold's times move back together.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from holdsvc.connection import connect_redis
from holdsvc.errors import HoldExpired, HoldsvcError
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.models import ConfirmInput, EventInput, RowInput, SeatHoldInput, SectionInput
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.venues import VenueKind
from tests.test_model import age_live_holds

HOLD_S, MAX_S = 100, 150
ROWS = {"A": (("1", 5), ("2", 7)), "B": (("1", 4),)}
GA_CAPACITY = 12
SECTIONS = [
    SectionInput(id=sid, name=sid, rows=[RowInput(id=r, seats=n) for r, n in rows])
    for sid, rows in ROWS.items()
] + [SectionInput(id="G", name="Standing", capacity=GA_CAPACITY)]
USERS = ("ann", "bob")
EVENT = VenueKind.EVENT


@dataclass
class Claim:
    """A hold or reservation of the model: its units, and until when it lives (virtual s)."""

    token: str
    units: tuple[str, ...]
    expires: int
    status: str = "held"


def block_start(free: list[bool], n: int) -> int | None:
    """The reference rule: no single seat left alone next to the block first, then nearest
    the row's middle, then lower numbers (1-based start), or None."""
    m = len(free)
    best: tuple[int, int, int] | None = None
    for a in range(1, m - n + 2):
        if not all(free[a - 1 : a - 1 + n]):
            continue
        left = 0
        while a - 2 - left >= 0 and free[a - 2 - left]:
            left += 1
        right = 0
        while a - 1 + n + right < m and free[a - 1 + n + right]:
            right += 1
        key = (1 if 1 in (left, right) else 0, abs(2 * a + n - 1 - (m + 1)), a)
        if best is None or key < best:
            best = key
    return best[2] if best else None


class SeatMapVersusModel(RuleBasedStateMachine):
    """The real scripts against a model of who owns which place."""

    redis_url = ""
    holds = Bundle("holds")
    references = Bundle("references")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        config = Settings(_env_file=None, redis_url=self.redis_url, secret_key="model")
        self.redis = connect_redis(config)
        self.services = Services.build(self.redis, config, Metrics())
        self.run(self.redis.flushall())
        self.run(self.services.scripts.load())
        event = self.run(
            self.services.events.create(
                EventInput(
                    name="Model",
                    starts_at="2030-06-01T20:00:00+00:00",
                    sections=SECTIONS,
                    hold_seconds=HOLD_S,
                    max_hold_seconds=MAX_S,
                    max_holds_per_user=40,
                )
            )
        )
        self.eid = event.id
        self.now = 0
        self.claims: dict[str, Claim] = {}  # hold id or reference -> claim

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()

    # -- the model -----------------------------------------------------------------------------

    def taken(self) -> set[str]:
        return {
            unit
            for claim in self.claims.values()
            if claim.status == "reserved" or (claim.status == "held" and claim.expires > self.now)
            for unit in claim.units
        }

    def expected(self, section: str | None, n: int, together: bool) -> tuple[str, ...] | str:
        taken = self.taken()
        if section == "G":
            places = [f"G~{k}" for k in range(1, GA_CAPACITY + 1) if f"G~{k}" not in taken]
            return tuple(places[:n]) if len(places) >= n else "not_enough_seats"
        names = [section] if section else list(ROWS)
        rows = [
            (f"{s}-{r}", [f"{s}-{r}-{k}" not in taken for k in range(1, seats + 1)])
            for s in names
            for r, seats in ROWS[s]
        ]
        if sum(sum(free) for _, free in rows) < n:
            return "not_enough_seats"
        for key, free in rows:
            start = block_start(free, n)
            if start is not None:
                return tuple(f"{key}-{k}" for k in range(start, start + n))
        if together:
            return "not_enough_together"
        apart = [f"{key}-{k}" for key, free in rows for k, f in enumerate(free, 1) if f]
        return tuple(apart[:n])

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        target=holds,
        user=st.sampled_from(USERS),
        section=st.sampled_from((None, "A", "B", "G")),
        n=st.integers(min_value=1, max_value=7),
        together=st.booleans(),
    )
    def best(self, user: str, section: str | None, n: int, together: bool) -> str:
        want = self.expected(section, n, together)
        body = SeatHoldInput(user_id=user, count=n, section=section, together=together)
        try:
            hold, _ = self.run(self.services.holds.place_from_body(self.eid, EVENT, body, None))
        except HoldsvcError as error:
            assert error.code == want, (error.code, want)
            return ""
        units = (
            tuple(hold.seats) if hold.seats else tuple(f"G~{k}" for k in self._ga_units(hold.id))
        )
        assert units == want, (units, want)
        self.claims[hold.id] = Claim(str(hold.token), units, self.now + HOLD_S)
        return str(hold.id)

    def _ga_units(self, hold_id: str) -> list[int]:
        raw = self.run(self.redis.hget(Keys("hs").of(self.eid).hold(hold_id), "units"))
        return sorted(int(u.split("~")[1]) for u in json.loads(raw))

    @rule(
        target=holds,
        user=st.sampled_from(USERS),
        seats=st.lists(
            st.sampled_from(["A-1-1", "A-1-3", "A-2-7", "B-1-2"]),
            min_size=1,
            max_size=2,
            unique=True,
        ),
    )
    def named(self, user: str, seats: list[str]) -> str:
        busy = set(seats) & self.taken()
        body = SeatHoldInput(user_id=user, seats=seats)
        try:
            hold, _ = self.run(self.services.holds.place_from_body(self.eid, EVENT, body, None))
        except HoldsvcError as error:
            assert busy and error.code == "unit_unavailable", (error.code, busy)
            return ""
        assert not busy
        self.claims[hold.id] = Claim(str(hold.token), tuple(seats), self.now + HOLD_S)
        return str(hold.id)

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        claim = self.claims.get(hold_id)
        if not claim:
            return
        try:
            self.run(self.services.holds.release(self.eid, EVENT, hold_id, claim.token))
        except HoldExpired:
            assert claim.status == "confirmed"
            return
        if claim.status == "held":
            claim.status = "ended"

    @rule(target=references, hold_id=holds)
    def confirm(self, hold_id: str) -> str:
        claim = self.claims.get(hold_id)
        if not claim or claim.status != "held":
            return ""
        body = ConfirmInput(name="M", phone="+12125550100")
        try:
            reservation, _ = self.run(
                self.services.holds.confirm(self.eid, EVENT, hold_id, claim.token, body)
            )
        except HoldExpired:
            assert claim.expires <= self.now
            return ""
        claim.status = "confirmed"
        self.claims[reservation.reference] = Claim("", claim.units, 0, "reserved")
        return str(reservation.reference)

    @rule(reference=references)
    def cancel(self, reference: str) -> None:
        if not reference:
            return
        self.run(self.services.reservations.cancel(reference, admin=True))
        self.claims[reference].status = "cancelled"

    @rule()
    def sweep(self) -> None:
        self.run(self.services.sweeper.sweep_once())

    @rule(seconds=st.sampled_from((30, 100)))
    def time_passes(self, seconds: int) -> None:
        self.run(age_live_holds(self.services, self.eid, seconds))
        self.now += seconds

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def counts_agree(self) -> None:
        taken = self.taken()
        sections = self.run(self.services.events.sections(self.eid))
        for view in sections:
            free = view.capacity - sum(
                1 for u in taken if u.startswith((view.id + "-", view.id + "~"))
            )
            assert view.available == free, (view.id, view.available, free)
        event = self.run(self.services.events.get(self.eid))
        assert event.available_seats == event.total_seats - len(taken)

    @invariant()
    def audit_is_clean(self) -> None:
        report = self.run(self.services.auditor.audit(self.eid))
        assert report.ok, report.violations


def test_seat_maps_agree_with_the_model(redis_url: str) -> None:
    SeatMapVersusModel.redis_url = redis_url
    run_state_machine_as_test(
        SeatMapVersusModel,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

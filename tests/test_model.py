"""Property test: random sequences of hold/refresh/release/confirm/cancel/sweep with time
advancing, over several users and cells, run by the real scripts on a real Redis, checked
after every step against a small Python reference model (and the audit). A second machine
runs the same steps under durations by party size and a table combination (issue 15).

Redis's clock cannot be wound forward, so "time passes" by moving every live hold's times
back by the same amount (cells, records and indexes alike): to the scripts, which compare
against Redis TIME, that is exactly the same as the clock moving on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
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

from holdsvc.booking_rules import record_slots
from holdsvc.clock import redis_now_ms
from holdsvc.connection import connect_redis
from holdsvc.errors import (
    HoldExpired,
    HoldLifetimeExceeded,
    HoldLimitReached,
    HoldsvcError,
    NoTableAvailable,
    UnitUnavailable,
)
from holdsvc.holds import HoldRequest
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.models import (
    CombinationInput,
    ConfirmInput,
    DurationRule,
    RestaurantInput,
    TableInput,
)
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.units import decode_units
from holdsvc.venues import VenueKind, read_cell
from tests.helpers import tomorrow

HOLD_S, MAX_S, CAP = 100, 150, 2
TABLES = ("T1", "T2", "T3")
# Taken once, when the module is read: a run that crosses midnight keeps the same day.
DAY = tomorrow()
SLOTS = (f"{DAY}T18:00", f"{DAY}T19:00")
USERS = ("ann", "bob", "cat")
# The durations machine: 30-minute slots 18:00-20:00; a pair keeps its table 60 minutes, a
# party of up to four 90 minutes (three slots); C1 pushes T1 and T2 together for four.
HALF_HOURS = (f"{DAY}T18:00", f"{DAY}T18:30", f"{DAY}T19:00", f"{DAY}T19:30")
SPAN = {2: 2, 4: 3}
COMBOS = {"C1": ("T1", "T2")}
Cell = tuple[str, str]


@dataclass
class ModelHold:
    """The model's view of one hold, in virtual seconds."""

    id: str
    token: str
    user: str
    cells: tuple[Cell, ...]
    tables: int
    created: int
    expires: int
    status: str = "held"

    @property
    def ends(self) -> int:
        return self.created + MAX_S


@dataclass
class Model:
    """Cells, holds and reservations as they should be, at virtual time ``now``."""

    now: int = 0
    holds: dict[str, ModelHold] = field(default_factory=dict)
    reserved: dict[tuple[str, str], str] = field(default_factory=dict)

    def live(self, hold: ModelHold) -> bool:
        return hold.status == "held" and hold.expires > self.now

    def holder(self, slot: str, table: str) -> ModelHold | None:
        for hold in self.holds.values():
            if self.live(hold) and (slot, table) in hold.cells:
                return hold
        return None

    def free(self, slot: str, table: str) -> bool:
        return (slot, table) not in self.reserved and self.holder(slot, table) is None

    def held_units(self, user: str) -> int:
        return sum(h.tables for h in self.holds.values() if h.user == user and self.live(h))


class ScriptsVersusModel(RuleBasedStateMachine):
    """The real scripts and the model, step by step."""

    redis_url = ""
    holds = Bundle("holds")
    references = Bundle("references")

    slots: tuple[str, ...] = SLOTS

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        config = Settings(_env_file=None, redis_url=self.redis_url, secret_key="model")
        self.redis = connect_redis(config)
        self.services = Services.build(self.redis, config, Metrics())
        self.model = Model()
        self.run(self.redis.flushall())
        self.run(self.services.scripts.load())
        restaurant = self.run(self.services.restaurants.create(self.venue_input()))
        self.rid = restaurant.id
        self.run(
            self.services.restaurants.add_tables(self.rid, [TableInput(capacity=2) for _ in TABLES])
        )
        self.run(self.services.restaurants.add_slots(self.rid, DAY, DAY))
        self.refs: dict[str, tuple[Cell, ...]] = {}

    def venue_input(self) -> RestaurantInput:
        return RestaurantInput(
            name="Model",
            phone="+12125550100",
            timezone="UTC",
            opens="18:00",
            closes="20:00",
            hold_seconds=HOLD_S,
            max_hold_seconds=MAX_S,
            max_holds_per_user=CAP,
        )

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    # -- what a subclass may add (tests/test_model_waitlist.py: the waitlist) -------------------

    parties: tuple[int, ...] = (2,)

    def claim_options(self, slot: str, party: int) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """The slots a claim of ``party`` at ``slot`` spans (none: the grid ends before its
        duration does) and the tables it may take, in best-fit order."""
        return (slot,), [(t,) for t in TABLES]

    def before_claim(self) -> None:
        """Called before a hold is placed."""

    def after_claim(self) -> None:
        """Called after a hold was placed or refused."""

    def after_change(self) -> None:
        """Called after a release, confirm, cancel or sweep."""

    def teardown(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        target=holds,
        user=st.sampled_from(USERS),
        slot=st.sampled_from(SLOTS),
        table=st.sampled_from((None, *TABLES)),
    )
    def hold(self, user: str, slot: str, table: str | None) -> str:
        self.before_claim()
        try:
            return self.claim(user, slot, table)
        finally:
            self.after_claim()

    def claim(self, user: str, slot: str, table: str | None) -> str:
        m = self.model
        wanted = table or next((t for t in TABLES if m.free(slot, t)), None)
        expected: type[HoldsvcError] | None = None
        if m.held_units(user) + 1 > CAP:
            expected = HoldLimitReached
        elif wanted is None:
            expected = NoTableAvailable
        elif not m.free(slot, wanted):
            expected = UnitUnavailable
        request = HoldRequest(
            user_id=user, slot=slot, party_size=2, units=[table] if table else [], count=1
        )
        try:
            placed, _ = self.run(self.services.holds.place(self.rid, VenueKind.RESTAURANT, request))
        except HoldsvcError as error:
            assert expected is not None and isinstance(error, expected), (error, expected)
            return ""
        assert expected is None and placed.table_id == wanted, (placed, expected, wanted)
        cells = ((slot, str(wanted)),)
        m.holds[placed.id] = ModelHold(
            placed.id, str(placed.token), user, cells, 1, m.now, m.now + HOLD_S
        )
        return str(placed.id)

    @rule(hold_id=holds, honest=st.booleans())
    def refresh(self, hold_id: str, honest: bool) -> None:
        hold = self.model.holds.get(hold_id)
        if hold is None:
            return
        token = hold.token if honest else "forged"
        try:
            result = self.run(
                self.services.holds.refresh(self.rid, VenueKind.RESTAURANT, hold_id, token)
            )
        except HoldsvcError as error:
            if not honest:
                assert error.code == "forbidden"
            elif not self.model.live(hold):
                assert isinstance(error, HoldExpired), error
            else:
                assert isinstance(error, HoldLifetimeExceeded) and hold.expires >= hold.ends, error
            return
        assert honest and self.model.live(hold) and hold.expires < hold.ends
        hold.expires = max(hold.expires, min(self.model.now + HOLD_S, hold.ends))
        assert result.status == "held"

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        hold = self.model.holds.get(hold_id)
        if hold is None:
            return
        try:
            self.run(
                self.services.holds.release(self.rid, VenueKind.RESTAURANT, hold_id, hold.token)
            )
        except HoldExpired:
            assert hold.status == "confirmed"
            return
        if hold.status == "held":
            hold.status = "released" if self.model.live(hold) else "expired"
        self.after_change()

    @rule(target=references, hold_id=holds)
    def confirm(self, hold_id: str) -> str:
        hold = self.model.holds.get(hold_id)
        if hold is None:
            return ""
        body = ConfirmInput(name="M", phone="+12125550100")
        try:
            reservation, replayed = self.run(
                self.services.holds.confirm(
                    self.rid, VenueKind.RESTAURANT, hold_id, hold.token, body
                )
            )
        except HoldExpired:
            assert not self.model.live(hold) and hold.status != "confirmed"
            return ""
        assert replayed == (hold.status == "confirmed")
        if not replayed:
            assert self.model.live(hold)
            hold.status = "confirmed"
            for cell in hold.cells:
                self.model.reserved[cell] = reservation.reference
            self.refs[reservation.reference] = hold.cells
        self.after_change()
        return str(reservation.reference)

    @rule(reference=references)
    def cancel(self, reference: str) -> None:
        if not reference:
            return
        self.run(self.services.reservations.cancel(reference, admin=True))
        for cell in self.refs[reference]:
            if self.model.reserved.get(cell) == reference:
                del self.model.reserved[cell]
        self.after_change()

    @rule()
    def sweep(self) -> None:
        self.run(self.services.sweeper.sweep_once())
        for hold in self.model.holds.values():
            if hold.status == "held" and not self.model.live(hold):
                hold.status = "expired"
        self.after_change()

    @rule(seconds=st.sampled_from((10, 30, 50, 100)))
    def time_passes(self, seconds: int) -> None:
        self.run(age_live_holds(self.services, self.rid, seconds))
        self.model.now += seconds

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def cells_agree(self) -> None:
        keys = Keys("hs").of(self.rid)
        now = self.run(redis_now_ms(self.redis))
        for slot in self.slots:
            cells = self.run(self.redis.hgetall(keys.cells(slot)))
            for table in TABLES:
                seen = read_cell(cells.get(table), now)
                if (slot, table) in self.model.reserved:
                    assert (seen.status, seen.owner) == (
                        "reserved",
                        self.model.reserved[(slot, table)],
                    )
                elif holder := self.model.holder(slot, table):
                    assert (seen.status, seen.owner) == ("held", holder.id), (slot, table, seen)
                else:
                    assert seen.status == "available", (slot, table, seen)

    @invariant()
    def audit_is_clean(self) -> None:
        report = self.run(self.services.auditor.audit(self.rid))
        assert report.ok, report.violations


async def age_live_holds(services: Services, venue_id: str, seconds: int) -> None:
    """Move every live hold's times back by ``seconds``, consistently everywhere."""
    keys = Keys("hs").of(venue_id)
    redis = services.redis
    shift = seconds * 1000
    for hold_id in await redis.zrange(keys.holds, 0, -1):
        hold = await redis.hgetall(keys.hold(hold_id))
        expires = int(hold["expires"]) - shift
        await redis.hset(
            keys.hold(hold_id),
            mapping={
                "created": int(hold["created"]) - shift,
                "ends": int(hold["ends"]) - shift,
                "expires": expires,
            },
        )
        for slot in record_slots(hold):
            for unit in decode_units(hold["units"]):
                if await redis.hget(keys.cells(slot), unit) == f"h|{hold_id}|{hold['expires']}":
                    await redis.hset(keys.cells(slot), unit, f"h|{hold_id}|{expires}")
                    await redis.zadd(keys.held(slot), {unit: expires})
        await redis.zadd(keys.holds, {hold_id: expires})
        await redis.zadd(keys.user(hold["user"]), {f"{hold_id}|{hold['n']}": expires}, xx=True)


def test_scripts_agree_with_the_model(redis_url: str) -> None:
    ScriptsVersusModel.redis_url = redis_url
    run_state_machine_as_test(
        ScriptsVersusModel,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


class DurationsVersusModel(ScriptsVersusModel):
    """The same steps under durations by party size and a combination: a hold claims its
    table (or both tables of C1) in every slot of its duration, and everything ends it whole."""

    slots: tuple[str, ...] = HALF_HOURS

    def __init__(self) -> None:
        super().__init__()
        self.run(
            self.services.restaurants.add_combination(
                self.rid, CombinationInput(tables=list(COMBOS["C1"]), capacity=4)
            )
        )

    def venue_input(self) -> RestaurantInput:
        base = super().venue_input()
        base.slot_minutes = 30
        base.durations = [
            DurationRule(max_party=2, minutes=60),
            DurationRule(max_party=4, minutes=90),
        ]
        return base

    parties = (2, 4)

    def claim_options(self, slot: str, party: int) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        start = HALF_HOURS.index(slot)
        span = HALF_HOURS[start : start + SPAN[party]]
        singles = [(t,) for t in TABLES] if party <= 2 else []
        return span if len(span) == SPAN[party] else (), [*singles, *COMBOS.values()]

    def expected(
        self, user: str, span: tuple[str, ...], party: int, table: str | None
    ) -> tuple[type[HoldsvcError] | None, tuple[str, ...]]:
        """What hold.lua's rich path answers, in its order: the span, the cap (no table left
        under it), the table, the cap (the tables chosen)."""
        m = self.model
        if len(span) < SPAN[party]:
            return NoTableAvailable, ()
        if m.held_units(user) + 1 > CAP:
            return HoldLimitReached, ()
        options: list[tuple[str, ...]]
        if table is not None:
            tables = COMBOS.get(table, (table,))
            if (4 if table in COMBOS else 2) < party:
                return NoTableAvailable, ()
            if not all(m.free(s, t) for s in span for t in tables):
                return UnitUnavailable, ()
            options = [tables]
        else:
            options = [
                o
                for o in self.claim_options(span[0], party)[1]
                if all(m.free(s, t) for s in span for t in o)
            ][:1]
            if not options:
                return NoTableAvailable, ()
        if m.held_units(user) + len(options[0]) > CAP:
            return HoldLimitReached, ()
        return None, options[0]

    @rule(
        target=ScriptsVersusModel.holds,
        user=st.sampled_from(USERS),
        slot=st.sampled_from(HALF_HOURS),
        party=st.sampled_from((2, 4)),
        table=st.sampled_from((None, *TABLES, "C1")),
    )
    def hold(self, user: str, slot: str, party: int, table: str | None) -> str:
        self.before_claim()
        try:
            return self.claim_span(user, slot, party, table)
        finally:
            self.after_claim()

    def claim_span(self, user: str, slot: str, party: int, table: str | None) -> str:
        m = self.model
        start = HALF_HOURS.index(slot)
        span = HALF_HOURS[start : start + SPAN[party]]
        expected, tables = self.expected(user, span, party, table)
        request = HoldRequest(
            user_id=user, slot=slot, party_size=party, units=[table] if table else [], count=1
        )
        try:
            placed, _ = self.run(self.services.holds.place(self.rid, VenueKind.RESTAURANT, request))
        except HoldsvcError as error:
            assert expected is not None and isinstance(error, expected), (error, expected)
            return ""
        assert expected is None and tuple(placed.table_ids) == tables, (placed, expected, tables)
        cells = tuple((s, t) for s in span for t in tables)
        m.holds[placed.id] = ModelHold(
            placed.id, str(placed.token), user, cells, len(tables), m.now, m.now + HOLD_S
        )
        return str(placed.id)


def test_durations_and_combinations_agree_with_the_model(redis_url: str) -> None:
    DurationsVersusModel.redis_url = redis_url
    run_state_machine_as_test(
        DurationsVersusModel,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

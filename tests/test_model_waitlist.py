"""Property test: random sequences of hold/refresh/release/confirm/cancel/sweep and waitlist
join/leave (with offers and their lapse) with time advancing, over several users and cells,
run by the real scripts on a real Redis, checked after every step against a small Python
reference model (and the audit).

Redis's clock cannot be wound forward, so "time passes" by moving every live hold's times
back by the same amount (cells, records and indexes alike): to the scripts, which compare
against Redis TIME, that is exactly the same as the clock moving on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from holdsvc.clock import redis_now_ms
from holdsvc.connection import connect_redis
from holdsvc.errors import (
    AlreadyWaiting,
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
from holdsvc.models import ConfirmInput, Hold, RestaurantInput, TableInput, WaitlistInput
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.units import decode_units
from holdsvc.venues import VenueKind, read_cell
from tests.helpers import tomorrow

HOLD_S, MAX_S, CAP, OFFER_S = 100, 150, 2, 60
TABLES = ("T1", "T2", "T3")
# Taken once, when the module is read: a run that crosses midnight keeps the same day.
DAY = tomorrow()
SLOTS = (f"{DAY}T18:00", f"{DAY}T19:00")
USERS = ("ann", "bob", "cat")


@dataclass
class ModelHold:
    """The model's view of one hold, in virtual seconds."""

    id: str
    token: str
    user: str
    slot: str
    table: str
    created: int
    expires: int
    status: str = "held"
    offer_of: str | None = None  # the waitlist entry it was offered to

    @property
    def ends(self) -> int:
        # An offer lasts offer_seconds, and no refresh extends it.
        return self.expires if self.offer_of else self.created + MAX_S


@dataclass
class ModelEntry:
    """The model's view of one waitlist entry."""

    id: str
    token: str
    user: str
    slot: str
    status: str = "waiting"
    passed_over: bool = False  # left waiting beside a free table, its user at the cap


@dataclass
class Model:
    """Cells, holds and reservations as they should be, at virtual time ``now``."""

    now: int = 0
    holds: dict[str, ModelHold] = field(default_factory=dict)
    reserved: dict[tuple[str, str], str] = field(default_factory=dict)
    entries: dict[str, ModelEntry] = field(default_factory=dict)

    def live(self, hold: ModelHold) -> bool:
        return hold.status == "held" and hold.expires > self.now

    def holder(self, slot: str, table: str) -> ModelHold | None:
        for hold in self.holds.values():
            if self.live(hold) and (hold.slot, hold.table) == (slot, table):
                return hold
        return None

    def free(self, slot: str, table: str) -> bool:
        return (slot, table) not in self.reserved and self.holder(slot, table) is None

    def held_units(self, user: str) -> int:
        return sum(1 for h in self.holds.values() if h.user == user and self.live(h))


class ScriptsVersusModel(RuleBasedStateMachine):
    """The real scripts and the model, step by step."""

    redis_url = ""
    holds = Bundle("holds")
    references = Bundle("references")
    entries = Bundle("entries")

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
        self.refs: dict[str, tuple[str, str]] = {}

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
            offer_seconds=OFFER_S,
        )

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

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
        m = self.model
        if any(e.slot == slot and e.status == "waiting" for e in m.entries.values()) and any(
            h.slot == slot and h.status == "held" and not m.live(h) for h in m.holds.values()
        ):
            # The claim would sweep a lapsed hold in its way, and that expiry hands the table
            # to the waitlist: the model sweeps first so that it knows who holds what.
            self.sweep()
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
            self.adopt_lapses()
            return ""
        self.adopt_lapses()
        assert expected is None and placed.table_id == wanted, (placed, expected, wanted)
        m.holds[placed.id] = ModelHold(
            placed.id, str(placed.token), user, slot, str(wanted), m.now, m.now + HOLD_S
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
        self.adopt_offers()

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
            self.model.reserved[(hold.slot, hold.table)] = reservation.reference
            self.refs[reservation.reference] = (hold.slot, hold.table)
        return str(reservation.reference)

    @rule(reference=references)
    def cancel(self, reference: str) -> None:
        if not reference:
            return
        self.run(self.services.reservations.cancel(reference, admin=True))
        cell = self.refs[reference]
        if self.model.reserved.get(cell) == reference:
            del self.model.reserved[cell]
        self.adopt_offers()

    @rule()
    def sweep(self) -> None:
        self.run(self.services.sweeper.sweep_once())
        for hold in self.model.holds.values():
            if hold.status == "held" and not self.model.live(hold):
                hold.status = "expired"
        self.adopt_offers()

    @rule(target=entries, user=st.sampled_from(USERS), slot=st.sampled_from(SLOTS))
    def join(self, user: str, slot: str) -> str:
        m = self.model
        waiting = any(
            e.user == user and e.slot == slot and e.status in ("waiting", "offered")
            for e in m.entries.values()
        )
        body = WaitlistInput(user_id=user, slot=slot, party_size=2, name="W", phone="+12125550199")
        try:
            entry = self.run(self.services.waitlist.join(self.rid, VenueKind.RESTAURANT, body))
        except AlreadyWaiting:
            assert waiting
            return ""
        assert not waiting
        m.entries[entry.id] = ModelEntry(entry.id, str(entry.token), user, slot)
        self.adopt_offers()
        return str(entry.id)

    @rule(entry_id=entries)
    def leave(self, entry_id: str) -> None:
        entry = self.model.entries.get(entry_id)
        if entry is None:
            return
        left = self.run(
            self.services.waitlist.leave(self.rid, VenueKind.RESTAURANT, entry_id, entry.token)
        )
        if entry.status in ("waiting", "offered"):
            assert left.status == "left"
            for hold in self.model.holds.values():
                if hold.offer_of == entry_id and hold.status == "held":
                    hold.status = "released" if self.model.live(hold) else "expired"
            entry.status = "left"
        else:
            assert left.status == entry.status
        self.adopt_offers()

    @rule(entry_id=entries)
    def confirm_offer(self, entry_id: str) -> None:
        offer = next((h for h in self.model.holds.values() if h.offer_of == entry_id), None)
        if entry_id and offer is not None:
            self.confirm(offer.id)
            self.adopt_offers()

    def adopt_lapses(self) -> None:
        """A claim sweeps lapsed holds in its way (after_sweeping): each such expiry may hand
        its table on. The model learns which lapsed holds ended, then the offers."""
        for hold in self.model.holds.values():
            if hold.status == "held" and not self.model.live(hold):
                status = self.run(self.redis.hget(Keys("hs").of(self.rid).hold(hold.id), "status"))
                if status == "expired":
                    hold.status = "expired"
        self.adopt_offers()

    def adopt_offers(self) -> None:
        """Read every entry back: a new offer becomes a model hold (it must sit on a table the
        model says is free, for the entry's user, within the cap); ended offers end entries."""
        m = self.model
        for entry in m.entries.values():
            seen = self.run(
                self.services.waitlist.get(self.rid, VenueKind.RESTAURANT, entry.id, entry.token)
            )
            if entry.status == "waiting" and seen.status == "offered":
                offer = seen.hold
                assert isinstance(offer, Hold) and offer.user_id == entry.user
                table = str(offer.table_id)
                assert offer.slot == entry.slot and m.free(entry.slot, table), (entry, table)
                assert m.held_units(entry.user) + 1 <= CAP
                m.holds[offer.id] = ModelHold(
                    offer.id, str(offer.token), entry.user, entry.slot, table, m.now,
                    m.now + OFFER_S, offer_of=entry.id,
                )  # fmt: skip
                entry.status = "offered"
                continue
            offer = next((h for h in m.holds.values() if h.offer_of == entry.id), None)
            if entry.status == "offered" and offer is not None and offer.status != "held":
                # Its offer ended: confirmed with it, else expired.
                entry.status = "confirmed" if offer.status == "confirmed" else "expired"
            assert seen.status == entry.status, (entry, seen.status)
        # Offers follow freed cells: an entry left waiting at the cap waits for the next step
        # that frees a cell of its slot, even once its user's holds end.
        for entry in m.entries.values():
            lapsed = any(
                h.slot == entry.slot and h.status == "held" and not m.live(h)
                for h in m.holds.values()
            )
            free = any(m.free(entry.slot, table) for table in TABLES)
            at_cap = m.held_units(entry.user) + 1 > CAP
            if entry.status == "waiting" and free and not lapsed and at_cap:
                entry.passed_over = True

    @rule(seconds=st.sampled_from((10, 30, 50, 100)))
    def time_passes(self, seconds: int) -> None:
        self.run(age_live_holds(self.services, self.rid, seconds))
        self.model.now += seconds

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def cells_agree(self) -> None:
        keys = Keys("hs").of(self.rid)
        now = self.run(redis_now_ms(self.redis))
        for slot in SLOTS:
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
    def no_fitting_entry_waits_beside_a_free_table(self) -> None:
        """Invariant 9, in the model: a slot with a free table (and no lapsed hold the sweeper
        still has to end) has no waiting entry whose user is under the cap."""
        m = self.model
        for slot in SLOTS:
            lapsed = any(
                h.slot == slot and h.status == "held" and not m.live(h) for h in m.holds.values()
            )
            if lapsed or not any(m.free(slot, t) for t in TABLES):
                continue
            for entry in m.entries.values():
                if entry.slot == slot and entry.status == "waiting" and not entry.passed_over:
                    assert m.held_units(entry.user) + 1 > CAP, (slot, entry)

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
        for unit in decode_units(hold["units"]):
            if await redis.hget(keys.cells(hold["slot"]), unit) == f"h|{hold_id}|{hold['expires']}":
                await redis.hset(keys.cells(hold["slot"]), unit, f"h|{hold_id}|{expires}")
                await redis.zadd(keys.held(hold["slot"]), {unit: expires})
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


class RulesWaitlistVersusModel(ScriptsVersusModel):
    """The same model at a restaurant with a booking rule that never bites (a covers cap no
    three tables of two reach): every hold and every offer takes the rich path (DESIGN.md 8,
    10) and the reach-checking waitlist block, and must behave exactly as the plain path."""

    def venue_input(self) -> RestaurantInput:
        plain = super().venue_input()
        return msgspec.structs.replace(plain, max_covers_per_slot=100)


def test_the_rich_path_agrees_with_the_same_model(redis_url: str) -> None:
    RulesWaitlistVersusModel.redis_url = redis_url
    run_state_machine_as_test(
        RulesWaitlistVersusModel,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

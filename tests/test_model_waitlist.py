"""Property test: the machines of tests/test_model.py (hold/refresh/release/confirm/cancel/
sweep with time advancing) with the waitlist added: join and leave, offers made by the
freeing steps and their lapse, run by the real scripts on a real Redis and checked after
every step against the reference model and the audit. Three venues: plain; with a rule that
never bites (every hold and offer takes the rich path); and with durations by party size and
a combination, where a freed span may serve an entry of an earlier slot (its reach).

The model does not predict which entry an offer goes to; it checks each offer it reads back
(a hold for the entry's user on tables the model has free for the entry's whole span, within
the cap), and after every step that no waiting entry fits the free tables (DESIGN.md
invariant 9) unless its user was at the cap when a step passed it over.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, rule, run_state_machine_as_test

from holdsvc.errors import AlreadyWaiting
from holdsvc.keys import Keys
from holdsvc.models import Hold, RestaurantInput, WaitlistInput
from holdsvc.venues import VenueKind
from tests.test_model import (
    CAP,
    USERS,
    DurationsVersusModel,
    ModelHold,
    ScriptsVersusModel,
)

OFFER_S = 60
KIND = VenueKind.RESTAURANT


@dataclass
class OfferHold(ModelHold):
    """A hold a freeing step offered to a waitlist entry."""

    offer_of: str = ""

    @property
    def ends(self) -> int:
        # An offer lasts offer_seconds, and no refresh extends it.
        return self.expires


@dataclass
class ModelEntry:
    """The model's view of one waitlist entry."""

    id: str
    token: str
    user: str
    slot: str
    party: int
    status: str = "waiting"
    passed_over: bool = False  # left waiting beside a fitting table, its user at the cap


class WaitlistSteps(ScriptsVersusModel):
    """The waitlist's rules and checks, on top of a machine of tests/test_model.py."""

    entries = Bundle("entries")

    def __init__(self) -> None:
        self.waitlist: dict[str, ModelEntry] = {}
        super().__init__()

    def venue_input(self) -> RestaurantInput:
        return msgspec.structs.replace(super().venue_input(), offer_seconds=OFFER_S)

    # -- hooks the machines call ---------------------------------------------------------------

    def before_claim(self) -> None:
        m = self.model
        if any(e.status == "waiting" for e in self.waitlist.values()) and any(
            h.status == "held" and not m.live(h) for h in m.holds.values()
        ):
            # The claim would sweep a lapsed hold in its way, and that expiry may hand tables
            # to the waitlist: the model sweeps first so that it knows who holds what.
            self.sweep()

    def after_claim(self) -> None:
        """A claim sweeps lapsed holds in its way (after_sweeping): each such expiry may hand
        its tables on. The model learns which lapsed holds ended, then the offers."""
        for hold in self.model.holds.values():
            if hold.status == "held" and not self.model.live(hold):
                status = self.run(self.redis.hget(Keys("hs").of(self.rid).hold(hold.id), "status"))
                if status == "expired":
                    hold.status = "expired"
        self.adopt_offers()

    def after_change(self) -> None:
        self.adopt_offers()

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        target=entries,
        user=st.sampled_from(USERS),
        at=st.integers(min_value=0, max_value=3),
        party=st.sampled_from((2, 4)),
    )
    def join(self, user: str, at: int, party: int) -> str:
        slot = self.slots[at % len(self.slots)]
        party = party if party in self.parties else self.parties[0]
        waiting = any(
            e.user == user and e.slot == slot and e.status in ("waiting", "offered")
            for e in self.waitlist.values()
        )
        body = WaitlistInput(
            user_id=user, slot=slot, party_size=party, name="W", phone="+12125550199"
        )
        try:
            entry = self.run(self.services.waitlist.join(self.rid, KIND, body))
        except AlreadyWaiting:
            assert waiting
            return ""
        assert not waiting
        self.waitlist[entry.id] = ModelEntry(entry.id, str(entry.token), user, slot, party)
        self.adopt_offers()
        return str(entry.id)

    @rule(entry_id=entries)
    def leave(self, entry_id: str) -> None:
        entry = self.waitlist.get(entry_id)
        if entry is None:
            return
        left = self.run(self.services.waitlist.leave(self.rid, KIND, entry_id, entry.token))
        if entry.status in ("waiting", "offered"):
            assert left.status == "left"
            offer = self.offer_of(entry_id)
            if offer is not None and offer.status == "held":
                offer.status = "released" if self.model.live(offer) else "expired"
            entry.status = "left"
        else:
            assert left.status == entry.status
        self.adopt_offers()

    @rule(entry_id=entries)
    def confirm_offer(self, entry_id: str) -> None:
        offer = self.offer_of(entry_id)
        if entry_id and offer is not None:
            self.confirm(offer.id)

    # -- what the model makes of the waitlist --------------------------------------------------

    def offer_of(self, entry_id: str) -> OfferHold | None:
        """The hold offered to the entry, if one was."""
        for hold in self.model.holds.values():
            if isinstance(hold, OfferHold) and hold.offer_of == entry_id:
                return hold
        return None

    def first_fit(self, entry: ModelEntry) -> tuple[tuple[str, ...], bool] | None:
        """The tables best fit gives the entry now (the first option whose cells are free or
        only lapsed), and whether a lapsed hold sits on them (then no offer: its expiry
        offers); None when nothing fits."""
        m = self.model
        span, options = self.claim_options(entry.slot, entry.party)
        for option in options if span else []:
            cells = [(s, t) for s in span for t in option]
            if all(m.free(*cell) for cell in cells):
                lapsed = any(
                    h.status == "held" and not m.live(h) and cell in h.cells
                    for h in m.holds.values()
                    for cell in cells
                )
                return option, lapsed
        return None

    def fits_at_cap(self, entry: ModelEntry) -> bool:
        """Free tables (no lapsed hold on them) fit the entry, but its user is at the cap."""
        fit = self.first_fit(entry)
        return (
            fit is not None and not fit[1] and self.model.held_units(entry.user) + len(fit[0]) > CAP
        )

    def adopt_offers(self) -> None:
        """Read every entry back: a new offer becomes a model hold (it must sit on tables the
        model has free for the entry's whole span, for the entry's user, within the cap);
        ended offers end entries."""
        m = self.model
        for entry in self.waitlist.values():
            seen = self.run(self.services.waitlist.get(self.rid, KIND, entry.id, entry.token))
            if entry.status == "waiting" and seen.status == "offered":
                offer = seen.hold
                assert isinstance(offer, Hold) and offer.user_id == entry.user
                tables = tuple(offer.table_ids or ())
                span, options = self.claim_options(entry.slot, entry.party)
                cells = tuple((s, t) for s in span for t in tables)
                assert offer.slot == entry.slot and tables in options, (entry, tables)
                assert all(m.free(*cell) for cell in cells), (entry, cells)
                assert m.held_units(entry.user) + len(tables) <= CAP
                m.holds[offer.id] = OfferHold(
                    offer.id, str(offer.token), entry.user, cells, len(tables), m.now,
                    m.now + OFFER_S, offer_of=entry.id,
                )  # fmt: skip
                entry.status = "offered"
                continue
            ended = self.offer_of(entry.id)
            if entry.status == "offered" and ended is not None and ended.status != "held":
                # Its offer ended: confirmed with it, else expired.
                entry.status = "confirmed" if ended.status == "confirmed" else "expired"
            assert seen.status == entry.status, (entry, seen.status)
        # Offers follow freed cells: an entry left waiting at the cap waits for a later step
        # that frees cells in its reach, even once its user's holds end.
        for entry in self.waitlist.values():
            if entry.status == "waiting" and self.fits_at_cap(entry):
                entry.passed_over = True

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def no_fitting_entry_waits_beside_free_tables(self) -> None:
        """Invariant 9, in the model: no waiting entry fits the free tables of its whole span
        (with no lapsed hold on them that the sweeper still has to end) while its user is
        under the cap, unless a step passed it over at the cap."""
        for entry in self.waitlist.values():
            if entry.status == "waiting" and not entry.passed_over:
                fit = self.first_fit(entry)
                assert fit is None or fit[1] or self.fits_at_cap(entry), (entry, fit)


class PlainWaitlistVersusModel(WaitlistSteps):
    """One-hour slots, tables of two, no booking rules."""


class RulesWaitlistVersusModel(WaitlistSteps):
    """The same venue with a rule that never bites (a covers cap no three tables of two
    reach): every hold and every offer takes the rich path (DESIGN.md 8, 10) and must behave
    exactly as the plain path."""

    def venue_input(self) -> RestaurantInput:
        return msgspec.structs.replace(super().venue_input(), max_covers_per_slot=100)


class DurationsWaitlistVersusModel(WaitlistSteps, DurationsVersusModel):
    """30-minute slots, a pair keeps its table an hour and four 90 minutes (T1+T2 as C1):
    offers claim whole spans, and a freed span serves entries of earlier slots."""


def run_machine(machine: type[WaitlistSteps], redis_url: str) -> None:
    machine.redis_url = redis_url
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_scripts_agree_with_the_model(redis_url: str) -> None:
    run_machine(PlainWaitlistVersusModel, redis_url)


def test_the_rich_path_agrees_with_the_same_model(redis_url: str) -> None:
    run_machine(RulesWaitlistVersusModel, redis_url)


def test_durations_and_a_combination_agree_with_the_model(redis_url: str) -> None:
    run_machine(DurationsWaitlistVersusModel, redis_url)

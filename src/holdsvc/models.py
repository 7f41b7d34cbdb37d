"""What the service hands out (venues, tables, slots, holds, reservations) and takes in."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from holdsvc.identifiers import UNIT_ID_PATTERN

OMIT = msgspec.UNSET
Omittable = msgspec.UnsetType


class Restaurant(msgspec.Struct, kw_only=True):
    """A restaurant and its booking rules."""

    id: str
    name: str
    phone: str
    timezone: str
    opens: str
    closes: str
    slot_minutes: int
    hold_seconds: int
    max_hold_seconds: int
    max_holds_per_user: int
    min_notice_minutes: int
    max_days_ahead: int
    bookings_open: bool
    created_at: str
    schedule: Schedule | None = None
    horizon_days: int = 0
    address: str = ""
    description: str = ""
    locale: str = "en-US"
    reminder_hours: int = 0
    durations: list[DurationRule] | None = None
    max_covers_per_slot: int = 0
    one_booking_per_guest: bool = False
    max_waitlist: int = 100
    offer_seconds: int = 900


class Table(msgspec.Struct, kw_only=True):
    """A table: a unit with a capacity."""

    id: str
    label: str | None
    capacity: int


class TableStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A table in one slot, with its state; ``free_at`` only while held."""

    id: str
    label: str | None
    capacity: int
    status: str
    free_at: str | None = None


class SlotView(msgspec.Struct, kw_only=True):
    """One slot with every table and its status."""

    slot: str
    starts_at: str
    ends_at: str
    tables: list[TableStatus]


class AvailableSlot(msgspec.Struct, kw_only=True):
    """One bookable slot with the free tables that fit the party."""

    slot: str
    starts_at: str
    ends_at: str
    tables: list[Table]


class Hold(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A hold; ``token`` only in the answer that created it."""

    id: str
    venue_id: str
    user_id: str
    slot: str
    party_size: int
    status: str
    created_at: str
    expires_at: str
    expires_in: float
    refreshes: int
    table_id: str | Omittable = OMIT
    table_ids: list[str] | Omittable = OMIT
    ends_at: str | Omittable = OMIT
    seats: list[str] | Omittable = OMIT
    ga: GaPlaces | Omittable = OMIT
    reference: str | Omittable = OMIT
    token: str | Omittable = OMIT


class GaPlaces(msgspec.Struct, kw_only=True):
    """Places of a general-admission section held or reserved: no seat ids, a count."""

    section: str
    count: int


class Reservation(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A reservation; ``manage_token`` once, at creation; staff fields for admins only."""

    reference: str
    status: str
    venue_id: str
    slot: str
    starts_at: str
    ends_at: str | None
    party_size: int
    name: str
    phone: str
    email: str | None
    notes: str | None
    created_at: str
    cancelled_at: str | None
    table_id: str | Omittable = OMIT
    table_ids: list[str] | Omittable = OMIT
    seats: list[str] | Omittable = OMIT
    ga: GaPlaces | Omittable = OMIT
    manage_token: str | Omittable = OMIT
    business_notes: str | Omittable | None = OMIT
    tags: list[str] | Omittable = OMIT


# Inputs: the request bodies, with the ranges of API.md as constraints.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Phone = Annotated[str, msgspec.Meta(min_length=3, max_length=40)]
HoldSeconds = Annotated[int, msgspec.Meta(ge=1, le=86_400)]
MaxHoldSeconds = Annotated[int, msgspec.Meta(ge=1, le=604_800)]
MaxHoldsPerUser = Annotated[int, msgspec.Meta(ge=1, le=1000)]
MinNotice = Annotated[int, msgspec.Meta(ge=0, le=525_600)]
# Hours before the start that a guest with an e-mail address is reminded (0: never).
ReminderHours = Annotated[int, msgspec.Meta(ge=0, le=168)]
MaxDaysAhead = Annotated[int, msgspec.Meta(ge=1, le=3660)]
SlotMinutes = Annotated[int, msgspec.Meta(ge=15, le=240)]
PartySize = Annotated[int, msgspec.Meta(ge=1, le=50)]
UserId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")
]
SlotId = Annotated[str, msgspec.Meta(min_length=16, max_length=16)]
UnitId = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=UNIT_ID_PATTERN)]
HhMm = Annotated[str, msgspec.Meta(pattern=r"^\d{2}:\d{2}$")]
DateText = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Notes = Annotated[str, msgspec.Meta(max_length=2000)]
HorizonDays = Annotated[int, msgspec.Meta(ge=0, le=366)]
Address = Annotated[str, msgspec.Meta(max_length=300)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]
# A BCP 47 tag's shape; whether Babel knows it is checked by the venue core (else 400).
LocaleTag = Annotated[str, msgspec.Meta(min_length=2, max_length=35, pattern=r"^[A-Za-z0-9-]+$")]
MaxCovers = Annotated[int, msgspec.Meta(ge=0, le=100_000)]


class DurationRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How long a party of up to ``max_party`` keeps its table (a multiple of slot_minutes)."""

    max_party: PartySize
    minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)]


Durations = Annotated[list[DurationRule], msgspec.Meta(min_length=1, max_length=20)]


class CombinationInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/restaurants/{rid}/combinations: 2..4 distinct tables, one capacity."""

    tables: Annotated[list[UnitId], msgspec.Meta(min_length=2, max_length=4)]
    capacity: Annotated[int, msgspec.Meta(ge=2, le=50)]


class Combination(msgspec.Struct, kw_only=True):
    """Tables pushed together for one party: claimed and freed as one."""

    id: str
    tables: list[str]
    capacity: int


MaxWaitlist = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
OfferSeconds = Annotated[int, msgspec.Meta(ge=60, le=86_400)]


class ServiceHours(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One service of a day; a ``closes`` before ``opens`` runs past midnight."""

    opens: HhMm
    closes: HhMm


DayServices = Annotated[list[ServiceHours], msgspec.Meta(max_length=4)]


class Schedule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A restaurant's week: 0..4 services per day; a day left out (or ``[]``) is closed."""

    mon: DayServices | Omittable = OMIT
    tue: DayServices | Omittable = OMIT
    wed: DayServices | Omittable = OMIT
    thu: DayServices | Omittable = OMIT
    fri: DayServices | Omittable = OMIT
    sat: DayServices | Omittable = OMIT
    sun: DayServices | Omittable = OMIT


class RestaurantInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/restaurants."""

    name: Name
    phone: Phone
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    opens: HhMm
    closes: HhMm
    slot_minutes: SlotMinutes = 60
    hold_seconds: HoldSeconds | None = None
    max_hold_seconds: MaxHoldSeconds | None = None
    max_holds_per_user: MaxHoldsPerUser | None = None
    min_notice_minutes: MinNotice = 0
    max_days_ahead: MaxDaysAhead = 90
    schedule: Schedule | None = None
    horizon_days: HorizonDays = 0
    address: Address = ""
    description: Description = ""
    locale: LocaleTag = "en-US"
    reminder_hours: ReminderHours = 0
    durations: Durations | None = None
    max_covers_per_slot: MaxCovers = 0
    one_booking_per_guest: bool = False
    max_waitlist: MaxWaitlist = 100
    offer_seconds: OfferSeconds = 900


class RestaurantPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of PATCH /v1/restaurants/{rid}: any subset of these."""

    name: Name | Omittable = OMIT
    phone: Phone | Omittable = OMIT
    bookings_open: bool | Omittable = OMIT
    hold_seconds: HoldSeconds | Omittable = OMIT
    max_hold_seconds: MaxHoldSeconds | Omittable = OMIT
    max_holds_per_user: MaxHoldsPerUser | Omittable = OMIT
    min_notice_minutes: MinNotice | Omittable = OMIT
    max_days_ahead: MaxDaysAhead | Omittable = OMIT
    schedule: Schedule | Omittable | None = OMIT
    horizon_days: HorizonDays | Omittable = OMIT
    address: Address | Omittable = OMIT
    description: Description | Omittable = OMIT
    locale: LocaleTag | Omittable = OMIT
    reminder_hours: ReminderHours | Omittable = OMIT
    durations: Durations | Omittable | None = OMIT
    max_covers_per_slot: MaxCovers | Omittable = OMIT
    one_booking_per_guest: bool | Omittable = OMIT
    max_waitlist: MaxWaitlist | Omittable = OMIT
    offer_seconds: OfferSeconds | Omittable = OMIT


class TableInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One table to add."""

    capacity: Annotated[int, msgspec.Meta(ge=2, le=8)]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class TablePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of PATCH /v1/restaurants/{rid}/tables/{tid}: a new capacity and/or label (null
    clears the label)."""

    capacity: Annotated[int, msgspec.Meta(ge=2, le=8)] | Omittable = OMIT
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | Omittable | None = OMIT


class TablesInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/restaurants/{rid}/tables."""

    tables: Annotated[list[TableInput], msgspec.Meta(min_length=1, max_length=500)]


class SlotsInput(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename={"first": "from", "last": "to"}
):
    """Body of POST /v1/restaurants/{rid}/slots: an inclusive date range."""

    first: DateText
    last: DateText


class ClosureInput(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename={"first": "from", "last": "to"}
):
    """Body of POST /v1/restaurants/{rid}/closures: an inclusive date range, and why."""

    first: DateText
    last: DateText
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Closure(msgspec.Struct, kw_only=True, rename={"first": "from", "last": "to"}):
    """Dates a restaurant is closed (inclusive): no slot is created on them."""

    first: str
    last: str
    reason: str | None


class SlotRemoval(msgspec.Struct, kw_only=True):
    """Slots removed from a date range, and the ones kept for a live hold or reservation."""

    removed: int
    kept: list[str]


class HoldInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/restaurants/{rid}/holds."""

    user_id: UserId
    slot: SlotId
    party_size: PartySize
    table_id: UnitId | None = None


class ConfirmInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST .../holds/{hold_id}/confirm."""

    name: Name
    phone: Phone
    email: Email | None = None
    notes: Notes | None = None


class Event(msgspec.Struct, kw_only=True):
    """An event: one slot, seats ``S1``..``SN``."""

    id: str
    name: str
    starts_at: str
    slot: str
    timezone: str | None
    total_seats: int
    available_seats: int
    hold_seconds: int
    max_hold_seconds: int
    max_holds_per_user: int
    bookings_open: bool
    created_at: str
    address: str = ""
    description: str = ""
    locale: str = "en-US"
    reminder_hours: int = 0
    max_waitlist: int = 100
    offer_seconds: int = 900
    sections: list[SectionView] | Omittable = OMIT


class RowView(msgspec.Struct, kw_only=True):
    """A row of a seated section with its free seats now."""

    id: str
    available: int


class SectionView(msgspec.Struct, kw_only=True):
    """A section of a seat map with its free places now; ``rows`` in the sections list."""

    id: str
    name: str
    kind: Literal["seated", "ga"]
    capacity: int
    available: int
    rows: list[RowView] | Omittable = OMIT


class SeatStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A seat and its state; ``free_at`` only while held; where it is on a seat map."""

    id: str
    status: str
    free_at: str | None = None
    section: str | Omittable = OMIT
    row: str | Omittable = OMIT
    number: int | Omittable = OMIT


MapId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]{1,16}$(?!\n)")
]


class RowInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A row of a seated section: its id and how many seats (numbered from 1)."""

    id: MapId
    seats: Annotated[int, msgspec.Meta(ge=1, le=200)]


class SectionInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A section: seated (``rows``) or general admission (``capacity``), not both."""

    id: MapId
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    rows: Annotated[list[RowInput], msgspec.Meta(min_length=1, max_length=100_000)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None


class EventInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/events."""

    name: Name
    starts_at: Annotated[str, msgspec.Meta(min_length=16, max_length=40)]
    total_seats: Annotated[int, msgspec.Meta(ge=10, le=10_000)] | None = None
    sections: (
        Annotated[list[SectionInput], msgspec.Meta(min_length=1, max_length=100_000)] | None
    ) = None
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    hold_seconds: HoldSeconds | None = None
    max_hold_seconds: MaxHoldSeconds | None = None
    max_holds_per_user: MaxHoldsPerUser | None = None
    address: Address = ""
    description: Description = ""
    locale: LocaleTag = "en-US"
    reminder_hours: ReminderHours = 0
    max_waitlist: MaxWaitlist = 100
    offer_seconds: OfferSeconds = 900


class EventPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of PATCH /v1/events/{eid}: any subset of these."""

    name: Name | Omittable = OMIT
    bookings_open: bool | Omittable = OMIT
    hold_seconds: HoldSeconds | Omittable = OMIT
    max_hold_seconds: MaxHoldSeconds | Omittable = OMIT
    max_holds_per_user: MaxHoldsPerUser | Omittable = OMIT
    address: Address | Omittable = OMIT
    description: Description | Omittable = OMIT
    locale: LocaleTag | Omittable = OMIT
    reminder_hours: ReminderHours | Omittable = OMIT
    max_waitlist: MaxWaitlist | Omittable = OMIT
    offer_seconds: OfferSeconds | Omittable = OMIT


class SeatHoldInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/events/{eid}/holds: named ``seats`` or the best ``count``."""

    user_id: UserId
    seats: Annotated[list[UnitId], msgspec.Meta(min_length=1, max_length=1000)] | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    section: MapId | None = None
    together: bool | None = None


Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
BusinessNotes = Annotated[str, msgspec.Meta(max_length=2000)]
STAFF_FIELDS = ("business_notes", "tags", "status")


class ReservationPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of PATCH /v1/reservations/{reference}: contact fields, a move, staff fields."""

    name: Name | Omittable = OMIT
    phone: Phone | Omittable = OMIT
    email: Email | Omittable | None = OMIT
    notes: Notes | Omittable | None = OMIT
    party_size: PartySize | Omittable = OMIT
    slot: SlotId | Omittable = OMIT
    table_id: UnitId | Omittable = OMIT
    business_notes: BusinessNotes | Omittable | None = OMIT
    tags: Annotated[list[Tag], msgspec.Meta(max_length=10)] | Omittable = OMIT
    status: Literal["confirmed", "seated", "completed", "no_show"] | Omittable = OMIT


class StaffBookingInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/restaurants/{rid}/reservations: a booking taken by staff."""

    slot: SlotId
    party_size: PartySize
    name: Name
    phone: Phone
    table_id: UnitId | None = None
    email: Email | None = None
    notes: Notes | None = None
    business_notes: BusinessNotes | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=10)] | None = None


class Cell(msgspec.Struct):
    """One unit in one slot."""

    slot: str
    unit: str


class Change(msgspec.Struct, kw_only=True):
    """One entry of a venue's feed."""

    id: str
    event: str
    at: str
    user_id: str | None
    hold_id: str | None
    reference: str | None
    cells: list[Cell]
    # Who made it: None for guests and expiries, "admin", or the staff token's id.
    actor: str | None = None
    # The reservation's new status, on a `changed` entry that set one (else absent).
    status: str | Omittable = OMIT
    # The waitlist entry of an 'offered', 'waitlisted' or 'waitlist_left' entry.
    waitlist_id: str | Omittable = OMIT


class ChangePage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One page of the feed for polling clients; ``reset`` when ``since`` fell out of it."""

    changes: list[Change]
    last_id: str | None
    reset: bool = False


class StaffTokenInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST …/staff-tokens."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    role: Literal["host", "manager"]


class StaffTokenView(msgspec.Struct, kw_only=True):
    """A staff token as listed: never the token itself."""

    id: str
    name: str
    role: str
    created_at: str
    last_used_at: str | None


class StaffTokenCreated(msgspec.Struct, kw_only=True):
    """A new staff token: ``token`` appears only in this answer."""

    id: str
    name: str
    role: str
    token: str
    created_at: str


SectionId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{1,16}$(?!\n)")]


class WaitlistInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/restaurants/{rid}/waitlist."""

    user_id: UserId
    slot: SlotId
    party_size: PartySize
    name: Name
    phone: Phone
    email: Email | None = None


class EventWaitlistInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/events/{eid}/waitlist."""

    user_id: UserId
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    name: Name
    phone: Phone
    section: SectionId | None = None
    email: Email | None = None


class WaitlistEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A waitlist entry; ``token`` only in the answer that created it, ``hold`` (with its
    token) while it is offered, for the entry's bearer."""

    id: str
    status: str
    position: int | None
    created_at: str
    user_id: str
    slot: str
    name: str
    phone: str
    email: str | None
    party_size: int | Omittable = OMIT
    count: int | Omittable = OMIT
    section: str | Omittable | None = OMIT
    hold: Hold | Omittable = OMIT
    hold_id: str | Omittable = OMIT
    token: str | Omittable = OMIT


class WaitlistEntryList(msgspec.Struct):
    """The staff list of a slot's or event's waitlist: waiting and offered, oldest first."""

    entries: list[WaitlistEntry]

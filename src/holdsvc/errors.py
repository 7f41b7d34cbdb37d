"""The one table of codes: every problem the API answers and every status a script returns.

``Problem`` declares each stable API code once: its HTTP status, its title and the sentence a
guest reads. ``Status`` declares each Lua result code once: its number (the scripts' headers
list the same; tests/test_codes.py checks them), the problem it becomes and its detail.
Everything else is derived from these two tables: the exception of each problem, the problem
descriptions in OpenAPI, the messages the pages show (also served to their JavaScript), and
``raise_for_status``, the only place where script codes become exceptions.
"""

from __future__ import annotations

import json
import math
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from holdsvc.replication import Replication


class Problem(Enum):
    """The stable ``code`` of every problem+json answer: (HTTP status, title, guest sentence)."""

    VALIDATION_ERROR = (
        400,
        "The request is not valid",
        "Some details are not valid. Please check them and try again.",
    )
    UNAUTHORIZED = (
        401,
        "A valid admin token is required",
        "The admin token was not accepted. Please sign in again.",
    )
    FORBIDDEN = (
        403,
        "The token does not grant this",
        "This link is not valid: its token is wrong or missing.",
    )
    NOT_FOUND = (
        404,
        "Not found",
        "We could not find that. It may have been removed, or the link is wrong.",
    )
    UNIT_UNAVAILABLE = (
        409,
        "The unit is held or reserved by someone else",
        "Sorry, that was just taken by someone else.",
    )
    NO_TABLE_AVAILABLE = (
        409,
        "No free table fits the party in that slot",
        "Sorry, that time was just taken: no free table for your party is left.",
    )
    NOT_ENOUGH_SEATS = (
        409,
        "Not enough free seats",
        "Sorry, there are not enough free seats left for that.",
    )
    NOT_ENOUGH_TOGETHER = (
        409,
        "Enough free seats, but no block of that many together in one row",
        "Sorry, there are not that many free seats together in one row any more. Try fewer "
        "seats, or allow seats apart.",
    )
    HOLD_LIMIT_REACHED = (
        409,
        "Too many live held units for this user",
        "You are already holding as many places as we allow at once. Finish or cancel your "
        "other booking first, or wait a few minutes for those holds to lapse.",
    )
    BOOKINGS_PAUSED = (
        409,
        "The venue does not accept new holds right now",
        "Online booking is paused right now. Please try again later.",
    )
    SLOT_IN_PAST = (
        409,
        "The slot has already started",
        "That time has already started. Please pick a later one.",
    )
    OUTSIDE_BOOKING_WINDOW = (
        409,
        "The slot is outside the booking window",
        "That time is outside the booking window: it is either too soon or too far ahead.",
    )
    RESERVATION_CANCELLED = (
        409,
        "The reservation is cancelled",
        "This reservation is cancelled, so it can no longer be changed.",
    )
    HOLD_LIFETIME_EXCEEDED = (
        409,
        "The hold has reached its maximum lifetime",
        "We cannot hold this any longer.",
    )
    NOT_STARTED = (
        409,
        "The reservation has not started yet",
        "This booking has not started yet, so it cannot be marked as a no-show.",
    )
    TABLE_IN_USE = (
        409,
        "The table has bookings that have not ended",
        "This table still has bookings that have not ended: move or cancel them first.",
    )
    COVERS_LIMIT_REACHED = (
        409,
        "The slot's covers limit would be exceeded",
        "Sorry, the kitchen cannot take more guests starting at that time. Please pick another.",
    )
    OVERLAPPING_BOOKING = (
        409,
        "The guest already has a booking overlapping that time",
        "You already have a booking at that time. One booking per guest, please.",
    )
    ALREADY_WAITING = (
        409,
        "The user already has a live waitlist entry for that slot or event",
        "You are already on the waitlist for this.",
    )
    WAITLIST_FULL = (
        409,
        "The waitlist is full",
        "Sorry, the waitlist for this is full.",
    )
    HOLD_EXPIRED = (
        410,
        "The hold is no longer live",
        "Your hold has lapsed, so the place was released for others.",
    )
    UNSUPPORTED_MEDIA_TYPE = (
        415,
        "The body must be application/json",
        "Your browser sent this in a form we do not accept. Please reload the page and try again.",
    )
    RATE_LIMITED = (
        429,
        "Too many requests",
        "Too many requests. Please wait a moment and try again.",
    )
    INTERNAL_ERROR = (
        500,
        "Internal error",
        "Something went wrong on our side. Please try again.",
    )
    UNAVAILABLE = (
        503,
        "The service is unavailable right now",
        "The booking service is unavailable right now. Please try again shortly.",
    )

    def __init__(self, status: int, title: str, message: str) -> None:
        self.status = status
        self.title = title
        self.message = message

    @property
    def code(self) -> str:
        """The stable code clients match on (``unit_unavailable``)."""
        return self.name.lower()


class Status(IntEnum):
    """Integer status codes returned by the Lua scripts: number, problem, detail.

    The detail may name the reply's extra values (``{0}`` is the first after "now").
    ``retry_at`` is the index of an extra holding the epoch ms a blocking hold lapses (-1:
    never); ``retry_in_us`` the index of one holding microseconds to wait. A status with no
    problem is a success (or, in ``_SIGNALS``, an internal signal the service handles).
    """

    problem: Problem | None
    detail: str
    retry_at: int | None
    retry_in_us: int | None

    OK = 0, None
    REPLAYED = 1, None
    VENUE_NOT_FOUND = 10, Problem.NOT_FOUND, "No such venue"
    SLOT_NOT_FOUND = 11, Problem.NOT_FOUND, "No such slot in this venue's grid"
    UNIT_NOT_FOUND = 12, Problem.NOT_FOUND, "No such unit: {0}"
    HOLD_NOT_FOUND = 13, Problem.NOT_FOUND, "No such hold"
    RESERVATION_NOT_FOUND = 14, Problem.NOT_FOUND, "No such reservation"
    SECTION_NOT_FOUND = 19, Problem.NOT_FOUND, "No such section in this event's map"
    FORBIDDEN = 20, Problem.FORBIDDEN, "The token does not allow this change"
    UNIT_UNAVAILABLE = (
        30,
        Problem.UNIT_UNAVAILABLE,
        "{0} is held or reserved by someone else",
        1,
    )
    NO_TABLE_AVAILABLE = 31, Problem.NO_TABLE_AVAILABLE, "", 0
    NOT_ENOUGH_SEATS = 32, Problem.NOT_ENOUGH_SEATS, "", 0
    HOLD_LIMIT_REACHED = (
        33,
        Problem.HOLD_LIMIT_REACHED,
        "The user holds {0} units; the limit is {1}",
    )
    BOOKINGS_PAUSED = 34, Problem.BOOKINGS_PAUSED
    SLOT_IN_PAST = 35, Problem.SLOT_IN_PAST
    OUTSIDE_BOOKING_WINDOW = 36, Problem.OUTSIDE_BOOKING_WINDOW
    RESERVATION_CANCELLED = 37, Problem.RESERVATION_CANCELLED
    HOLD_LIFETIME_EXCEEDED = 38, Problem.HOLD_LIFETIME_EXCEEDED
    HOLD_EXPIRED = 40, Problem.HOLD_EXPIRED
    NOT_STARTED = 43, Problem.NOT_STARTED, "A no-show is marked only once the booking started"
    TABLE_IN_USE = (
        44,
        Problem.TABLE_IN_USE,
        "{0} has bookings or holds that have not ended: {1}",
    )
    NOT_ENOUGH_TOGETHER = 46, Problem.NOT_ENOUGH_TOGETHER, "", 0
    HOLD_CONFIRMED = 41, Problem.HOLD_EXPIRED, "The hold was confirmed as reservation {0}"
    COVERS_LIMIT_REACHED = (
        47,
        Problem.COVERS_LIMIT_REACHED,
        "{0} covers already start in this slot; the limit is {1}",
    )
    OVERLAPPING_BOOKING = 48, Problem.OVERLAPPING_BOOKING
    IDEMPOTENCY_MISMATCH = (
        50,
        Problem.VALIDATION_ERROR,
        "This Idempotency-Key was used with a different request body",
    )
    REFERENCE_TAKEN = 51, None
    NEEDS_SWEEP = 52, None
    NOT_EXPIRED = 53, None
    STALE = 54, None
    UNIT_REPEATED = 55, Problem.VALIDATION_ERROR, "{0} is named more than once"
    LEASE_LOST = 56, None
    WAITLIST_KEYS = 57, None
    ALREADY_WAITING = 70, Problem.ALREADY_WAITING, "The user already waits as entry {0}"
    WAITLIST_FULL = 71, Problem.WAITLIST_FULL, "{0} entries wait already: the limit"
    WAITLIST_ENTRY_NOT_FOUND = 72, Problem.NOT_FOUND, "No such waitlist entry"
    RATE_LIMITED = (
        60,
        Problem.RATE_LIMITED,
        "Too many requests from this client; slow down",
        None,
        0,
    )

    def __new__(
        cls,
        value: int,
        problem: Problem | None = None,
        detail: str = "",
        retry_at: int | None = None,
        retry_in_us: int | None = None,
    ) -> Status:
        member = int.__new__(cls, value)
        member._value_ = value
        member.problem = problem
        member.detail = detail
        member.retry_at = retry_at
        member.retry_in_us = retry_in_us
        return member


class HoldsvcError(Exception):
    """Base of every error the service raises on purpose; its ``problem`` gives the stable
    API code, HTTP status and title (one subclass per problem, registered by problem)."""

    problem: ClassVar[Problem] = Problem.INTERNAL_ERROR
    by_problem: ClassVar[dict[Problem, type[HoldsvcError]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # The first class declared for a problem is the one raise_for_status raises.
        HoldsvcError.by_problem.setdefault(cls.problem, cls)

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        """The stable API code."""
        return self.problem.code

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        return self.problem.status

    @property
    def title(self) -> str:
        """The problem's title."""
        return self.problem.title


HoldsvcError.by_problem[Problem.INTERNAL_ERROR] = HoldsvcError


class ValidationFailed(HoldsvcError):
    problem = Problem.VALIDATION_ERROR


class Unauthorized(HoldsvcError):
    problem = Problem.UNAUTHORIZED


class Forbidden(HoldsvcError):
    problem = Problem.FORBIDDEN


class NotFound(HoldsvcError):
    problem = Problem.NOT_FOUND


class UnitUnavailable(HoldsvcError):
    problem = Problem.UNIT_UNAVAILABLE


class NoTableAvailable(HoldsvcError):
    problem = Problem.NO_TABLE_AVAILABLE


class NotEnoughSeats(HoldsvcError):
    problem = Problem.NOT_ENOUGH_SEATS


class NotEnoughTogether(HoldsvcError):
    problem = Problem.NOT_ENOUGH_TOGETHER


class HoldLimitReached(HoldsvcError):
    problem = Problem.HOLD_LIMIT_REACHED


class BookingsPaused(HoldsvcError):
    problem = Problem.BOOKINGS_PAUSED


class SlotInPast(HoldsvcError):
    problem = Problem.SLOT_IN_PAST


class OutsideBookingWindow(HoldsvcError):
    problem = Problem.OUTSIDE_BOOKING_WINDOW


class ReservationCancelled(HoldsvcError):
    problem = Problem.RESERVATION_CANCELLED


class HoldLifetimeExceeded(HoldsvcError):
    problem = Problem.HOLD_LIFETIME_EXCEEDED


class NotStarted(HoldsvcError):
    problem = Problem.NOT_STARTED


class TableInUse(HoldsvcError):
    problem = Problem.TABLE_IN_USE


class CoversLimitReached(HoldsvcError):
    problem = Problem.COVERS_LIMIT_REACHED


class OverlappingBooking(HoldsvcError):
    problem = Problem.OVERLAPPING_BOOKING


class AlreadyWaiting(HoldsvcError):
    problem = Problem.ALREADY_WAITING


class WaitlistFull(HoldsvcError):
    problem = Problem.WAITLIST_FULL


class HoldExpired(HoldsvcError):
    problem = Problem.HOLD_EXPIRED


class UnsupportedMediaType(HoldsvcError):
    problem = Problem.UNSUPPORTED_MEDIA_TYPE


class RateLimited(HoldsvcError):
    problem = Problem.RATE_LIMITED


class Unavailable(HoldsvcError):
    problem = Problem.UNAVAILABLE


class NotReplicated(Unavailable):
    """A confirm, cancel or staff booking was written on the primary, but fewer replicas than
    ``confirm_wait_replicas`` acknowledged it in time (WAIT): it may not survive a failover.
    Carries the reservation's reference so the client can check it later."""

    def __init__(
        self, reference: str, replication: Replication, manage_token: str | None = None
    ) -> None:
        super().__init__(
            f"Reservation {reference} was written, but {replication.acknowledged} of the "
            f"{replication.wanted} replicas asked for acknowledged it in time: check it "
            f"(GET /v1/reservations/{reference}, or the same confirm again) before retrying",
            retry_after=1,
        )
        self.reference = reference
        self.replication = replication
        # A new reservation's only copy of its manage token: without it here the guest
        # could never manage it (a repeated confirm does not hand the token out again).
        self.manage_token = manage_token

    @property
    def title(self) -> str:
        """Says what happened rather than the generic outage."""
        return "The change was not acknowledged by enough replicas"


class ReferenceTaken(Exception):
    """Internal: the random reference collided; the service picks another and retries."""


class NeedsSweep(Exception):
    """Internal: lapsed holds sit on the cells asked for; sweep them, then retry."""

    def __init__(self, hold_ids: list[str]) -> None:
        super().__init__(f"lapsed holds to sweep first: {hold_ids}")
        self.hold_ids = hold_ids


class Stale(Exception):
    """Internal: the record changed between the read that built the keys and the script."""


class WaitlistKeysNeeded(Exception):
    """Internal: waiting entries the step's freed cells may fit need waitlist keys the call
    did not pass (lua/include/waitlist_offer.lua); nothing changed. Call again with them."""

    def __init__(self, slots: list[str], cells: list[str]) -> None:
        super().__init__(f"waitlist keys needed: slots {slots}, cells {cells}")
        self.slots = slots
        self.cells = cells


class LeaseLost(Exception):
    """Internal: a feed consumer's lease passed to another worker; this one must stop."""


class UnknownStatus(RuntimeError):
    """A script answered a code this version does not know: a bug, never hidden."""


def _as_int(value: object) -> int:
    return int(value) if isinstance(value, int | bytes | str) else 0


def _as_str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _signal(status: Status, extra: list[object]) -> Exception | None:
    """The internal exception of a status the service handles itself, if it is one."""
    if status is Status.REFERENCE_TAKEN:
        return ReferenceTaken()
    if status is Status.NEEDS_SWEEP:
        return NeedsSweep([_as_str(hold_id) for hold_id in extra])
    if status is Status.STALE:
        return Stale()
    if status is Status.LEASE_LOST:
        return LeaseLost()
    if status is Status.WAITLIST_KEYS:
        # Lua's cjson writes an empty list as {}: either way, no ids.
        slots, cells = (json.loads(_as_str(listed)) or [] for listed in extra[:2])
        return WaitlistKeysNeeded(list(slots), list(cells))
    return None


def _retry_after(status: Status, extra: list[object], now_ms: int) -> int | None:
    if status.retry_in_us is not None:
        return max(1, math.ceil(_as_int(extra[status.retry_in_us]) / 1_000_000))
    if status.retry_at is None:
        return None
    expires = _as_int(extra[status.retry_at])
    if expires < 0:
        return None
    return max(1, math.ceil((expires - now_ms) / 1000))


def error_for(status: Status, extra: list[object], now_ms: int) -> Exception:
    """The exception a refusing status becomes, with its detail and retry_after."""
    if status.problem is None:
        signal = _signal(status, extra)
        if signal is None:
            raise UnknownStatus(f"script status {status!r} is not an error")
        return signal
    detail = status.detail.format(*(_as_str(value) for value in extra)) or None
    make = HoldsvcError.by_problem.get(status.problem, HoldsvcError)
    return make(detail, retry_after=_retry_after(status, extra, now_ms))


_QUIET = frozenset({Status.OK, Status.REPLAYED, Status.NOT_EXPIRED})
_BY_VALUE = {status.value: status for status in Status}  # a dict lookup, cheaper than Status(n)


def raise_for_status(reply: list[object]) -> None:
    """Turn a script's error status into its exception; return quietly on OK and REPLAYED.

    This is the only place where script codes become exceptions.

    Raises:
        HoldsvcError: the API error the code stands for.
        NeedsSweep, ReferenceTaken, Stale: internal signals the service handles.
        UnknownStatus: a code this version does not know.
    """
    raw = _as_int(reply[0])
    status = _BY_VALUE.get(raw)
    if status is None:
        raise UnknownStatus(f"script answered unknown status {raw}: {reply!r}")
    if status in _QUIET:
        return
    raise error_for(status, reply[2:], _as_int(reply[1]))

"""Script status codes, the exception tree, and the one place codes become exceptions."""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from holdsvc.replication import Replication


class Status(IntEnum):
    """Integer status codes returned by the Lua scripts (mirrors the script headers)."""

    OK = 0
    REPLAYED = 1
    VENUE_NOT_FOUND = 10
    SLOT_NOT_FOUND = 11
    UNIT_NOT_FOUND = 12
    HOLD_NOT_FOUND = 13
    RESERVATION_NOT_FOUND = 14
    FORBIDDEN = 20
    UNIT_UNAVAILABLE = 30
    NO_TABLE_AVAILABLE = 31
    NOT_ENOUGH_SEATS = 32
    HOLD_LIMIT_REACHED = 33
    BOOKINGS_PAUSED = 34
    SLOT_IN_PAST = 35
    OUTSIDE_BOOKING_WINDOW = 36
    RESERVATION_CANCELLED = 37
    HOLD_LIFETIME_EXCEEDED = 38
    HOLD_EXPIRED = 40
    HOLD_CONFIRMED = 41
    IDEMPOTENCY_MISMATCH = 50
    REFERENCE_TAKEN = 51
    NEEDS_SWEEP = 52
    NOT_EXPIRED = 53
    STALE = 54
    RATE_LIMITED = 60


class HoldsvcError(Exception):
    """Base of every error the service raises on purpose; carries its stable API code."""

    code = "internal_error"
    status_code = 500
    title = "Internal error"

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.retry_after = retry_after


class ValidationFailed(HoldsvcError):
    code, status_code, title = "validation_error", 400, "The request is not valid"


class Unauthorized(HoldsvcError):
    code, status_code, title = "unauthorized", 401, "A valid admin token is required"


class Forbidden(HoldsvcError):
    code, status_code, title = "forbidden", 403, "The token does not grant this"


class NotFound(HoldsvcError):
    code, status_code, title = "not_found", 404, "Not found"


class Conflict(HoldsvcError):
    status_code = 409


class UnitUnavailable(Conflict):
    code, title = "unit_unavailable", "The unit is held or reserved by someone else"


class NoTableAvailable(Conflict):
    code, title = "no_table_available", "No free table fits the party in that slot"


class NotEnoughSeats(Conflict):
    code, title = "not_enough_seats", "Not enough free seats"


class HoldLimitReached(Conflict):
    code, title = "hold_limit_reached", "Too many live held units for this user"


class BookingsPaused(Conflict):
    code, title = "bookings_paused", "The venue does not accept new holds right now"


class SlotInPast(Conflict):
    code, title = "slot_in_past", "The slot has already started"


class OutsideBookingWindow(Conflict):
    code, title = "outside_booking_window", "The slot is outside the booking window"


class ReservationCancelled(Conflict):
    code, title = "reservation_cancelled", "The reservation is cancelled"


class HoldLifetimeExceeded(Conflict):
    code, title = "hold_lifetime_exceeded", "The hold has reached its maximum lifetime"


class HoldExpired(HoldsvcError):
    code, status_code, title = "hold_expired", 410, "The hold is no longer live"


class RateLimited(HoldsvcError):
    code, status_code, title = "rate_limited", 429, "Too many requests"


class Unavailable(HoldsvcError):
    code, status_code, title = "unavailable", 503, "The service is unavailable right now"


class NotReplicated(Unavailable):
    """A confirm, cancel or staff booking was written on the primary, but fewer replicas than
    ``confirm_wait_replicas`` acknowledged it in time (WAIT): it may not survive a failover.
    Carries the reservation's reference so the client can check it later."""

    title = "The change was not acknowledged by enough replicas"

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


class ReferenceTaken(Exception):
    """Internal: the random reference collided; the service picks another and retries."""


class NeedsSweep(Exception):
    """Internal: lapsed holds sit on the cells asked for; sweep them, then retry."""

    def __init__(self, hold_ids: list[str]) -> None:
        super().__init__(f"lapsed holds to sweep first: {hold_ids}")
        self.hold_ids = hold_ids


class Stale(Exception):
    """Internal: the record changed between the read that built the keys and the script."""


class UnknownStatus(RuntimeError):
    """A script answered a code this version does not know: a bug, never hidden."""


def _retry_after(expires_ms: object, now_ms: int) -> int | None:
    expires = _as_int(expires_ms)
    if expires < 0:
        return None
    return max(1, math.ceil((expires - now_ms) / 1000))


def _as_int(value: object) -> int:
    return int(value) if isinstance(value, int | bytes | str) else 0


def _as_str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


Extra = list[object]
# Each error status and the exception it becomes, given the reply's extra data and Redis now.
_ERRORS: dict[Status, Callable[[Extra, int], Exception]] = {
    Status.VENUE_NOT_FOUND: lambda _, __: NotFound("No such venue"),
    Status.SLOT_NOT_FOUND: lambda _, __: NotFound("No such slot in this venue's grid"),
    Status.UNIT_NOT_FOUND: lambda extra, _: NotFound(f"No such unit: {_as_str(extra[0])}"),
    Status.HOLD_NOT_FOUND: lambda _, __: NotFound("No such hold"),
    Status.RESERVATION_NOT_FOUND: lambda _, __: NotFound("No such reservation"),
    Status.FORBIDDEN: lambda _, __: Forbidden("The token does not allow this change"),
    Status.UNIT_UNAVAILABLE: lambda extra, now: UnitUnavailable(
        f"{_as_str(extra[0])} is held or reserved by someone else",
        retry_after=_retry_after(extra[1], now),
    ),
    Status.NO_TABLE_AVAILABLE: lambda extra, now: NoTableAvailable(
        retry_after=_retry_after(extra[0], now)
    ),
    Status.NOT_ENOUGH_SEATS: lambda extra, now: NotEnoughSeats(
        retry_after=_retry_after(extra[0], now)
    ),
    Status.HOLD_LIMIT_REACHED: lambda extra, _: HoldLimitReached(
        f"The user holds {_as_int(extra[0])} units; the limit is {_as_int(extra[1])}"
    ),
    Status.BOOKINGS_PAUSED: lambda _, __: BookingsPaused(),
    Status.SLOT_IN_PAST: lambda _, __: SlotInPast(),
    Status.OUTSIDE_BOOKING_WINDOW: lambda _, __: OutsideBookingWindow(),
    Status.RESERVATION_CANCELLED: lambda _, __: ReservationCancelled(),
    Status.HOLD_LIFETIME_EXCEEDED: lambda _, __: HoldLifetimeExceeded(),
    Status.HOLD_EXPIRED: lambda _, __: HoldExpired(),
    Status.HOLD_CONFIRMED: lambda extra, _: HoldExpired(
        f"The hold was confirmed as reservation {_as_str(extra[0])}"
    ),
    Status.IDEMPOTENCY_MISMATCH: lambda _, __: ValidationFailed(
        "This Idempotency-Key was used with a different request body"
    ),
    Status.REFERENCE_TAKEN: lambda _, __: ReferenceTaken(),
    Status.NEEDS_SWEEP: lambda extra, _: NeedsSweep([_as_str(hold_id) for hold_id in extra]),
    Status.STALE: lambda _, __: Stale(),
    Status.RATE_LIMITED: lambda extra, _: RateLimited(
        "Too many requests from this client; slow down",
        retry_after=max(1, math.ceil(_as_int(extra[0]) / 1_000_000)),
    ),
}
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
    make = _ERRORS.get(status)
    if make is None:
        raise UnknownStatus(f"script status {status!r} has no mapping")
    raise make(reply[2:], _as_int(reply[1]))

"""Response envelopes of the HTTP API (the items themselves are in holdsvc.models)."""

from __future__ import annotations

import msgspec
from litestar.openapi.datastructures import ResponseSpec

from holdsvc.models import (
    AvailableSlot,
    Event,
    Reservation,
    Restaurant,
    SeatStatus,
    SlotView,
    Table,
)


class RestaurantList(msgspec.Struct):
    """``{"restaurants": [...]}``."""

    restaurants: list[Restaurant]


class TableList(msgspec.Struct):
    """``{"tables": [...]}``."""

    tables: list[Table]


class SlotList(msgspec.Struct):
    """``{"slots": [...]}``."""

    slots: list[SlotView]


class AvailableSlotList(msgspec.Struct):
    """``{"slots": [...]}`` of bookable slots."""

    slots: list[AvailableSlot]


class SlotsCreated(msgspec.Struct):
    """How many slots a grid request created, and how many the venue has now."""

    created: int
    total: int


class ReservationList(msgspec.Struct):
    """``{"reservations": [...]}``."""

    reservations: list[Reservation]


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``application/problem+json``: every error, with a stable ``code``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    retry_after: int | None = None
    errors: list[dict[str, str]] | None = None
    # A 503 for a confirm, cancel or staff booking that was written but not acknowledged by
    # enough replicas (HOLDSVC_CONFIRM_WAIT_REPLICAS): the reservation to check.
    reference: str | None = None
    manage_token: str | None = None


PROBLEM_DESCRIPTIONS = {
    400: "validation_error: a body, path or query value is malformed or out of range",
    401: "unauthorized: admin endpoint without a valid admin token",
    403: "forbidden: wrong Hold-Token / Manage-Token",
    404: "not_found: unknown venue, slot, unit, hold or reservation",
    409: "a conflict: unit_unavailable, no_table_available, not_enough_seats, hold_limit_reached, "
    "bookings_paused, slot_in_past, reservation_cancelled, hold_lifetime_exceeded, "
    "outside_booking_window (409s for a held cell carry retry_after and Retry-After)",
    410: "hold_expired: the hold has lapsed, was released, or was already confirmed",
    429: "rate_limited: too many requests",
    503: "unavailable: Redis is unreachable, or a confirm/cancel was not acknowledged by "
    "enough replicas in time (then `reference` names the reservation to check)",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses a route can give (503 always)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type="application/problem+json",
            description=PROBLEM_DESCRIPTIONS[status],
        )
        for status in (*statuses, 503)
    }


class EventList(msgspec.Struct):
    """``{"events": [...]}``."""

    events: list[Event]


class SeatList(msgspec.Struct):
    """``{"seats": [...]}``."""

    seats: list[SeatStatus]

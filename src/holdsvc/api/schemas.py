"""Response envelopes of the HTTP API (the items themselves are in holdsvc.models)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Literal

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from holdsvc import errors
from holdsvc.models import (
    AvailableSlot,
    Event,
    Reservation,
    Restaurant,
    SeatStatus,
    SectionView,
    SlotView,
    StaffTokenView,
    Table,
)

# Pages (holdsvc.paging): a list that can grow without bound answers one page at a time;
# ``next_cursor`` (absent on the last page) is passed back as ``cursor`` for the next one.
PageLimit = Annotated[
    int | None,
    QueryParameter(
        name="limit",
        ge=1,
        le=100_000,
        description="Items per page: at most the server's page size (HOLDSVC_PAGE_SIZE, "
        "also the default)",
    ),
]
PageCursor = Annotated[
    str | None,
    QueryParameter(
        name="cursor",
        min_length=1,
        max_length=200,
        description="The next_cursor of the page before (absent: the first page)",
    ),
]


class RestaurantList(msgspec.Struct, omit_defaults=True):
    """``{"restaurants": [...]}``."""

    restaurants: list[Restaurant]
    next_cursor: str | None = None


class TableList(msgspec.Struct):
    """``{"tables": [...]}``."""

    tables: list[Table]


class SlotList(msgspec.Struct, omit_defaults=True):
    """``{"slots": [...]}``."""

    slots: list[SlotView]
    next_cursor: str | None = None


class AvailableSlotList(msgspec.Struct, omit_defaults=True):
    """``{"slots": [...]}`` of bookable slots; ``next_available``: when the range has none,
    the first later date (within ``max_days_ahead``) that has one, else null;
    ``max_party_size``: the largest party one table of the venue seats."""

    slots: list[AvailableSlot]
    next_available: str | None
    max_party_size: int
    next_cursor: str | None = None


class SlotsCreated(msgspec.Struct):
    """How many slots a grid request created, and how many the venue has now."""

    created: int
    total: int


class ReservationList(msgspec.Struct, omit_defaults=True):
    """``{"reservations": [...]}``."""

    reservations: list[Reservation]
    next_cursor: str | None = None


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


# What each problem status means, derived from the table of codes (holdsvc.errors.Problem).
RETRY_NOTES = {
    409: " (409s for a held cell carry retry_after and Retry-After)",
    503: " (or a confirm/cancel not acknowledged by enough replicas in time: then `reference` "
    "names the reservation to check)",
}


def problem_description(status: int) -> str:
    """The OpenAPI description of one problem status: each code it may carry, and when (the
    HTTP reason phrase for a status the table has no code for yet)."""
    codes = [f"{p.code} ({p.title})" for p in errors.Problem if p.status == status]
    return ("; ".join(codes) or HTTPStatus(status).phrase) + RETRY_NOTES.get(status, "")


def problem_response(status: int) -> ResponseSpec:
    """The OpenAPI entry of one problem status: the Problem schema, described from the table
    of codes, with no generated examples."""
    return ResponseSpec(
        data_container=Problem,
        generate_examples=False,
        media_type="application/problem+json",
        description=problem_description(status),
    )


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses a route can give (503 always). What follows
    from the route's declaration (its guards, body, tokens, path) is added by api/openapi.py."""
    return {status: problem_response(status) for status in (*statuses, 503)}


def replayed(model: type[msgspec.Struct], description: str) -> dict[int, ResponseSpec]:
    """The 200 of a route that answers 201 when it creates and 200 when a retry replays it."""
    spec = ResponseSpec(data_container=model, generate_examples=False, description=description)
    return {200: spec}


class EventList(msgspec.Struct, omit_defaults=True):
    """``{"events": [...]}``."""

    events: list[Event]
    next_cursor: str | None = None


class SeatList(msgspec.Struct, omit_defaults=True):
    """``{"seats": [...]}``."""

    seats: list[SeatStatus]
    next_cursor: str | None = None


class SectionList(msgspec.Struct):
    """``{"sections": [...]}``: a seat map's sections in map order, rows with their free seats."""

    sections: list[SectionView]


class StaffTokenList(msgspec.Struct):
    """``{"staff_tokens": [...]}``."""

    staff_tokens: list[StaffTokenView]


class Me(msgspec.Struct, kw_only=True):
    """``GET /v1/me``: who the bearer token is."""

    role: str  # admin, manager or host
    actor: str  # what the feed names: "admin" or the staff token's id
    venue_id: str | None = None
    name: str | None = None


class Ready(msgspec.Struct, kw_only=True):
    """``GET /ready`` when Redis answers and the scripts are loaded."""

    status: Literal["ready"]

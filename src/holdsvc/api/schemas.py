"""Response envelopes of the HTTP API (the items themselves are in holdsvc.models)."""

from __future__ import annotations

import msgspec

from holdsvc.models import AvailableSlot, Reservation, Restaurant, SlotView, Table


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

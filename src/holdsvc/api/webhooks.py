"""Webhook routes: a venue's (its managers') under ``/v1/restaurants/{rid}/webhooks`` and
``/v1/events/{eid}/webhooks``, and the admin's every-venue ones under ``/v1/webhooks``; one
implementation for the three (``webhook_router``)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import msgspec
from litestar import Router, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from litestar.types import Guard

from holdsvc import slots as timegrid
from holdsvc.api.auth import admin_guard, staff_guard
from holdsvc.api.dto import StrictBody
from holdsvc.api.faces import Face
from holdsvc.api.schemas import problems
from holdsvc.services import Services
from holdsvc.staff import Role
from holdsvc.webhooks import Webhook


class WebhookInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST …/webhooks: where to send, which feed events (default all)."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    events: Annotated[list[str], msgspec.Meta(min_length=1, max_length=20)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class WebhookPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of PATCH …/webhooks/{id}: ``{"enabled": true}`` resumes a disabled one."""

    enabled: bool


class WebhookView(msgspec.Struct, kw_only=True):
    """A subscription as listed: never its secret."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    description: str | None
    venue_id: str | None
    created_at: str


class WebhookCreated(msgspec.Struct, kw_only=True):
    """A new subscription: ``secret`` appears only in this answer."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    venue_id: str | None
    secret: str
    created_at: str


class WebhookList(msgspec.Struct):
    """``{"webhooks": [...]}``."""

    webhooks: list[WebhookView]


class Delivery(msgspec.Struct, kw_only=True):
    """One try of one entry (or a ``reset``: entries trimmed before they were sent)."""

    webhook_id: str | None
    event: str
    attempt: int
    status_code: int | None
    error: str | None
    at: str
    venue_id: str | None = None


class DeliveryList(msgspec.Struct):
    """``{"deliveries": [...]}``, newest first."""

    deliveries: list[Delivery]


def view(hook: Webhook) -> WebhookView:
    """A subscription as listed."""
    return WebhookView(
        id=hook.id,
        url=hook.url,
        events=list(hook.events),
        enabled=hook.enabled,
        disabled_reason=hook.disabled_reason,
        description=hook.description,
        venue_id=hook.venue_id,
        created_at=timegrid.rfc3339(hook.created_ms, UTC),
    )


def webhook_router(face: Face | None) -> Router:
    """The webhook routes of one venue face (managers), or with None the admin's
    every-venue ones under ``/v1/webhooks``."""
    guards: list[Guard] = [admin_guard] if face is None else [staff_guard(Role.MANAGER)]

    def op(name: str) -> str:
        # "create_webhook" -> "createRestaurantWebhook" (or "createGlobalWebhook").
        verb, _, rest = name.partition("_")
        scope = "Global" if face is None else face.kind.value.capitalize()
        return verb + scope + "".join(word.capitalize() for word in rest.split("_"))

    @post(
        "/webhooks",
        guards=guards,
        dto=StrictBody[WebhookInput],
        return_dto=None,
        operation_id=op("create_webhook"),
        responses=problems(400, 401, 403, 404),
        tags=["webhooks"],
    )
    async def create_webhook(
        venue_id: NamedDependency[str | None],
        data: JSONBody[WebhookInput],
        services: NamedDependency[Services],
    ) -> WebhookCreated:
        """Subscribe a URL to the feed; ``secret`` is shown only in this answer."""
        hook = await services.webhooks.create(venue_id, data.url, data.events, data.description)
        shown = view(hook)
        return WebhookCreated(
            id=shown.id,
            url=shown.url,
            events=shown.events,
            enabled=shown.enabled,
            description=shown.description,
            venue_id=shown.venue_id,
            secret=hook.secret,
            created_at=shown.created_at,
        )

    @get(
        "/webhooks",
        guards=guards,
        operation_id=op("list_webhooks"),
        responses=problems(401, 403, 404),
        tags=["webhooks"],
    )
    async def list_webhooks(
        venue_id: NamedDependency[str | None], services: NamedDependency[Services]
    ) -> WebhookList:
        """The subscriptions, without their secrets."""
        return WebhookList([view(hook) for hook in await services.webhooks.listed(venue_id)])

    @patch(
        "/webhooks/{webhook_id:str}",
        guards=guards,
        dto=StrictBody[WebhookPatch],
        return_dto=None,
        operation_id=op("change_webhook"),
        responses=problems(400, 401, 403, 404),
        tags=["webhooks"],
    )
    async def change_webhook(
        venue_id: NamedDependency[str | None],
        webhook_id: FromPath[str],
        data: JSONBody[WebhookPatch],
        services: NamedDependency[Services],
    ) -> WebhookView:
        """Enable (resume after the entry given up) or disable a subscription."""
        return view(await services.webhooks.set_enabled(venue_id, webhook_id, data.enabled))

    @delete(
        "/webhooks/{webhook_id:str}",
        guards=guards,
        operation_id=op("delete_webhook"),
        responses=problems(401, 403, 404),
        tags=["webhooks"],
    )
    async def delete_webhook(
        venue_id: NamedDependency[str | None],
        webhook_id: FromPath[str],
        services: NamedDependency[Services],
    ) -> None:
        """Delete a subscription and its delivery log."""
        await services.webhooks.delete(venue_id, webhook_id)

    @get(
        "/webhooks/{webhook_id:str}/deliveries",
        guards=guards,
        operation_id=op("webhook_deliveries"),
        responses=problems(401, 403, 404),
        tags=["webhooks"],
    )
    async def deliveries(
        venue_id: NamedDependency[str | None],
        webhook_id: FromPath[str],
        services: NamedDependency[Services],
    ) -> DeliveryList:
        """The subscription's recent deliveries, newest first."""
        rows = await services.webhooks.deliveries(venue_id, webhook_id)
        return DeliveryList(msgspec.convert(rows, list[Delivery]))

    handlers = [create_webhook, list_webhooks, change_webhook, delete_webhook, deliveries]
    if face is None:
        return Router(
            path="/v1",
            route_handlers=handlers,
            dependencies={"venue_id": Provide(no_venue, sync_to_thread=False)},
        )
    return Router(path=face.base, route_handlers=handlers, dependencies={"venue_id": face.venue_id})


def no_venue() -> str | None:
    """The ``venue_id`` of the every-venue routes: none."""
    return None

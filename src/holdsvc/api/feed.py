"""The change feed of a venue, for staff: a live SSE stream, or one JSON page (the routes
are in api/venue.py, one per face)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from holdsvc.api.schemas import problems
from holdsvc.feed import Heartbeat, Reset
from holdsvc.models import ChangePage
from holdsvc.services import Services
from holdsvc.venues import VenueKind

LastEventId = Annotated[str | None, HeaderParameter(name="Last-Event-ID", max_length=41)]
Since = Annotated[
    str | None,
    QueryParameter(
        name="since", max_length=41, description="a feed entry id, or $ for from now on"
    ),
]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=1000)]
FEED_RESPONSES = {
    **problems(400, 401, 403, 404),
    200: ResponseSpec(
        data_container=ChangePage,
        description="text/event-stream of changes (event = held, refreshed, released, expired, "
        "confirmed, cancelled, changed, or reset), or with Accept: application/json one page",
    ),
}


def wants_json(request: Request[Any, Any, Any]) -> bool:
    """``Accept: application/json`` (and not event-stream) asks for one page."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/event-stream" not in accept


async def messages(
    services: NamedDependency[Services], venue_id: str, kind: VenueKind, since: str | None
) -> Response[Any]:
    """The stream response, after the request was checked (so errors are still problems)."""
    profile, position = await services.feed.reserve(venue_id, kind, since)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        async for item in services.feed.stream(profile, position):
            if isinstance(item, Heartbeat):
                yield ServerSentEventMessage(data=None, comment="keep-alive")
            elif isinstance(item, Reset):
                body = {
                    "reason": "the position fell out of the retained feed; reload",
                    "last_id": item.last_id,
                }
                yield ServerSentEventMessage(
                    data=msgspec.json.encode(body).decode(), event="reset", id=item.last_id
                )
            else:
                yield ServerSentEventMessage(
                    data=msgspec.json.encode(item).decode(), event=item.event, id=item.id
                )

    return ServerSentEvent(events(), retry_duration=2000)


async def changes(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    venue_id: str,
    kind: VenueKind,
    since: str | None,
    limit: int,
) -> Response[Any]:
    """Dispatch on Accept: a JSON page, or the live stream. A reconnecting EventSource sends
    Last-Event-ID, newer than the ``since`` of its URL, so the header wins."""
    position = since
    if wants_json(request):
        return Response(await services.feed.page(venue_id, kind, position, limit))
    return await messages(services, venue_id, kind, position)

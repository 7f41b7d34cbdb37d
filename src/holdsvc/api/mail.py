"""A guest's lost link and calendar entry: ``POST /v1/reservations/{ref}/resend`` and
``GET /manage/{ref}/calendar.ics?token=…``."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from holdsvc.api.schemas import problems
from holdsvc.identifiers import is_link_token, venue_of_reference
from holdsvc.mail import calendar
from holdsvc.services import Services


class MailController(Controller):
    """Resend the manage link; the reservation as an iCalendar event."""

    @post(
        "/v1/reservations/{reference:str}/resend",
        status_code=HTTP_202_ACCEPTED,
        operation_id="resend_manage_link",
        responses=problems(),
        tags=["reservations"],
    )
    async def resend(self, reference: FromPath[str], services: NamedDependency[Services]) -> None:
        """Mail the manage link again to the address on file: 202 whatever the reference
        (it reveals nothing), at most once a minute per reference."""
        await services.mailer.resend(reference, venue_of_reference(reference))

    @get(
        "/manage/{reference:str}/calendar.ics",
        operation_id="reservation_calendar",
        responses=problems(400, 403, 404),
        media_type="text/calendar",
        # A page's link like /manage/{reference}: pages stay out of the API document.
        include_in_schema=False,
    )
    async def calendar_file(
        self,
        reference: FromPath[str],
        services: NamedDependency[Services],
        token: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Response[bytes]:
        """The reservation as an iCalendar event, for the bearer of its manage token (or the
        token of its mailed link)."""
        reservations = services.reservations
        if is_link_token(services.mailer.secret_key, reference, token):
            reservation = await reservations.get(reference, admin=False, skip_auth=True)
        else:
            reservation = await reservations.get(reference, admin=False, manage_token=token)
        venue = await services.venues.load(reservation.venue_id)
        body = calendar(reservation, venue.fields.get("name", ""), venue.fields.get("address"))
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{reservation.reference}.ics"',
                "Cache-Control": "private, no-store",
            },
        )

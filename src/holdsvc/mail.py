"""Guest mail over SMTP: confirmation (with an ``.ics``), change and cancel notices, the manage
link again on request (no HTTP here).

The ``Mailer`` is the second consumer of the venues' change feeds (``feedwork``), beside the
webhook sender: one position per venue, named ``mail``. An entry is mailed, then the position
moves past it under the lease; a worker that dies before the move is replaced by one that
mails the entry again, so a mail goes out at least once, and twice only when a worker died
between handing it to the SMTP server and recording that.

The manage link in a mail carries a *link token*: a MAC of the reference under the service's
secret key (``HOLDSVC_SECRET_KEY``), so the mailer can write it without the manage token
(which Redis keeps only as a digest). The manage page, the API and the calendar accept it
like the manage token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

import aiosmtplib
from redis.exceptions import RedisClusterException, RedisError

from holdsvc.clock import redis_now_ms
from holdsvc.errors import HoldsvcError, LeaseLost
from holdsvc.feedwork import Done, Entry, Outcome, Retry, Target
from holdsvc.identifiers import link_token
from holdsvc.keys import REMINDERS, Keys
from holdsvc.metrics import Metrics
from holdsvc.models import Reservation
from holdsvc.reservations import Reservations
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.settings import Settings
from holdsvc.venues import VenueKind, Venues

log = logging.getLogger("holdsvc.mail")

NAME = "mail"  # the mailer's consumer name in every venue's feed
MAILED = {"confirmed": "confirmation", "changed": "change", "cancelled": "cancel"}
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
RESEND_LIMIT_SECONDS = 60  # one resend per reference per minute


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to hand mails over, from ``HOLDSVC_SMTP_URL``."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """``smtp://[user:password@]host:port`` (``smtps://``: TLS; ``?starttls=true``)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("HOLDSVC_SMTP_URL must be smtp://host:port or smtps://host:port")
        query = urllib.parse.parse_qs(parts.query)
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            use_tls=tls,
            start_tls=query.get("starttls", ["false"])[0].lower() == "true",
        )


def told(reservation: Reservation) -> str:
    """What a guest's mail says that matters to them: a change of anything else (staff
    notes, tags) mails nothing."""
    return "|".join(
        (
            reservation.status,
            reservation.starts_at,
            str(reservation.party_size),
            reservation.email or "",
        )
    )


def calendar(reservation: Reservation, venue_name: str, address: str | None) -> bytes:
    """The reservation as an iCalendar event (one VEVENT)."""
    # Imported on first use: it is a large package, and worker start-up is on every restart.
    import icalendar  # noqa: PLC0415

    cal = icalendar.Calendar()
    cal.add("prodid", "-//holdsvc//reservations//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"{reservation.reference}@holdsvc")
    event.add("summary", f"{venue_name}: party of {reservation.party_size}")
    event.add("dtstart", datetime.fromisoformat(reservation.starts_at))
    if reservation.ends_at:
        event.add("dtend", datetime.fromisoformat(reservation.ends_at))
    event.add("dtstamp", datetime.fromisoformat(reservation.created_at))
    event.add("description", f"Reference {reservation.reference}")
    if address:
        event.add("location", address)
    event.add("status", "CANCELLED" if reservation.status == "cancelled" else "CONFIRMED")
    cal.add_component(event)
    return bytes(cal.to_ical())


class Mailer:
    """The feed consumer that mails guests (see ``feedwork``), and the resend."""

    label = "mail"

    def __init__(
        self,
        redis: AnyRedis,
        keys: Keys,
        venues: Venues,
        reservations: Reservations,
        settings: Settings,
        metrics: Metrics,
        scripts: Scripts,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._venues = venues
        self._reservations = reservations
        self._metrics = metrics
        self._sender = settings.mail_from
        self._public_url = settings.public_url.rstrip("/")
        self.secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
        url = settings.smtp_url.get_secret_value() if settings.smtp_url else None
        self.smtp = SmtpTarget.parse(url) if url and settings.mail_from else None
        # One bound for every delivery off the request path, webhooks and mails alike.
        self._timeout = settings.webhook_timeout_seconds
        self.lease_ms = int(self._timeout * 1000) + 5_000
        self._since: str | None = None
        self._started_ms: int | None = None
        self._resends: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        """Whether SMTP is configured (else nothing is sent)."""
        return self.smtp is not None

    async def targets(self) -> list[Target]:
        """Every venue's feed (none without SMTP)."""
        if not self.enabled:
            return []
        found: list[Target] = []
        for kind in VenueKind:
            for venue_id in await self._redis.zrange(self._keys.venues(kind.value), 0, -1):
                found.append(Target(str(venue_id), NAME))
        return found

    async def begin(self) -> None:
        """Note when this worker started with mail on (before it serves a request)."""
        if self.enabled:
            self._started_ms = await redis_now_ms(self._redis)

    async def start(self, target: Target) -> str:
        """Entries since mail was first turned on for this Redis (older bookings get none)."""
        if self._since is None:
            started = self._started_ms or await redis_now_ms(self._redis)
            # The first worker to ask fixes the moment for every worker, now and later.
            await self._redis.set(self._keys.mail_since, started, nx=True)
            self._since = f"{await self._redis.get(self._keys.mail_since)}-0"
        return self._since

    def wants(self, target: Target, fields: dict[str, str]) -> bool:
        """Confirmations, changes and cancellations of a reservation."""
        return fields.get("event") in MAILED and bool(fields.get("ref"))

    async def reset(self, target: Target, last_lost: str) -> None:
        """Entries were trimmed before they were mailed: say so in the log."""
        log.error(
            "mail: the feed of %s was trimmed past unmailed entries (to %s)",
            target.venue_id,
            last_lost,
        )

    async def handle(self, target: Target, entry: Entry, attempt: int) -> Outcome:
        """Mail one entry's guest; retried on SMTP errors, given up after the last delay."""
        kind = MAILED[entry.fields["event"]]
        try:
            reservation = await self._reservations.get(entry.fields["ref"], admin=True)
        except HoldsvcError:
            return Done()  # gone (archived): nobody to mail
        if not reservation.email:
            return Done()
        await self._schedule_reminder(reservation)
        told_key = self._keys.of(reservation.venue_id).mail_told
        summary = told(reservation)
        if await self._redis.hget(told_key, reservation.reference) == summary:
            return Done()  # nothing the guest sees has changed (a staff note, a tag)
        if reservation.status == "cancelled":
            kind = "cancel"
        try:
            await self.send(reservation, kind)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            if attempt > len(RETRY_DELAYS):
                log.error("mail: gave up %s for %s: %s", kind, reservation.reference, error)
                return Done()
            log.warning("mail: %s for %s failed (%s); retrying", kind, reservation.reference, error)
            return Retry(RETRY_DELAYS[attempt - 1])
        # What the guest was told, a cancellation too: a mailer that runs behind reads the
        # reservation as it is now, so the entries still to come after a cancel notice must
        # find it told (it was mailed twice when this was deleted after the cancel).
        await self._redis.hset(told_key, reservation.reference, summary)
        return Done()

    async def _schedule_reminder(self, reservation: Reservation) -> None:
        """Keep the reservation's reminder due ``reminder_hours`` before its start (none when
        cancelled, the venue sends none, or that moment has passed)."""
        keys = self._keys.of(reservation.venue_id)
        venue = await self._venues.load(reservation.venue_id)
        hours = venue.number("reminder_hours")
        starts_ms = int(datetime.fromisoformat(reservation.starts_at).timestamp() * 1000)
        due = starts_ms - hours * 3_600_000
        if reservation.status != "confirmed" or hours <= 0:
            await self._redis.zrem(keys.reminders, reservation.reference)
        elif due > await redis_now_ms(self._redis):
            await self._redis.zadd(keys.reminders, {reservation.reference: due})

    async def run_reminders(self, interval: float) -> None:
        """Send due reminders every ``interval`` seconds, until cancelled."""
        while self.enabled:
            try:
                for target in await self.targets():
                    await self.remind(target.venue_id)
            except (RedisError, RedisClusterException, OSError) as error:
                log.warning("mail: reminders: redis error (%s)", type(error).__name__)
            await asyncio.sleep(interval)

    async def remind(self, venue_id: str) -> int:
        """Send one venue's due reminders under its reminders' lease; how many were sent."""
        keys = self._keys.of(venue_id)
        now = await redis_now_ms(self._redis)
        due = await self._redis.zrangebyscore(
            keys.reminders, "-inf", now, start=0, num=50, withscores=True
        )
        if not due:
            return 0
        token = secrets.token_hex(16)
        # One worker sends a venue's reminders at a time: whoever sets the lease first.
        if not await self._redis.set(
            keys.consumer_lease(REMINDERS), token, nx=True, px=self.lease_ms
        ):
            return 0
        sent = 0
        try:
            for reference, score in due:
                if not await self._remind_one(str(reference)):
                    break
                await self._scripts.reminder_sent(
                    keys, token=token, reference=str(reference), due_ms=int(score)
                )
                sent += 1
        except LeaseLost:
            return sent
        finally:
            with contextlib.suppress(LeaseLost, RedisError, RedisClusterException, OSError):
                await self._scripts.consumer_save(
                    keys, REMINDERS, token=token, position="", lease_ms=0
                )
        return sent

    async def _remind_one(self, reference: str) -> bool:
        """Mail one reminder; False when the SMTP server failed (tried again next pass)."""
        try:
            reservation = await self._reservations.get(reference, admin=True)
        except HoldsvcError:
            return True  # gone: nothing to remind
        if reservation.status != "confirmed" or not reservation.email:
            return True
        try:
            await self.send(reservation, "reminder")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            log.warning("mail: reminder for %s failed (%s)", reference, error)
            return False
        return True

    def manage_link(self, reference: str) -> str:
        """The manage page's address for a guest (with a link token when a key is set)."""
        link = f"{self._public_url}/manage/{reference}"
        if self.secret_key:
            link += f"?token={link_token(self.secret_key, reference)}"
        return link

    async def compose(self, reservation: Reservation, kind: str) -> EmailMessage:
        """The mail of one kind for one reservation."""
        venue = await self._venues.load(reservation.venue_id)
        name = venue.fields.get("name", "")
        address = venue.fields.get("address") or None
        subjects = {
            "confirmation": f"Your booking at {name} is confirmed",
            "change": f"Your booking at {name} has changed",
            "cancel": f"Your booking at {name} is cancelled",
            "link": f"Your booking at {name}: the link to manage it",
            "reminder": f"Reminder: your booking at {name}",
        }
        message = EmailMessage()
        message["From"] = str(self._sender)
        message["To"] = str(reservation.email)
        message["Subject"] = subjects[kind]
        lines = [
            f"Hello {reservation.name},",
            "",
            subjects[kind] + ".",
            "",
            f"Venue: {name}" + (f", {address}" if address else ""),
            f"When: {reservation.starts_at}",
            f"Party: {reservation.party_size}",
            f"Reference: {reservation.reference}",
            f"Status: {reservation.status}",
            "",
            f"See, change or cancel it: {self.manage_link(reservation.reference)}",
        ]
        message.set_content("\n".join(lines))
        if kind != "cancel":
            message.add_attachment(
                calendar(reservation, name, address),
                maintype="text",
                subtype="calendar",
                filename="reservation.ics",
            )
        return message

    async def send(self, reservation: Reservation, kind: str) -> None:
        """Hand one mail to the SMTP server."""
        smtp = self.smtp
        if smtp is None:
            return
        message = await self.compose(reservation, kind)
        # Bounded as a whole (aiosmtplib's timeout is per command): the lease outlives it.
        async with asyncio.timeout(self._timeout):
            await aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password,
                use_tls=smtp.use_tls,
                start_tls=smtp.start_tls,
                timeout=self._timeout,
            )
        self._metrics.mails.labels(kind).inc()

    async def resend(self, reference: str, venue_id: str | None) -> None:
        """Mail the manage link again, at most once a minute per reference, off the request
        path; quietly nothing for an unknown reference or one without an address."""
        if not self.enabled or venue_id is None:
            return
        key = self._keys.of(venue_id).resend(reference.upper())
        # The limit first: a burst of resends of one reference mails once.
        if not await self._redis.set(key, 1, nx=True, ex=RESEND_LIMIT_SECONDS):
            return
        task = asyncio.create_task(self._resend(reference))
        self._resends.add(task)
        task.add_done_callback(self._resends.discard)

    async def _resend(self, reference: str) -> None:
        try:
            reservation = await self._reservations.get(reference, admin=True)
            if reservation.email:
                await self.send(reservation, "link")
        except HoldsvcError:
            return
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            log.warning("mail: resend for %s failed (%s)", reference, error)

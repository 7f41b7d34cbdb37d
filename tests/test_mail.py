"""Guest mail through a real local SMTP server (aiosmtpd): confirmation with an .ics, change and
cancel notices, the mailed manage link, resend, the calendar file, nothing without SMTP, and a
worker killed mid-send in a real 2-worker server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx
import icalendar
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar.testing import AsyncTestClient
from pydantic import SecretStr

from holdsvc.keys import Keys
from holdsvc.redis_server import free_tcp_port
from tests.cluster import both_backends
from tests.conftest import MakeClient
from tests.helpers import ADMIN, GUEST, assert_problem, new_reservation, new_venue, slot_tomorrow
from tests.receiver import child_pids, pid_with_local_port, until
from tests.serverproc import ServerProcess

redis_backend = both_backends

HOURS = [slot_tomorrow(hour) for hour in (11, 12, 13, 14, 15, 16)]
SENDER = "bookings@example.com"


class Inbox:
    """What the SMTP server accepted; ``before_accept`` may act first (or refuse)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.before_accept: Any = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.before_accept is not None and not self.before_accept(session):
            return "451 try again later"
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1."""
    inbox = Inbox()
    port = free_tcp_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def client(
    make_client: MakeClient, smtp: tuple[Inbox, int]
) -> AsyncIterator[AsyncTestClient[Any]]:
    async with make_client(
        smtp_url=SecretStr(f"smtp://127.0.0.1:{smtp[1]}"),
        mail_from=SENDER,
        webhook_poll_seconds=0.05,
        public_url="https://book.example.com",
    ) as test_client:
        yield test_client


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def calendar_of(message: EmailMessage) -> Any:
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    parsed = icalendar.Calendar.from_ical(attachment.get_content())
    (event,) = parsed.walk("VEVENT")
    return event


async def test_confirmation_carries_the_manage_link_and_an_ics(
    client: Any, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    rid = await new_venue(client)
    made = await new_reservation(client, rid, slot=HOURS[0])
    await until(lambda: len(inbox.to(GUEST["email"])) == 1, what="the confirmation")
    (mail,) = inbox.to(GUEST["email"])
    assert mail["From"] == SENDER and "confirmed" in mail["Subject"]
    text = text_of(mail)
    assert made["reference"] in text and "Test Bistro" in text and "Party: 2" in text
    event = calendar_of(mail)
    assert event["uid"] == f"{made['reference']}@holdsvc"
    assert event.decoded("dtstart").isoformat(timespec="milliseconds") == made["starts_at"]
    # The mailed link opens the reservation like its manage token.
    link = next(word for word in text.split() if word.startswith("https://book.example.com/"))
    path, _, query = link.removeprefix("https://book.example.com").partition("?token=")
    assert path == f"/manage/{made['reference']}"
    read = await client.get(
        f"/v1/reservations/{made['reference']}", headers={"Manage-Token": query}
    )
    assert read.status_code == 200
    page = await client.get(f"/manage/{made['reference']}/calendar.ics", params={"token": query})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/calendar")
    # The link's token works for a change too, and for no other reservation.
    other = await new_reservation(client, rid, slot=HOURS[1])
    refused = await client.get(
        f"/v1/reservations/{other['reference']}", headers={"Manage-Token": query}
    )
    assert refused.status_code == 403
    changed = await client.patch(
        f"/v1/reservations/{made['reference']}",
        json={"notes": "by the window"},
        headers={"Manage-Token": query},
    )
    assert changed.status_code == 200, changed.text


async def test_change_and_cancel_notices(client: Any, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    rid = await new_venue(client)
    made = await new_reservation(client, rid, slot=HOURS[0])
    token = {"Manage-Token": made["manage_token"]}
    path = f"/v1/reservations/{made['reference']}"
    await until(lambda: len(inbox.to(GUEST["email"])) == 1)
    # A change the guest does not see (a staff tag) mails nothing.
    tagged = await client.patch(path, json={"tags": ["vip"]}, headers=ADMIN)
    assert tagged.status_code == 200
    assert (await client.patch(path, json={"party_size": 1}, headers=token)).status_code == 200
    await until(lambda: len(inbox.to(GUEST["email"])) == 2, what="the change notice")
    assert (await client.delete(path, headers=token)).status_code == 200
    await until(lambda: len(inbox.to(GUEST["email"])) == 3, what="the cancel notice")
    subjects = [m["Subject"] for m in inbox.to(GUEST["email"])]
    assert ["confirmed" in subjects[0], "changed" in subjects[1], "cancelled" in subjects[2]] == [
        True
    ] * 3
    assert "Party: 1" in text_of(inbox.to(GUEST["email"])[1])
    assert list(inbox.to(GUEST["email"])[2].iter_attachments()) == []
    await asyncio.sleep(0.3)
    assert len(inbox.messages) == 3  # each once


async def test_a_mailer_behind_the_changes_mails_the_cancel_once(
    client: Any, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    gate = {"open": False}
    # The SMTP server refuses until every change is made: the mailer (retrying after 5 s)
    # then reads each entry's reservation as it is now, cancelled.
    inbox.before_accept = lambda session: gate["open"]
    rid = await new_venue(client)
    made = await new_reservation(client, rid, slot=HOURS[0])
    token = {"Manage-Token": made["manage_token"]}
    path = f"/v1/reservations/{made['reference']}"
    assert (await client.patch(path, json={"tags": ["vip"]}, headers=ADMIN)).status_code == 200
    assert (await client.patch(path, json={"party_size": 1}, headers=token)).status_code == 200
    assert (await client.delete(path, headers=token)).status_code == 200
    gate["open"] = True
    await until(lambda: len(inbox.messages) == 1, what="the cancel notice")
    await asyncio.sleep(0.5)
    assert [("cancelled" in m["Subject"]) for m in inbox.messages] == [True]  # once


async def test_no_address_no_mail(client: Any, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    rid = await new_venue(client)
    quiet = {"name": "No Mail", "phone": "+1 212 555 0101"}
    await new_reservation(client, rid, slot=HOURS[0], guest=quiet)
    await new_reservation(client, rid, slot=HOURS[1])
    await until(lambda: len(inbox.messages) == 1)
    await asyncio.sleep(0.3)
    assert [m["To"] for m in inbox.messages] == [GUEST["email"]]


async def test_resend_is_202_whatever_the_reference_and_limited(
    client: Any, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    rid = await new_venue(client)
    made = await new_reservation(client, rid, slot=HOURS[0])
    await until(lambda: len(inbox.messages) == 1)
    for _ in range(3):
        sent = await client.post(f"/v1/reservations/{made['reference']}/resend")
        assert sent.status_code == 202
    await until(lambda: len(inbox.messages) == 2, what="the resent link")
    assert "manage" in inbox.messages[1]["Subject"]
    assert f"/manage/{made['reference']}?token=" in text_of(inbox.messages[1])
    for unknown in (f"{rid}-ZZZZZZ", "nonsense", "x" * 300):
        answer = await client.post(f"/v1/reservations/{unknown}/resend")
        assert answer.status_code == 202
    await asyncio.sleep(0.3)
    assert len(inbox.messages) == 2  # once per reference a minute, none for unknown ones


async def test_a_reminder_goes_out_reminder_hours_before_the_start_once(
    client: Any, smtp: tuple[Inbox, int], redis: Any
) -> None:
    inbox, _ = smtp
    rid = await new_venue(client, reminder_hours=2)
    assert (await client.get(f"/v1/restaurants/{rid}")).json()["reminder_hours"] == 2
    made = await new_reservation(client, rid, slot=HOURS[0])
    gone = await new_reservation(client, rid, slot=HOURS[1], guest={**GUEST, "email": "b@x.org"})
    await until(lambda: len(inbox.messages) == 2, what="both confirmations")
    reminders = Keys().of(rid).reminders
    starts = datetime.fromisoformat(made["starts_at"]).timestamp() * 1000
    assert await redis.zscore(reminders, made["reference"]) == starts - 2 * 3_600_000
    cancelled = await client.delete(
        f"/v1/reservations/{gone['reference']}", headers={"Manage-Token": gone["manage_token"]}
    )
    assert cancelled.status_code == 200
    await until(lambda: len(inbox.messages) == 3, what="the cancel notice")
    assert await redis.zscore(reminders, gone["reference"]) is None
    # Time passes: the reminder falls due.
    await redis.zadd(reminders, {made["reference"]: 1})
    await until(lambda: any("Reminder" in m["Subject"] for m in inbox.messages), what="reminder")
    await asyncio.sleep(0.4)
    reminded = [m for m in inbox.messages if "Reminder" in m["Subject"]]
    assert len(reminded) == 1 and reminded[0]["To"] == GUEST["email"]
    assert made["reference"] in text_of(reminded[0])
    assert await redis.zcard(reminders) == 0


@pytest.mark.parametrize("hours", [-1, 169, "2", 1.5])
async def test_reminder_hours_out_of_range_is_a_400(client: Any, hours: Any) -> None:
    rid = await new_venue(client)
    answer = await client.patch(
        f"/v1/restaurants/{rid}", json={"reminder_hours": hours}, headers=ADMIN
    )
    assert_problem(answer, 400, "validation_error")
    ok = await client.patch(f"/v1/restaurants/{rid}", json={"reminder_hours": 168}, headers=ADMIN)
    assert ok.status_code == 200 and ok.json()["reminder_hours"] == 168
    event = {"name": "E", "starts_at": f"{HOURS[0]}:00Z", "total_seats": 10, "reminder_hours": 3}
    made = await client.post("/v1/events", json=event, headers=ADMIN)
    assert made.status_code == 201 and made.json()["reminder_hours"] == 3


async def test_calendar_needs_the_token(client: Any) -> None:
    rid = await new_venue(client)
    made = await new_reservation(client, rid, slot=HOURS[0])
    path = f"/manage/{made['reference']}/calendar.ics"
    good = await client.get(path, params={"token": made["manage_token"]})
    assert good.status_code == 200
    parsed = icalendar.Calendar.from_ical(good.content)
    assert len(list(parsed.walk("VEVENT"))) == 1
    assert (await client.get(path, params={"token": "wrong"})).status_code == 403
    assert (await client.get(path)).status_code == 403
    assert (await client.get(f"/manage/{rid}-ZZZZZZ/calendar.ics")).status_code == 404


async def test_without_smtp_nothing_is_sent_and_the_log_says_so_once(
    make_client: MakeClient,
) -> None:
    said: list[str] = []

    class Lines(logging.Handler):
        """The app's logging setup replaces the root's handlers: listen on its logger."""

        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    lines = Lines()
    logging.getLogger("holdsvc").addHandler(lines)
    try:
        async with make_client() as client:
            rid = await new_venue(client)
            made = await new_reservation(client, rid, slot=HOURS[0])
            answer = await client.post(f"/v1/reservations/{made['reference']}/resend")
            assert answer.status_code == 202
            await asyncio.sleep(0.2)
    finally:
        logging.getLogger("holdsvc").removeHandler(lines)
    assert len([line for line in said if "no mail is sent" in line]) == 1


@pytest.mark.race
@pytest.mark.crash
@pytest.mark.slow
async def test_a_worker_killed_mid_send_is_replaced_and_each_mail_arrives_once(
    redis_url: str, smtp: tuple[Inbox, int]
) -> None:
    """The first mail's SMTP hand-off kills the worker sending it before the server accepts
    it: the other worker sends it again; every guest gets exactly one confirmation."""
    inbox, port = smtp
    killed: list[int] = []
    env = {
        "HOLDSVC_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "HOLDSVC_MAIL_FROM": SENDER,
        "HOLDSVC_WEBHOOK_TIMEOUT_SECONDS": "2",
        "HOLDSVC_WEBHOOK_POLL_SECONDS": "0.05",
        "HOLDSVC_ADMIN_TOKENS": "test-admin",  # the helpers' ADMIN
    }
    with ServerProcess(redis_url, workers=2, env=env, startup_timeout=90) as server:
        assert server.pid is not None
        workers = child_pids(server.pid)

        def kill_the_first_sender(session: Session) -> bool:
            if killed:
                return True
            peer: Any = session.peer
            pid = pid_with_local_port(int(peer[1]), child_pids(server.pid or 0))
            assert pid is not None
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)
            return False

        inbox.before_accept = kill_the_first_sender
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            client: Any = http
            rid = await new_venue(client)
            guests = [{**GUEST, "email": f"guest{n}@example.com"} for n in range(3)]
            for n, guest in enumerate(guests):
                await new_reservation(client, rid, f"u{n}", slot=HOURS[n], guest=guest)
            await until(lambda: len(inbox.messages) == 3, timeout=60, what="three mails")
            await asyncio.sleep(1)
            assert sorted(str(m["To"]) for m in inbox.messages) == [g["email"] for g in guests]
            assert killed and killed[0] in workers
            alive = await client.get("/health", headers=ADMIN)
            assert alive.status_code == 200

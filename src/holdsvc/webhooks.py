"""Webhooks (Standard Webhooks): subscriptions, the SSRF guard, and the sender (no HTTP
serving here).

A subscription belongs to one venue (its managers') or to every venue (an admin's). Its signing
secret is kept in Redis as it was shown, because signing needs the secret itself (HMAC); a
digest could only verify. The sender is a consumer of the venues' change feeds
(``feedwork``): each entry of a subscribed kind is POSTed, signed by the ``standardwebhooks``
package, in feed order, at least once, retried on ``HOLDSVC_WEBHOOK_RETRY_SCHEDULE``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import httpx
import msgspec
from standardwebhooks.webhooks import Webhook as Signer

from holdsvc import slots as timegrid
from holdsvc.clock import redis_now_ms
from holdsvc.errors import NotFound, ValidationFailed
from holdsvc.feed import change_view
from holdsvc.feedwork import Done, Entry, GiveUp, Outcome, Retry, Target
from holdsvc.identifiers import new_hold_id
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.scripts import AnyRedis
from holdsvc.settings import Settings
from holdsvc.venues import VenueKind, Venues

log = logging.getLogger("holdsvc.webhooks")

FEED_EVENTS = ("held", "refreshed", "released", "expired", "confirmed", "cancelled", "changed")
WEBHOOK_ID = r"^wh_[A-Za-z0-9_-]{16}$"
LOG_LENGTH = 100  # delivery log entries kept per subscription
EXCERPT = 200  # characters of a receiver's answer kept in the log
NAME_PREFIX = "wh:"  # a webhook's consumer name in a venue's feed: "wh:<id>"


@dataclass(frozen=True, slots=True)
class Webhook:
    """One subscription; ``venue_id`` None for an admin's every-venue one."""

    id: str
    venue_id: str | None
    url: str
    events: tuple[str, ...]
    description: str | None
    secret: str
    enabled: bool
    disabled_reason: str | None
    created_ms: int

    def dump(self) -> str:
        """The JSON kept in Redis."""
        return json.dumps(asdict(self))

    @classmethod
    def load(cls, text: str | bytes) -> Webhook:
        """A subscription read back from Redis."""
        row = json.loads(text)
        row["events"] = tuple(row["events"])
        return cls(**row)


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: ``whsec_`` + base64 of 32 bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def is_public(address: str) -> bool:
    """Whether an IP address is a public one (not loopback, private, link-local, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def parse_target(url: str) -> httpx.URL:
    """The URL, if it is an absolute http(s) URL with a host (else a 400)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as error:
        raise ValidationFailed(f"url is not a valid URL ({error})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationFailed("url must be an http:// or https:// URL with a host")
    return parsed


async def addresses(url: httpx.URL) -> list[str]:
    """The IP addresses the URL's host resolves to now (empty when it does not resolve)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            url.host, port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


async def refuse_private(url: httpx.URL) -> None:
    """SSRF guard: a 400 when the URL's host resolves to a non-public address."""
    for address in await addresses(url):
        if not is_public(address):
            raise ValidationFailed(
                f"url resolves to {address}, a loopback, private or link-local address"
            )


class Webhooks:
    """Create, list, change and delete subscriptions; their delivery logs."""

    def __init__(self, redis: AnyRedis, keys: Keys, venues: Venues, settings: Settings) -> None:
        self._redis = redis
        self._keys = keys
        self._venues = venues
        self._allow_private = settings.webhook_allow_private

    def _hash(self, venue_id: str | None) -> str:
        return self._keys.of(venue_id).webhooks if venue_id else self._keys.webhooks

    def log_key(self, hook: Webhook) -> str:
        """Where a subscription's delivery log lives."""
        if hook.venue_id:
            return self._keys.of(hook.venue_id).deliveries(hook.id)
        return self._keys.global_deliveries(hook.id)

    async def check_url(self, url: str) -> httpx.URL:
        """The URL, checked as the contract says (scheme, and a public address unless
        private ones are allowed)."""
        parsed = parse_target(url)
        if not self._allow_private:
            await refuse_private(parsed)
        return parsed

    async def create(
        self,
        venue_id: str | None,
        url: str,
        events: Sequence[str] | None,
        description: str | None,
    ) -> Webhook:
        """A new subscription; it starts at the current end of the feed(s)."""
        if venue_id:
            await self._venues.profile(venue_id)
        unknown = sorted(set(events or ()) - set(FEED_EVENTS))
        if unknown:
            raise ValidationFailed(
                f"events: unknown {', '.join(unknown)} (known: {', '.join(FEED_EVENTS)})"
            )
        if events is not None and not events:
            raise ValidationFailed("events: name at least one event, or leave it out for all")
        await self.check_url(url)
        hook = Webhook(
            id="wh_" + new_hold_id()[:16],
            venue_id=venue_id,
            url=url,
            events=tuple(dict.fromkeys(events or FEED_EVENTS)),
            description=description,
            secret=new_secret(),
            enabled=True,
            disabled_reason=None,
            created_ms=await redis_now_ms(self._redis),
        )
        await self._redis.hset(self._hash(venue_id), hook.id, hook.dump())
        if venue_id:
            await self._redis.sadd(self._keys.webhook_venues, venue_id)
        return hook

    async def listed(self, venue_id: str | None) -> list[Webhook]:
        """A venue's subscriptions (or the every-venue ones), oldest first."""
        if venue_id:
            await self._venues.profile(venue_id)
        rows = await self._redis.hgetall(self._hash(venue_id))
        hooks = [Webhook.load(text) for text in rows.values()]
        return sorted(hooks, key=lambda hook: (hook.created_ms, hook.id))

    async def get(self, venue_id: str | None, webhook_id: str) -> Webhook:
        """One subscription (404 when it is not this venue's, or not every-venue)."""
        if venue_id:
            await self._venues.profile(venue_id)
        text = await self._redis.hget(self._hash(venue_id), webhook_id)
        if text is None:
            raise NotFound("No such webhook")
        return Webhook.load(text)

    async def delete(self, venue_id: str | None, webhook_id: str) -> None:
        """Delete a subscription, its log and its position (no delivery starts after this)."""
        hook = await self.get(venue_id, webhook_id)
        await self._redis.hdel(self._hash(venue_id), hook.id)
        await self._redis.delete(self.log_key(hook))
        if venue_id:
            await self._redis.hdel(self._keys.of(venue_id).consumers, NAME_PREFIX + hook.id)

    async def set_enabled(self, venue_id: str | None, webhook_id: str, enabled: bool) -> Webhook:
        """Enable (resume with the entry after the one given up) or disable a subscription."""
        hook = await self.get(venue_id, webhook_id)
        changed = replace(
            hook, enabled=enabled, disabled_reason=None if enabled else "disabled by staff"
        )
        await self._redis.hset(self._hash(venue_id), hook.id, changed.dump())
        return changed

    async def disable(self, hook: Webhook, reason: str) -> None:
        """Stop a subscription for good until someone enables it again."""
        current = await self._redis.hget(self._hash(hook.venue_id), hook.id)
        if current is None:
            return  # deleted meanwhile
        stopped = replace(Webhook.load(current), enabled=False, disabled_reason=reason)
        await self._redis.hset(self._hash(hook.venue_id), hook.id, stopped.dump())
        log.warning("webhook %s disabled: %s", hook.id, reason)

    async def record(self, hook: Webhook, delivery: dict[str, object]) -> None:
        """Add one delivery to the subscription's log (newest first, capped)."""
        key = self.log_key(hook)
        pipe = self._redis.pipeline(transaction=False)
        pipe.lpush(key, json.dumps(delivery))
        pipe.ltrim(key, 0, LOG_LENGTH - 1)
        await pipe.execute()

    async def deliveries(self, venue_id: str | None, webhook_id: str) -> list[dict[str, object]]:
        """The subscription's recent deliveries, newest first."""
        hook = await self.get(venue_id, webhook_id)
        rows = await self._redis.lrange(self.log_key(hook), 0, LOG_LENGTH - 1)
        return [json.loads(text) for text in rows]

    async def subscribed(self) -> list[Webhook]:
        """Every enabled subscription, venue ones and every-venue ones."""
        hooks = [
            Webhook.load(text) for text in (await self._redis.hgetall(self._keys.webhooks)).values()
        ]
        for venue_id in sorted(await self._redis.smembers(self._keys.webhook_venues)):
            # A venue stays on the list once it had a webhook: taking it off could race a new
            # subscription (written, then listed) and leave that one undelivered.
            rows = await self._redis.hgetall(self._keys.of(venue_id).webhooks)
            hooks.extend(Webhook.load(text) for text in rows.values())
        return [hook for hook in hooks if hook.enabled]


class WebhookSender:
    """The feed consumer that POSTs entries to subscriptions (see ``feedwork``)."""

    label = "webhook"

    def __init__(
        self,
        redis: AnyRedis,
        keys: Keys,
        venues: Venues,
        webhooks: Webhooks,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._venues = venues
        self._webhooks = webhooks
        self._metrics = metrics
        self._timeout = settings.webhook_timeout_seconds
        self._delays = settings.retry_delays()
        self._allow_private = settings.webhook_allow_private
        # The lease outlives the longest delivery (the timeout) with room for the saves.
        self.lease_ms = int(self._timeout * 1000) + 5_000
        self._hooks: dict[str, Webhook] = {}
        self._client = httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=settings.webhook_concurrency),
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def targets(self) -> list[Target]:
        """Each enabled subscription in each venue it covers."""
        hooks = await self._webhooks.subscribed()
        self._hooks = {hook.id: hook for hook in hooks}
        every_venue: list[str] = []
        if any(hook.venue_id is None for hook in hooks):
            for kind in VenueKind:
                every_venue.extend(await self._redis.zrange(self._keys.venues(kind.value), 0, -1))
        found: list[Target] = []
        for hook in hooks:
            venues = [hook.venue_id] if hook.venue_id else every_venue
            found.extend(Target(str(venue), NAME_PREFIX + hook.id) for venue in venues)
        return found

    def _hook(self, target: Target) -> Webhook:
        return self._hooks[target.name.removeprefix(NAME_PREFIX)]

    async def start(self, target: Target) -> str:
        """A new subscription starts at the end of the feed as it was when it was made."""
        return f"{self._hook(target).created_ms}-0"

    def wants(self, target: Target, fields: dict[str, str]) -> bool:
        """Entries of the kinds the subscription names."""
        return fields.get("event") in self._hook(target).events

    async def reset(self, target: Target, last_lost: str) -> None:
        """Say in the log that entries were trimmed before they could be sent."""
        hook = self._hook(target)
        profile = await self._venues.profile(target.venue_id)
        now = await redis_now_ms(self._redis)
        await self._webhooks.record(
            hook,
            {
                "webhook_id": None,
                "event": "reset",
                "attempt": 0,
                "status_code": None,
                "error": f"the feed of {target.venue_id} was trimmed past unsent entries "
                f"(up to {last_lost}); delivery goes on after them",
                "at": timegrid.rfc3339(now, profile.tz),
                "venue_id": target.venue_id,
            },
        )

    async def handle(self, target: Target, entry: Entry, attempt: int) -> Outcome:
        """POST one entry; log the try; decide what comes next."""
        hook = self._hook(target)
        profile = await self._venues.profile(target.venue_id)
        change = msgspec.to_builtins(change_view(profile, entry.id, entry.fields))
        change["venue_id"] = target.venue_id
        body = json.dumps(
            {"type": change["event"], "timestamp": change["at"], "data": change},
            separators=(",", ":"),
        )
        message_id = f"msg_{target.venue_id}_{entry.id}"
        status, error = await self._post(hook, message_id, body)
        now = await redis_now_ms(self._redis)
        await self._webhooks.record(
            hook,
            {
                "webhook_id": message_id,
                "event": change["event"],
                "attempt": attempt,
                "status_code": status,
                "error": error,
                "at": timegrid.rfc3339(now, profile.tz),
                "venue_id": target.venue_id,
            },
        )
        ok = status is not None and 200 <= status < 300
        self._metrics.deliveries.labels("ok" if ok else "failed").inc()
        if ok:
            return Done()
        self._metrics.delivery_failures.labels(
            "status" if status is not None else "no_answer"
        ).inc()
        if status == 410:
            await self._webhooks.disable(hook, f"the receiver answered 410 Gone to {entry.id}")
            return GiveUp()
        if attempt > len(self._delays):
            await self._webhooks.disable(
                hook, f"entry {entry.id} failed {attempt} times: the retry schedule is used up"
            )
            return GiveUp()
        return Retry(self._delays[attempt - 1])

    async def _post(
        self, hook: Webhook, message_id: str, body: str
    ) -> tuple[int | None, str | None]:
        """Send one signed request: (status code or None, an error excerpt or None)."""
        url = httpx.URL(hook.url)
        if not self._allow_private:
            # Checked again now: the name may point elsewhere than when it was subscribed.
            found = await addresses(url)
            if not found:
                return None, f"cannot resolve {url.host}"
            if not all(is_public(address) for address in found):
                return None, f"{url.host} resolves to a non-public address: refused"
        sent_at = datetime.now(tz=UTC)
        signature = Signer(hook.secret).sign(message_id, sent_at, body)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
            "user-agent": "holdsvc-webhooks",
        }
        try:
            # Bounded in time as a whole (the client's timeout is per phase).
            async with (
                asyncio.timeout(self._timeout),
                self._client.stream("POST", url, content=body.encode(), headers=headers) as answer,
            ):
                if 200 <= answer.status_code < 300:
                    return answer.status_code, None
                return answer.status_code, await excerpt(answer)
        except (TimeoutError, httpx.TimeoutException):
            return None, f"no answer within {self._timeout:g} s"
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {str(error)[:EXCERPT]}"


async def excerpt(answer: httpx.Response) -> str | None:
    """The start of a receiver's answer, never more (a big body is not read, let alone kept)."""
    taken = b""
    async for chunk in answer.aiter_raw():
        taken += chunk
        if len(taken) >= EXCERPT:
            break
    return taken[:EXCERPT].decode("utf-8", "replace") or None

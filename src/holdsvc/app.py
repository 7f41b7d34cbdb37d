"""``create_app(settings)``: the only factory. Its lifespan owns the Redis client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.exceptions import RedisClusterException, RedisError

from holdsvc.api.combinations import CombinationController
from holdsvc.api.deps import provide_services
from holdsvc.api.events import EventController
from holdsvc.api.faces import EVENTS, FACES, RESTAURANTS
from holdsvc.api.grid import ClosureController
from holdsvc.api.holds import hold_router
from holdsvc.api.mail import MailController
from holdsvc.api.media import json_bodies_only
from holdsvc.api.openapi import document_answers, openapi_config
from holdsvc.api.ops import OpsController
from holdsvc.api.problems import EXCEPTION_HANDLERS, answer_error
from holdsvc.api.reservations import ReservationController
from holdsvc.api.restaurants import RestaurantController, book_as_staff
from holdsvc.api.throttle import throttle_holds
from holdsvc.api.venue import venue_router
from holdsvc.api.waitlist import waitlist_router
from holdsvc.api.webhooks import webhook_router
from holdsvc.connection import connect_redis, pipelined_connection
from holdsvc.feedwork import FeedWorkers
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.web import WebPlugin
from holdsvc.web.docs import offline_docs
from holdsvc.webhooks import WebhookSender

log = logging.getLogger("holdsvc")
access_log = logging.getLogger("holdsvc.access")


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Counts and times every HTTP request by route handler and status.

    The status counted is the one the client got: an error that escapes the route's own
    handling (from app middleware, or the hold fast path, which has none) is answered here,
    inside the capture, rather than by Litestar's outer handler after the count.
    """

    # The level is fixed once the app is built: no logging lookups per request.
    log_access = access_log.isEnabledFor(logging.INFO)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        except Exception as error:
            if status:
                raise  # the answer had started: nothing else can be sent
            await answer_error(scope, receive, capture, error)
        finally:
            # Nothing was sent (the task was cancelled, or answering failed): a 500 at best.
            status = status or 500
            # The route template ("/v1/restaurants/{rid}/holds"): bounded, and cheap to read.
            route = scope.get("path_template") or "unmatched"
            method = str(scope.get("method", ""))
            elapsed = time.perf_counter() - started
            metrics: Metrics = scope["app"].state.metrics
            metrics.observe_request(method, route, status, elapsed)
            if log_access:
                # The route template only: no ids, no query string, no token, phone or name.
                access_log.info("%s %s %s %.1fms", method, route, status, elapsed * 1000)

    return middleware


def rate_limiting(settings: Settings) -> list[Callable[[ASGIApp], ASGIApp]]:
    """The per-client limit of the hold endpoints (exact, in Redis); none when it is 0."""
    if settings.rate_limit_per_minute == 0:
        return []
    return [throttle_holds(Keys(settings.key_prefix), settings.rate_limit_per_minute)]


def configure_logging(level: str) -> None:
    """The ``holdsvc`` loggers at the configured level (Litestar's root handler prints them)."""
    logging.getLogger("holdsvc").setLevel(level.upper())


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait until it has stopped."""
    task.cancel()
    # Python 3.11's asyncio.wait_for (redis-py sends commands through it) can swallow a cancel
    # that lands just as a send completes: cancel again until it is done.
    while not task.done():
        await asyncio.wait({task}, timeout=0.05)
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app. The lifespan opens Redis, loads the scripts, runs the sweeper and the
    rolling grid."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        redis = connect_redis(settings)
        stream_redis = connect_redis(settings, for_streams=True)
        pipeline = pipelined_connection(settings, redis)
        services = Services.build(
            redis, settings, metrics, stream_redis=stream_redis, pipeline=pipeline
        )
        try:
            await services.scripts.load()
            # Logs its error line at start when Redis would evict keys (/ready says it too).
            await services.eviction.reason()
        except (RedisError, RedisClusterException, OSError) as error:
            # Start anyway: /ready says 503 until Redis answers; scripts load on first use.
            log.warning(
                "redis not reachable at start-up (%s); /ready will say so", type(error).__name__
            )
        app.state.services = services
        # Everything built so far lives as long as the app: keep it out of the collector's
        # full passes (shorter pauses in the request path).
        gc.freeze()
        sweeper = asyncio.create_task(services.sweeper.run(settings.sweep_interval_seconds))
        grid = asyncio.create_task(services.rolling_grid.run(settings.grid_interval_seconds))
        # Webhooks and mail: consumers of the venues' feeds, off the request path.
        keys = Keys(settings.key_prefix)
        sender = WebhookSender(redis, keys, services.venues, services.webhooks, settings, metrics)
        workers = FeedWorkers(
            redis, keys, services.scripts, metrics, concurrency=settings.webhook_concurrency
        )
        with contextlib.suppress(RedisError, RedisClusterException, OSError):
            await services.mailer.begin()
        if not services.mailer.enabled:
            log.info("mail: HOLDSVC_SMTP_URL or HOLDSVC_MAIL_FROM is unset: no mail is sent")
        deliveries = asyncio.create_task(
            workers.run([sender, services.mailer], settings.webhook_poll_seconds)
        )
        reminders = asyncio.create_task(
            services.mailer.run_reminders(settings.webhook_poll_seconds)
        )
        try:
            yield
        finally:
            for task in (sweeper, grid, deliveries, reminders):
                await stop_task(task)
            await sender.aclose()
            if pipeline is not None:
                await pipeline.aclose()
            await stream_redis.aclose()
            await redis.aclose()

    app = Litestar(
        route_handlers=[
            RestaurantController,
            ClosureController,
            CombinationController,
            EventController,
            # What every venue face shares: holds, reservation lists, the feed, the audit.
            *(hold_router(face) for face in FACES),
            venue_router(RESTAURANTS, book_as_staff),
            venue_router(EVENTS),
            *(waitlist_router(face) for face in FACES),
            ReservationController,
            OpsController,
            *(webhook_router(face) for face in FACES),
            webhook_router(None),
            MailController,
        ],
        lifespan=[lifespan],
        # One Provide per app, cached: the services never change once the lifespan built them.
        dependencies={"services": Provide(provide_services, sync_to_thread=False, use_cache=True)},
        exception_handlers=EXCEPTION_HANDLERS,
        # A body that is not JSON is refused before the rate limit counts the request.
        middleware=[metrics_middleware, json_bodies_only, *rate_limiting(settings)],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(render_plugins=offline_docs()),
        # Text answers (pages, scripts, JSON) travel compressed; the feed streams are left
        # alone (a compressor would hold their events back).
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=1000, exclude=r"/changes$"
        ),
        cors_config=None
        if not settings.cors_origins
        else CORSConfig(allow_origins=settings.cors_origins),
        debug=False,
        plugins=[WebPlugin()],  # the pages (src/holdsvc/web)
    )
    app.state.metrics = metrics
    app.state.admin_digests = settings.admin_token_digests()
    app.state.max_body_bytes = settings.max_body_bytes
    document_answers(app)  # what every route answers, from its declaration (api/openapi.py)
    return app

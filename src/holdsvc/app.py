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
from urllib.parse import urlsplit

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from holdsvc.api.audit import AuditController
from holdsvc.api.deps import provide_services
from holdsvc.api.events import EventController, EventHoldController
from holdsvc.api.feed import FeedController
from holdsvc.api.holds import RestaurantHoldController
from holdsvc.api.ops import OpsController
from holdsvc.api.problems import EXCEPTION_HANDLERS
from holdsvc.api.reservations import ReservationController
from holdsvc.api.restaurants import RestaurantController
from holdsvc.api.throttle import throttle_holds
from holdsvc.connection import guard_cluster, guard_pool
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.pipelined import ClusterPipelines, PipelinedConnection
from holdsvc.scripts import AnyRedis
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.web import WebPlugin

log = logging.getLogger("holdsvc")
# Connections a cluster client may open to each node (redis-py's RedisCluster fails when it
# finds none free instead of waiting, as the single node's blocking pool does).
CLUSTER_CONNECTIONS = 1024
access_log = logging.getLogger("holdsvc.access")


def connect_redis(
    settings: Settings, *, for_streams: bool = False, pool_size: int | None = None
) -> AnyRedis:
    """A Redis client for the configured URL: one node, or a cluster.

    ``for_streams``: a separate pool for blocking feed reads, one connection per open stream,
    with a socket timeout longer than a blocking read.
    """
    url = settings.redis_url or "redis://127.0.0.1:6379/0"
    timeout = settings.redis_timeout_seconds
    if for_streams:
        timeout += settings.sse_heartbeat_seconds
    if is_cluster(settings):
        first, others = split_cluster_url(url)
        cluster = RedisCluster.from_url(
            first,
            startup_nodes=[ClusterNode(host, port) for host, port in others],
            decode_responses=True,
            # Per node. A cluster client cannot wait for a free connection (it fails at the
            # limit), so it gets room for bursts rather than the single node's pool size.
            max_connections=settings.sse_max_streams if for_streams else CLUSTER_CONNECTIONS,
            socket_timeout=timeout,
            socket_connect_timeout=settings.redis_timeout_seconds,
        )
        return guard_cluster(cluster)
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=pool_size
        or (settings.sse_max_streams if for_streams else settings.redis_pool_size),
        timeout=settings.redis_timeout_seconds,
        socket_timeout=timeout,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )
    return Redis(connection_pool=guard_pool(pool))


def is_cluster(settings: Settings) -> bool:
    """Whether the configured Redis is a Redis Cluster (a setting, or the URL's scheme)."""
    return settings.redis_cluster or "+cluster://" in (settings.redis_url or "")


def split_cluster_url(url: str) -> tuple[str, list[tuple[str, int]]]:
    """``redis+cluster://[user:pass@]h1:p1,h2:p2/0``: the first node's URL and the others.

    Every node listed is a startup node: the client learns the topology from any one that
    answers, so the app starts even while the first one is down.
    """
    scheme, _, rest = url.partition("://")
    cuts = [i for i in (rest.find("/"), rest.find("?")) if i >= 0]
    cut = min(cuts) if cuts else len(rest)
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hosts = netloc.rpartition("@")
    first, *others = hosts.split(",")
    nodes = []
    for other in others:
        host, _, port = other.rpartition(":")
        nodes.append((host, int(port)) if host else (port, 6379))
    return f"{scheme.removesuffix('+cluster')}://{userinfo}{at}{first}{tail}", nodes


def pipelined_connection(
    settings: Settings, redis: AnyRedis
) -> PipelinedConnection | ClusterPipelines | None:
    """The hot path's pipelining connection: one for a single node, one per primary for a
    cluster (None when turned off, or for TLS and other schemes: the pooled client)."""
    url = settings.redis_url or "redis://127.0.0.1:6379/0"
    if not settings.redis_pipelining:
        return None
    if is_cluster(settings):
        if "rediss" in url.split("://", 1)[0]:
            return None
        # "user:password" exactly as the URL spells it (still percent-encoded), for every node.
        userinfo = urlsplit(split_cluster_url(url)[0]).netloc.rpartition("@")[0]
        return ClusterPipelines(redis, timeout=settings.redis_timeout_seconds, userinfo=userinfo)
    if not url.startswith(("redis://", "unix://")):
        return None
    return PipelinedConnection(url, timeout=settings.redis_timeout_seconds)


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Counts and times every HTTP request by route handler and status."""

    # The level is fixed once the app is built: no logging lookups per request.
    log_access = access_log.isEnabledFor(logging.INFO)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
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


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app. The lifespan opens Redis, loads the scripts, runs the sweeper."""
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
        try:
            yield
        finally:
            sweeper.cancel()
            # Python 3.11's asyncio.wait_for (redis-py sends commands through it) can swallow
            # a cancel that lands just as a send completes: cancel again until it is done.
            while not sweeper.done():
                await asyncio.wait({sweeper}, timeout=0.05)
                sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if pipeline is not None:
                await pipeline.aclose()
            await stream_redis.aclose()
            await redis.aclose()

    app = Litestar(
        route_handlers=[
            RestaurantController,
            RestaurantHoldController,
            EventController,
            EventHoldController,
            FeedController,
            AuditController,
            ReservationController,
            OpsController,
        ],
        lifespan=[lifespan],
        # One Provide per app, cached: the services never change once the lifespan built them.
        dependencies={"services": Provide(provide_services, sync_to_thread=False, use_cache=True)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[metrics_middleware, *rate_limiting(settings)],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="holdsvc", version="1.0.0", path="/schema"),
        cors_config=None
        if not settings.cors_origins
        else CORSConfig(allow_origins=settings.cors_origins),
        debug=False,
        plugins=[WebPlugin()],  # the pages (src/holdsvc/web)
    )
    app.state.metrics = metrics
    app.state.admin_digests = settings.admin_token_digests()
    app.state.max_body_bytes = settings.max_body_bytes
    return app

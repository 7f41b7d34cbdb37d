"""The service objects one app instance shares, built in the app's lifespan."""

from __future__ import annotations

from holdsvc.audit import Auditor
from holdsvc.events import Events
from holdsvc.eviction import EvictionCheck
from holdsvc.feed import Feed
from holdsvc.grid import Grid
from holdsvc.holds import Holds
from holdsvc.identifiers import digest
from holdsvc.keys import Keys
from holdsvc.mail import Mailer
from holdsvc.metrics import Metrics
from holdsvc.pipelined import ClusterPipelines, PipelinedConnection
from holdsvc.reservations import Reservations
from holdsvc.restaurants import Restaurants
from holdsvc.rolling_grid import RollingGrid
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.settings import Settings
from holdsvc.staff import StaffTokens
from holdsvc.sweeper import Sweeper
from holdsvc.tables import Tables
from holdsvc.venues import Venues
from holdsvc.waitlist import Waitlist
from holdsvc.webhooks import Webhooks


class Services:
    """Everything a controller may call; none of it knows about HTTP.

    A plain class on purpose: Litestar validates dataclass-typed dependencies field by field.
    """

    def __init__(
        self,
        redis: AnyRedis,
        scripts: Scripts,
        venues: Venues,
        restaurants: Restaurants,
        events: Events,
        holds: Holds,
        reservations: Reservations,
        sweeper: Sweeper,
        feed: Feed,
        auditor: Auditor,
        metrics: Metrics,
        staff: StaffTokens,
        eviction: EvictionCheck,
        *,
        grid: Grid,
        rolling_grid: RollingGrid,
        tables: Tables,
        webhooks: Webhooks,
        mailer: Mailer,
        waitlist: Waitlist,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.venues = venues
        self.restaurants = restaurants
        self.events = events
        self.holds = holds
        self.reservations = reservations
        self.sweeper = sweeper
        self.feed = feed
        self.auditor = auditor
        self.metrics = metrics
        self.grid = grid
        self.tables = tables
        self.rolling_grid = rolling_grid
        self.staff = staff
        self.eviction = eviction
        self.webhooks = webhooks
        self.mailer = mailer
        self.waitlist = waitlist

    @classmethod
    def build(
        cls,
        redis: AnyRedis,
        settings: Settings,
        metrics: Metrics,
        stream_redis: AnyRedis = None,
        pipeline: PipelinedConnection | ClusterPipelines | None = None,
    ) -> Services:
        """Wire the services around one Redis client."""
        keys = Keys(settings.key_prefix)
        scripts = Scripts(
            redis,
            feed_maxlen=settings.feed_maxlen,
            tombstone_seconds=settings.hold_tombstone_seconds,
            pipeline=pipeline,
            wait_replicas=settings.confirm_wait_replicas,
            wait_timeout_ms=settings.confirm_wait_timeout_ms,
        )
        venues = Venues(redis, keys, settings)
        events = Events(redis, keys, scripts, venues)
        sweeper = Sweeper(redis, keys, scripts, metrics, batch=settings.sweep_batch)
        grid = Grid(redis, keys, scripts, venues, sweeper)
        restaurants = Restaurants(redis, keys, venues, grid, scripts)
        rolling_grid = RollingGrid(redis, keys, grid)
        reservations = Reservations(redis, keys, scripts, venues, sweeper)
        reservations.link_secret = (
            settings.secret_key.get_secret_value() if settings.secret_key else None
        )
        holds = Holds(redis, keys, scripts, venues, reservations, sweeper, settings, metrics)
        # An offer's hold gets a token like any hold: a MAC of its id (see Holds.token).
        scripts.offer_digest = lambda venue_id, hold_id: digest(holds.token(venue_id, hold_id))
        feed = Feed(
            redis,
            stream_redis or redis,
            keys,
            venues,
            max_streams=settings.sse_max_streams,
            heartbeat_seconds=settings.sse_heartbeat_seconds,
        )
        metrics.open_streams.set_function(lambda: feed.open_streams)
        auditor = Auditor(redis, keys)
        return cls(
            redis,
            scripts,
            venues,
            restaurants,
            events,
            holds,
            reservations,
            sweeper,
            feed,
            auditor,
            metrics,
            staff=StaffTokens(redis, keys, venues),
            eviction=EvictionCheck(redis, allowed=settings.allow_eviction),
            grid=grid,
            rolling_grid=rolling_grid,
            tables=Tables(redis, keys, scripts, venues, sweeper),
            webhooks=Webhooks(redis, keys, venues, settings),
            mailer=Mailer(redis, keys, venues, reservations, settings, metrics, scripts),
            waitlist=Waitlist(redis, keys, scripts, venues, holds, events),
        )

    async def ready(self) -> bool:
        """Redis answers and has every script loaded (loading them again after a restart)."""
        try:
            if not await self.scripts.loaded():
                await self.scripts.load()
            return await self.scripts.loaded()
        except Exception:
            return False

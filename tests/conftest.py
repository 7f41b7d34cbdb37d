"""Shared fixtures: every test that touches Redis gets a real server, never a fake.

The server is, in order of preference: the one at ``HOLDSVC_TEST_REDIS_URL`` (it is flushed
before every test), a ``redis:7-alpine`` container when a Docker engine answers, or the
project's embedded redis-server listening on a free 127.0.0.1 port. Modules that set
``redis_backend = both_backends`` run a second time on a local Redis Cluster (tests/cluster.py:
3 primaries, 3 replicas, started on first use), those runs marked ``cluster``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import docker  # type: ignore[import-untyped]
import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from holdsvc.app import create_app
from holdsvc.connection import connect_redis
from holdsvc.metrics import Metrics
from holdsvc.redis_server import EmbeddedRedis
from holdsvc.services import Services
from holdsvc.settings import Settings
from tests.cluster import LocalCluster, cluster_client, is_cluster_url
from tests.serverproc import ServerProcess

try:
    from testcontainers.community.redis import RedisContainer
except ImportError:  # testcontainers < 4.10
    from testcontainers.redis import RedisContainer


def docker_available() -> bool:
    """Whether a Docker engine answers within a second or two."""
    try:
        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def single_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis server for the whole session, reachable by other processes too."""
    configured = os.environ.get("HOLDSVC_TEST_REDIS_URL")
    if configured:
        yield configured
    elif docker_available():
        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
    else:
        with EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=0, unix_socket=False) as server:
            yield server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A local Redis Cluster (3 primaries, 3 replicas) for the whole session, started on first
    use only: ``-m "not cluster"`` never starts it."""
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def cluster_url(redis_cluster: LocalCluster) -> str:
    """``redis+cluster://...`` naming every node of the session's cluster."""
    return redis_cluster.url


@pytest.fixture(scope="module")
def redis_backend() -> str:
    """Which Redis a module's tests use: ``single``. A module that runs on the cluster too
    overrides it with `tests.cluster.both_backends` (parametrized, the cluster run marked)."""
    return "single"


@pytest.fixture(scope="module")
def redis_url(redis_backend: str, request: pytest.FixtureRequest) -> str:
    """URL of the Redis the module's tests use: the single server, or the cluster."""
    if redis_backend == "cluster":
        return str(request.getfixturevalue("cluster_url"))
    return str(request.getfixturevalue("single_redis_url"))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """An asyncio client (bytes replies) on an empty server; closed after the test.

    On the cluster it is a RedisCluster (same commands; FLUSHALL and SCAN reach every primary).
    """
    client: Any = (
        cluster_client(redis_url, decode_responses=False)
        if is_cluster_url(redis_url)
        else Redis.from_url(redis_url, decode_responses=False)
    )
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


# -- the app and its services, on the real server ---------------------------------------------


def app_settings(redis_url: str) -> Settings:
    """Settings for a test app on ``redis_url`` (no .env file read)."""
    return Settings(
        _env_file=None,
        redis_url=redis_url,
        admin_tokens=["test-admin"],
        secret_key="test-secret",
        sweep_interval_seconds=0.1,
        rate_limit_per_minute=0,  # tests/test_hostile.py turns it on where it is the subject
    )


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Settings for a test app on the module's server (no .env file read)."""
    return app_settings(redis_url)


@pytest.fixture
def cluster_settings(cluster_url: str) -> Settings:
    """Settings for a test app on the session's Redis Cluster."""
    return app_settings(cluster_url)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The service layer on an empty server, scripts loaded, no sweeper running."""
    client = connect_redis(settings)
    await client.flushall()
    built = Services.build(client, settings, Metrics())
    await built.scripts.load()
    try:
        yield built
    finally:
        await client.aclose()


MakeClient = Callable[..., AsyncTestClient[Any]]


@pytest.fixture
def make_client(settings: Settings, redis: Redis) -> MakeClient:
    """A client of the whole app with some settings changed, on the module's (flushed) Redis:
    ``async with make_client(rate_limit_per_minute=5) as client: ...``."""

    def make(**overrides: Any) -> AsyncTestClient[Any]:
        return AsyncTestClient(app=create_app(settings.model_copy(update=overrides)))

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> AsyncIterator[AsyncTestClient[Any]]:
    """The whole app (lifespan, sweeper) through Litestar's async test client."""
    async with make_client() as test_client:
        yield test_client


# -- a real `holdsvc serve` for the race tests -------------------------------------------------


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[ServerProcess]:
    """One server with two workers for the whole module."""
    with ServerProcess(redis_url, workers=2) as running:
        yield running


@pytest.fixture
async def http(server: ServerProcess, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to it that may open hundreds of connections at once (Redis flushed)."""
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        yield client

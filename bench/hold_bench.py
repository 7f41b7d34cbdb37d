"""Benchmark of the hold path, side by side in one run on one machine.

Measures, against one embedded Redis (AOF on, fsync as chosen) and one `holdsvc serve`:
  1. POST hold, random cells: one slot of 100,000 tables, a new user per request, holds that
     outlive the run (so a hold mostly succeeds and no expiry work is mixed in)
  2. POST hold, one hot cell: every request wants table T1 of the slot (refused but the first)
  3. GET /health of the same server: the framework's ceiling
  4. redis-benchmark EVALSHA of hold.lua with the same cell distribution: Redis's ceiling
  5. the hot-spot workload through one Python client: hold.lua vs a naive WATCH/MULTI hold
     (what people write instead), same Redis, same concurrency
and prints the ratios. Needs `wrk` and `redis-benchmark` (Debian: apt-get install wrk
redis-tools). Loopback only.

    .venv/bin/python -m bench.hold_bench [--workers 2] [--connections 64] [--duration 10]
        [--servers uvicorn,uvicorn+limit,granian] [--fsync everysec|always]
        [--baseline REV [--rounds 3]]

``--baseline REV`` also serves the same holds with the code of git revision REV (its src/ and
lua/, taken with ``git archive``) and the code of the working tree, alternately for
``--rounds`` rounds on the same Redis, and prints each round and the median ratio: what a
change on the hold path costs, measured side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.naive import naive_hold, script_hold, seed_hot_venue
from holdsvc.keys import Keys
from holdsvc.redis_server import EmbeddedRedis, free_tcp_port
from holdsvc.scripts import read_script

HERE = Path(__file__).resolve().parent
ADMIN = "bench-admin-token"
# One slot of 100,000 tables and holds that outlive the run: a random hold mostly finds its
# cell free, and no expiry work muddles the hold path (the EVALSHA run sees the same mix).
TABLES = 100_000
HOLD_SECONDS = 600


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"bench: {tool} not found (Debian: apt-get install wrk redis-tools)")
    return path


@contextlib.contextmanager
def server(
    redis_url: str, workers: int, port: int, runner: str, source: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``runner``: uvicorn or granian; ``+limit`` turns the per-client rate limit on, at a
    rate wrk from one address never reaches (the cost of counting every hold). ``source``:
    serve the code of another checkout (its src/ first on the path, its lua/ beside it)."""
    server_name, _, option = runner.partition("+")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDSVC_")}
    if source is not None:
        env["PYTHONPATH"] = str(source / "src")
    env.update(
        HOLDSVC_REDIS_URL=redis_url,
        HOLDSVC_ADMIN_TOKENS=ADMIN,
        HOLDSVC_SECRET_KEY="bench-secret",
        HOLDSVC_RATE_LIMIT_PER_MINUTE="1000000" if option == "limit" else "0",
        HOLDSVC_MAX_TABLES_PER_VENUE=str(TABLES),
        HOLDSVC_LOG_LEVEL="warning",
        HOLDSVC_SERVER=server_name,
    )
    command = [
        sys.executable,
        "-m",
        "holdsvc",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("bench: the server did not start")
            time.sleep(0.2)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def make_venue(base: str) -> tuple[str, str]:
    """A restaurant with 100,000 tables in one slot, holds outliving the run; (id, slot)."""
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
    ) as http:
        body = {
            "name": "Bench",
            "phone": "+12125550100",
            "timezone": "UTC",
            "opens": "00:00",
            "closes": "23:00",
            "hold_seconds": HOLD_SECONDS,
            "max_hold_seconds": HOLD_SECONDS,
            "max_holds_per_user": 1000,
            "max_days_ahead": 30,
        }
        rid = http.post("/v1/restaurants", json=body).json()["id"]
        for _ in range(TABLES // 500):
            http.post(f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}] * 500})
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
        http.post(f"/v1/restaurants/{rid}/slots", json={"from": day, "to": day})
    return str(rid), f"{day}T20:00"


def wrk(
    url: str, connections: int, seconds: int, script: str, env: dict[str, str]
) -> dict[str, float]:
    command = [
        need("wrk"),
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        script,
        url,
    ]
    output = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"BENCH rps=([\d.]+) p50=([\d.]+) p99=([\d.]+) errors=(\d+)", output)
    if match is None:
        raise SystemExit(f"bench: unexpected wrk output:\n{output}")
    rps, p50, p99, errors = match.groups()
    return {
        "rps": float(rps),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "socket_errors": int(errors),
    }


@contextlib.contextmanager
def sampled(probe: Any, after: float = 2.0) -> Iterator[dict[str, int]]:
    """Run ``probe`` once, ``after`` seconds into the block, in a thread; its answer lands in
    the dict yielded."""
    import threading

    found: dict[str, int] = {}
    timer = threading.Timer(after, lambda: found.update(probe()))
    timer.start()
    try:
        yield found
    finally:
        timer.cancel()


def connections_per_worker(port: int) -> dict[str, int]:
    """Established connections to the server port, per process (is the load split?)."""
    output = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return dict(Counter(re.findall(r"pid=(\d+)", output)))


async def statuses(base: str) -> dict[str, int]:
    """Hold answers by status, from /metrics (one worker's view when there are several)."""
    async with httpx.AsyncClient(base_url=base) as http:
        text = (await http.get("/metrics")).text
    found: Counter[str] = Counter()
    for status, count in re.findall(
        r'holdsvc_requests_total\{method="POST",route="/v1/restaurants/\{rid\}/holds",status="(\d+)"\} ([\d.e+]+)',
        text,
    ):
        found[status] += int(float(count))
    return dict(found)


def evalsha_ceiling(port: int, connections: int, requests: int) -> dict[str, float]:
    """redis-benchmark EVALSHA of hold.lua on a venue seeded with the same cell distribution."""

    async def seed() -> tuple[str, list[str], list[str]]:
        redis = Redis(port=port, decode_responses=True)
        venue = Keys("bench").of("EVALSHA")
        await redis.hset(
            venue.venue,
            mapping={
                "kind": "restaurant",
                "bookings_open": "1",
                "hold_seconds": str(HOLD_SECONDS),
                "max_hold_seconds": str(HOLD_SECONDS),
                "max_holds_per_user": "1000",
            },
        )
        slot = "2030-01-01T20:00"
        await redis.zadd(venue.slots, {slot: 1_893_528_000_000})
        # redis-benchmark writes __rand_int__ as 12 digits: the tables are named that way.
        tables: dict[Any, int] = {f"{n:012d}": 2 for n in range(TABLES)}
        await redis.hset(venue.units, mapping=tables)
        await redis.zadd(venue.units_by_fit, {t: 2 * 1048576 + n for n, t in enumerate(tables)})
        sha = await redis.script_load(read_script("hold"))
        await redis.aclose()
        keys = [
            venue.venue,
            venue.slots,
            venue.cells(slot),
            venue.held(slot),
            venue.holds,
            # redis-benchmark replaces __rand_int__ in the text it sends, and the app's key
            # names hash user ids (Keys.user): a user key per request is spelled out here.
            venue.user("u").rpartition(":")[0] + ":u__rand_int__",
            venue.hold("h__rand_int__"),
            venue.idempotency("u", "k"),
            venue.units,
            venue.units_by_fit,
            venue.feed,
        ]
        args = [
            "h__rand_int__",
            "digest",
            "u__rand_int__",
            slot,
            "2",
            '["__rand_int__"]',  # a JSON array of unit ids
            "1",
            "",
            "100000",
        ]
        return sha, keys, args

    sha, keys, args = asyncio.run(seed())
    command = [
        need("redis-benchmark"),
        "-p",
        str(port),
        "-c",
        str(connections),
        "-n",
        str(requests),
        "-r",
        str(TABLES),
        "-q",
        "EVALSHA",
        sha,
        str(len(keys)),
        *keys,
        *args,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"([\d.]+) requests per second, p50=([\d.]+) msec", output)
    if match is None:
        raise SystemExit(f"bench: unexpected redis-benchmark output:\n{output}")
    return {"rps": float(match.group(1)), "p50_ms": float(match.group(2))}


async def hot_spot_versus_naive(port: int, concurrency: int, seconds: float) -> dict[str, Any]:
    """The hot-spot workload from one Python client: hold.lua vs a naive WATCH/MULTI hold."""
    results: dict[str, Any] = {
        name: await hot_spot(port, concurrency, seconds, name, attempt)
        for name, attempt in (("script", script_hold), ("naive", naive_hold))
    }
    results["ratio"] = round(
        results["script"]["decisions_per_s"] / results["naive"]["decisions_per_s"], 2
    )
    return results


async def hot_spot(
    port: int, concurrency: int, seconds: float, name: str, attempt: Any
) -> dict[str, Any]:
    """``concurrency`` clients deciding holds on four cells for ``seconds``."""
    redis = Redis(port=port, decode_responses=True, max_connections=concurrency + 4)
    venue = await seed_hot_venue(redis, name)
    done = Counter[str]()
    stop = time.monotonic() + seconds

    async def client(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            done[await attempt(redis, venue, f"c{n}-{i}")] += 1

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    await redis.aclose()
    return {"decisions_per_s": round(sum(done.values()) / seconds, 1), **dict(done)}


def http_runs(
    redis_url: str, args: argparse.Namespace, runner: str, source: Path | None = None
) -> dict[str, Any]:
    """/health, random cells and the hot cell through one server."""
    port = free_tcp_port()
    figures: dict[str, Any] = {}
    with server(redis_url, args.workers, port, runner, source):
        base = f"http://127.0.0.1:{port}"
        rid, slot = make_venue(base)
        hold_env = {"HOLD_PATH": f"/v1/restaurants/{rid}/holds", "HOLD_SLOT": slot}
        run = {"connections": args.connections, "seconds": args.duration}
        wrk(base, args.connections, 2, str(HERE / "wrk/report.lua"), {})  # warm up
        figures["health"] = wrk(
            f"{base}/health", script=str(HERE / "wrk/report.lua"), env={}, **run
        )
        with sampled(lambda: connections_per_worker(port)) as split:
            figures["hold_random"] = wrk(
                f"{base}/v1/restaurants/{rid}/holds",
                script=str(HERE / "wrk/hold.lua"),
                env={**hold_env, "HOLD_TABLES": str(TABLES)},
                **run,
            )
        figures["hold_hot"] = wrk(
            f"{base}/v1/restaurants/{rid}/holds",
            script=str(HERE / "wrk/hold.lua"),
            env={**hold_env, "HOLD_TABLES": "1"},
            **run,
        )
        figures["hold_statuses_one_worker"] = asyncio.run(statuses(base))
        audit = httpx.get(
            f"{base}/v1/restaurants/{rid}/audit",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=120,
        ).json()
        figures["audit_violations"] = len(audit["violations"])
        figures["connections_per_worker"] = split
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="holdsvc hold-path benchmark")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--fsync", choices=["everysec", "always"], default="everysec")
    parser.add_argument(
        "--servers",
        default="uvicorn,uvicorn+limit,granian",
        help="comma-separated; +limit: with the rate limit counting every hold",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--baseline", help="git revision to compare the hold path with")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: A/B rounds")
    args = parser.parse_args()
    need("wrk")
    need("redis-benchmark")
    figures: dict[str, Any] = {"settings": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory() as folder:
        redis = EmbeddedRedis(
            Path(folder), port=0, unix_socket=False, appendfsync=args.fsync
        ).start()
        try:
            for runner in args.servers.split(","):
                figures[runner] = http_runs(redis.url, args, runner)
            if args.baseline:
                figures["baseline"] = baseline_rounds(redis.url, args, Path(folder))
            figures["evalsha"] = evalsha_ceiling(
                redis.port or 0,
                args.connections,
                60_000,  # fills about as many cells as the HTTP run
            )
            figures["hot_spot_client"] = asyncio.run(
                hot_spot_versus_naive(redis.port or 0, args.connections, args.duration / 2)
            )
        finally:
            redis.stop()
    report(figures, args.servers.split(","))
    if args.baseline:
        report_baseline(figures["baseline"], args.baseline)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def report(f: dict[str, Any], runners: list[str]) -> None:
    s = f["settings"]
    ceiling = f["evalsha"]
    print(
        f"holdsvc hold benchmark: {s['workers']} workers, {s['connections']} connections, "
        f"{s['duration']} s per run, AOF appendfsync {s['fsync']}, {os.cpu_count()} cores, "
        "wrk, Redis and the server on the same machine"
    )
    print(f"{'run':<44}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for runner in runners:
        r = f[runner]
        for name, key in (
            ("GET /health", "health"),
            ("POST hold, random cells", "hold_random"),
            ("POST hold, one hot cell", "hold_hot"),
        ):
            row = r[key]
            print(
                f"{runner + ' ' + name:<44}{row['rps']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            )
    print(
        f"{'EVALSHA hold.lua (redis-benchmark)':<44}{ceiling['rps']:>10.0f}{ceiling['p50_ms']:>9.2f}"
    )
    for runner in runners:
        r = f[runner]
        rand, health = r["hold_random"]["rps"], r["health"]["rps"]
        print(
            f"{runner}: hold random / health = {rand / health:.2f} (target >= 0.40), "
            f"hold random / EVALSHA = {rand / ceiling['rps']:.2f} (target >= 0.30), "
            f"p99 {r['hold_random']['p99_ms']:.1f} ms (target <= 25), "
            f"connections per worker {sorted(r['connections_per_worker'].values())}, "
            f"statuses seen by one worker {r['hold_statuses_one_worker']}, audit violations {r['audit_violations']}"
        )
    naive = f["hot_spot_client"]
    print(
        f"hot spot (4 cells) through one Python client, {s['connections']} concurrent: hold.lua "
        f"{naive['script']['decisions_per_s']:.0f}/s vs naive WATCH/MULTI "
        f"{naive['naive']['decisions_per_s']:.0f}/s -> {naive['ratio']:.2f}x"
    )


def checkout(revision: str, folder: Path) -> Path:
    """src/ and lua/ of a git revision, unpacked under ``folder``."""
    target = folder / f"rev-{revision}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision, "src", "lua"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def baseline_rounds(redis_url: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The uvicorn hold runs of REV and of the working tree, alternately, ``rounds`` times."""
    before = checkout(args.baseline, folder)
    rounds: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        rounds.append(
            {
                "before": http_runs(redis_url, args, "uvicorn", before),
                "after": http_runs(redis_url, args, "uvicorn"),
            }
        )
    return {"revision": args.baseline, "rounds": rounds}


def report_baseline(b: dict[str, Any], revision: str) -> None:
    """Each A/B round and the median ratio after / before."""
    print(f"hold path: this tree vs {revision}, uvicorn, alternately ({len(b['rounds'])} rounds)")
    ratios: dict[str, list[float]] = {"hold_random": [], "hold_hot": []}
    for n, pair in enumerate(b["rounds"], 1):
        cells = []
        for key, found in ratios.items():
            before, after = pair["before"][key]["rps"], pair["after"][key]["rps"]
            found.append(after / before)
            cells.append(f"{key} {before:.0f} -> {after:.0f} req/s ({after / before:.3f})")
        print(f"  round {n}: " + ", ".join(cells))
    for key, values in ratios.items():
        print(f"  {key}: median after/before = {sorted(values)[len(values) // 2]:.3f}")


if __name__ == "__main__":
    main()

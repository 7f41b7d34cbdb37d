"""Instructions the app executes per POST hold, counted by valgrind: bench/asgi_cpu's hold
loop (and only it: the setup, the warm-up and /health are not counted) for the working tree
and for ``--baseline`` revisions, side by side in one run.

CPU time per request (bench/asgi_cpu) moves by a third between two runs of the same code when
the two cores are shared; an instruction count does not depend on the load. It counts this
process only (Redis runs in another), on the same requests for every tree.

    .venv/bin/python -m bench.asgi_instructions [--baseline REV ...] [--requests 1500]
        [--tables 5000] [--configs plain,rate,pooled]

Needs valgrind (Debian: apt-get install valgrind); about half a minute per tree and
configuration. ``--tables`` is smaller than asgi_cpu's 100,000 to keep the setup short under
valgrind: a few more holds are refused (409), the same share for every tree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import bench.asgi_cpu as asgi_cpu
from bench.hold_bench import checkout
from holdsvc.redis_server import EmbeddedRedis

# name: (pipelining, rate limit per minute), as bench/asgi_cpu runs them
CONFIGS = {"plain": (True, 0), "rate": (True, 1_000_000), "pooled": (False, 0)}
COUNTED = 4  # asgi_cpu.main measures: /health warm-up, /health, hold warm-up, hold


def callgrind(switch: str) -> None:
    """Turn callgrind's counting on or off in this process (blocking: nothing else runs on
    the loop meanwhile, so nothing else is counted)."""
    command = ["callgrind_control", "-i", switch, str(os.getpid())]
    subprocess.run(command, check=True, capture_output=True)


def child(config: str, requests: int, tables: int) -> None:
    """Run asgi_cpu's main with callgrind's counting on around the measured hold loop only."""
    measure = asgi_cpu.measure
    calls = 0

    async def counted(
        app: Any, requests: int, concurrency: int, make: Any
    ) -> tuple[float, dict[int, int]]:
        nonlocal calls
        calls += 1
        if calls < COUNTED:
            # Warm-ups and /health: enough to warm the caches, not counted.
            return await measure(app, 300 if calls == COUNTED - 1 else 10, concurrency, make)
        callgrind("on")
        try:
            return await measure(app, requests, concurrency, make)
        finally:
            callgrind("off")

    asgi_cpu.measure = counted
    asgi_cpu.TABLES = tables
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), port=0, unix_socket=False) as server,
    ):
        asyncio.run(asgi_cpu.main(requests, 64, server.url, *CONFIGS[config]))


def count(source: Path | None, config: str, requests: int, tables: int) -> tuple[int, str]:
    """Instructions of ``requests`` holds with the code of ``source`` (None: this tree)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source / "src")
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={folder}/callgrind.out",
                sys.executable,
                "-m",
                "bench.asgi_instructions",
                "--child",
                config,
                "--requests",
                str(requests),
                "--tables",
                str(tables),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    collected = re.search(r"Collected : (\d+)", run.stderr)
    statuses = re.search(r"POST hold.*?(\{.*\})", run.stdout)
    if collected is None or statuses is None:
        raise SystemExit(f"bench: no count from valgrind\n{run.stdout}\n{run.stderr[-2000:]}")
    return int(collected.group(1)), statuses.group(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", action="append", default=[], help="git revision")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--configs", default="plain,rate,pooled")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, args.tables)
        return
    with tempfile.TemporaryDirectory() as folder:
        trees: list[tuple[str, Path | None]] = [
            (revision, checkout(revision, Path(folder))) for revision in args.baseline
        ]
        trees.append(("this tree", None))
        print(f"instructions per POST hold inside the app ({args.requests} holds, valgrind)")
        for config in args.configs.split(","):
            first = 0
            for name, source in trees:
                instructions, statuses = count(source, config, args.requests, args.tables)
                per_hold = instructions / args.requests
                first = first or int(per_hold)
                print(
                    f"  {config:<7} {name:<10} {per_hold / 1000:8.1f} k"
                    f"   x{per_hold / first:.3f}   {statuses}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""``holdsvc loadtest``: many virtual guests against a running server, then proof it held up.

Each virtual user loops: hold a table (best fit, or one of a few hot cells), maybe refresh it,
then confirm it (sometimes cancelling afterwards) or release it. The run is bounded by time
and by a request budget, targets loopback unless told otherwise, shows its progress, and ends
with throughput, latency percentiles, answers by status and error code, and an invariant
check read back from the server: the audit of the venue, and every reservation a guest saw
confirmed present (cancelled where the guest saw it cancelled).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx


@dataclass
class LoadConfig:
    """One load test run."""

    url: str
    admin_token: str
    users: int = 50
    duration: float = 20.0
    max_requests: int = 200_000
    hotspot: bool = False
    hot_cells: int = 2
    tables: int = 20
    confirm_ratio: float = 0.5
    refresh_ratio: float = 0.3
    cancel_ratio: float = 0.2
    seed: int = 1
    progress: bool = True


@dataclass
class Tally:
    """Everything the virtual users saw."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    confirmed: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    transport_errors: int = 0
    requests: int = 0

    def record(self, kind: str, started: float, response: httpx.Response) -> None:
        self.requests += 1
        self.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        self.statuses[response.status_code] += 1
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            self.codes[str(response.json().get("code"))] += 1


def is_loopback(url: str) -> bool:
    """True for http(s) URLs on 127.0.0.0/8, ::1 or localhost."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile of ``values`` (nearest rank), in milliseconds."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


class LoadTest:
    """Sets up a venue, runs the virtual users, checks the invariants."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.tally = Tally()
        self.rng = random.Random(config.seed)
        self.deadline = 0.0
        self.venue = ""
        self.slots: list[str] = []

    async def run(self) -> dict[str, Any]:
        """The whole run; returns the report."""
        limits = httpx.Limits(
            max_connections=self.config.users + 8, max_keepalive_connections=self.config.users + 8
        )
        async with httpx.AsyncClient(base_url=self.config.url, timeout=30, limits=limits) as http:
            await self._setup(http)
            started = time.perf_counter()
            self.deadline = time.monotonic() + self.config.duration
            reporter = (
                asyncio.create_task(self._progress(started)) if self.config.progress else None
            )
            await asyncio.gather(*(self._user(http, n) for n in range(self.config.users)))
            elapsed = time.perf_counter() - started
            if reporter is not None:
                reporter.cancel()
                print(file=sys.stderr)
            check = await self._check(http)
        return self._report(elapsed, check)

    async def _setup(self, http: httpx.AsyncClient) -> None:
        admin = {"Authorization": f"Bearer {self.config.admin_token}"}
        body = {
            "name": "Load test",
            "phone": "+12125550100",
            "timezone": "UTC",
            "opens": "10:00",
            "closes": "22:00",
            "hold_seconds": 30,
            "max_hold_seconds": 60,
            "max_holds_per_user": 3,
        }
        created = await http.post("/v1/restaurants", json=body, headers=admin)
        if created.status_code != 201:
            raise SystemExit(
                f"loadtest: cannot create the venue: {created.status_code} {created.text}"
            )
        self.venue = created.json()["id"]
        tables = {"tables": [{"capacity": 2 + (n % 4) * 2} for n in range(self.config.tables)]}
        await http.post(f"/v1/restaurants/{self.venue}/tables", json=tables, headers=admin)
        day = (datetime.now(UTC) + timedelta(days=2)).date()
        last = day + timedelta(days=6)
        span = {"from": day.isoformat(), "to": last.isoformat()}
        await http.post(f"/v1/restaurants/{self.venue}/slots", json=span, headers=admin)
        self.slots = [f"{day + timedelta(days=d)}T{h}:00" for d in range(7) for h in range(10, 22)]

    def _budget_left(self) -> bool:
        return time.monotonic() < self.deadline and self.tally.requests < self.config.max_requests

    async def _user(self, http: httpx.AsyncClient, number: int) -> None:
        while self._budget_left():
            try:
                await self._visit(http, f"vu{number}")
            except httpx.HTTPError:
                self.tally.transport_errors += 1
                await asyncio.sleep(0.05)

    async def _call(
        self, kind: str, http: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        started = time.perf_counter()
        response = await http.request(method, path, **kwargs)
        self.tally.record(kind, started, response)
        return response

    async def _visit(self, http: httpx.AsyncClient, user: str) -> None:
        config, rng = self.config, self.rng
        body: dict[str, Any] = {"user_id": user, "party_size": 2}
        if config.hotspot:
            body["slot"] = self.slots[0]
            body["table_id"] = f"T{rng.randint(1, config.hot_cells)}"
        else:
            body["slot"] = rng.choice(self.slots)
        held = await self._call(
            "hold", http, "POST", f"/v1/restaurants/{self.venue}/holds", json=body
        )
        if held.status_code != 201:
            return
        hold = held.json()
        token = {"Hold-Token": hold["token"]}
        path = f"/v1/restaurants/{self.venue}/holds/{hold['id']}"
        if rng.random() < config.refresh_ratio and self._budget_left():
            await self._call("refresh", http, "POST", f"{path}/refresh", headers=token)
        if rng.random() >= config.confirm_ratio or not self._budget_left():
            await self._call("release", http, "DELETE", path, headers=token)
            return
        guest = {"name": f"Guest {user}", "phone": f"+1212555{rng.randint(1000, 9999)}"}
        confirmed = await self._call(
            "confirm", http, "POST", f"{path}/confirm", json=guest, headers=token
        )
        if confirmed.status_code not in (200, 201):
            return
        reservation = confirmed.json()
        self.tally.confirmed.add(reservation["reference"])
        if rng.random() < config.cancel_ratio and "manage_token" in reservation:
            manage = {"Manage-Token": reservation["manage_token"]}
            answer = await self._call(
                "cancel",
                http,
                "DELETE",
                f"/v1/reservations/{reservation['reference']}",
                headers=manage,
            )
            if answer.status_code == 200:
                self.tally.cancelled.add(reservation["reference"])

    async def _progress(self, started: float) -> None:
        width = 30
        while True:
            elapsed = time.perf_counter() - started
            share = min(1.0, elapsed / self.config.duration)
            bar = "#" * int(share * width)
            rate = self.tally.requests / elapsed if elapsed else 0.0
            print(
                f"\r[{bar:<{width}}] {elapsed:5.1f}/{self.config.duration:.0f} s  "
                f"{self.tally.requests} requests  {rate:7.0f} req/s",
                end="",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(0.5)

    async def _check(self, http: httpx.AsyncClient) -> dict[str, Any]:
        """Read back from the server: the audit, and every acknowledged reservation."""
        admin = {"Authorization": f"Bearer {self.config.admin_token}"}
        audit = (await http.get(f"/v1/restaurants/{self.venue}/audit", headers=admin)).json()
        status_of: dict[str, str] = {}
        params: dict[str, str] = {}
        while True:  # every page of the list
            listed = (
                await http.get(
                    f"/v1/restaurants/{self.venue}/reservations", headers=admin, params=params
                )
            ).json()
            status_of |= {r["reference"]: r["status"] for r in listed["reservations"]}
            if not listed.get("next_cursor"):
                break
            params = {"cursor": listed["next_cursor"]}
        missing = sorted(self.tally.confirmed - set(status_of))
        wrong = sorted(r for r in self.tally.cancelled if status_of.get(r) != "cancelled")
        unknown = sorted(set(status_of) - self.tally.confirmed)  # a reservation nobody confirmed
        return {
            "audit_ok": audit.get("ok", False),
            "audit_violations": audit.get("violations", []),
            "reservations_on_server": len(status_of),
            "confirmed_seen_by_clients": len(self.tally.confirmed),
            "missing": missing,
            "cancel_not_applied": wrong,
            "unacknowledged_on_server": unknown,
        }

    def _report(self, elapsed: float, check: dict[str, Any]) -> dict[str, Any]:
        latencies = {
            kind: {
                "count": len(values),
                "p50_ms": round(percentile(values, 0.50), 2),
                "p95_ms": round(percentile(values, 0.95), 2),
                "p99_ms": round(percentile(values, 0.99), 2),
            }
            for kind, values in sorted(self.tally.latencies.items())
        }
        every = [v for values in self.tally.latencies.values() for v in values]
        ok = (
            check["audit_ok"]
            and not check["missing"]
            and not check["cancel_not_applied"]
            and self.tally.statuses.get(500, 0) == 0
        )
        return {
            "venue": self.venue,
            "mode": "hotspot" if self.config.hotspot else "mixed",
            "users": self.config.users,
            "seconds": round(elapsed, 2),
            "requests": self.tally.requests,
            "throughput_rps": round(self.tally.requests / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(percentile(every, 0.50), 2),
            "p95_ms": round(percentile(every, 0.95), 2),
            "p99_ms": round(percentile(every, 0.99), 2),
            "by_request": latencies,
            "statuses": dict(sorted(self.tally.statuses.items())),
            "error_codes": dict(sorted(self.tally.codes.items())),
            "transport_errors": self.tally.transport_errors,
            "invariants": check,
            "ok": ok,
            "hints": hints(self.tally.codes),
        }


def hints(codes: Mapping[str, int]) -> list[str]:
    """What the answers say about the run itself, not about the service's correctness."""
    said = []
    if codes.get("rate_limited"):
        said.append(
            f"{codes['rate_limited']} requests were refused as rate_limited: the server limits "
            "hold requests per client address (HOLDSVC_RATE_LIMIT_PER_MINUTE). To measure the "
            "hold path from one machine, run the server under test with it set to 0."
        )
    return said


def print_report(report: dict[str, Any]) -> None:
    """The human summary."""
    inv = report["invariants"]
    lines = [
        f"holdsvc loadtest: {report['mode']}, {report['users']} users, venue {report['venue']}",
        f"  {report['requests']} requests in {report['seconds']} s"
        f" = {report['throughput_rps']} req/s",
        f"  latency p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms,"
        f" p99 {report['p99_ms']} ms",
    ]
    for kind, row in report["by_request"].items():
        lines.append(
            f"    {kind:<8} {row['count']:>7}  p50 {row['p50_ms']:>7} ms"
            f"  p95 {row['p95_ms']:>7} ms  p99 {row['p99_ms']:>7} ms"
        )
    lines += [
        f"  statuses {report['statuses']}  error codes {report['error_codes']}"
        f"  transport errors {report['transport_errors']}",
        f"  invariants: audit {'clean' if inv['audit_ok'] else 'VIOLATED'}"
        f" ({len(inv['audit_violations'])} violations),"
        f" {inv['confirmed_seen_by_clients']} confirms acknowledged,"
        f" {inv['reservations_on_server']} on the server, {len(inv['missing'])} missing,"
        f" {len(inv['cancel_not_applied'])} cancels not applied",
        *(f"  note: {hint}" for hint in report["hints"]),
        "  OK" if report["ok"] else "  FAILED",
    ]
    print("\n".join(lines))

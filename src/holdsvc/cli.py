"""The ``holdsvc`` command: ``serve`` the API, or load a ``demo`` restaurant into a running one."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import msgspec
import uvicorn
from redis.exceptions import RedisClusterException, RedisError

from holdsvc import slots as timegrid
from holdsvc.audit import Auditor, AuditReport
from holdsvc.connection import connect_redis
from holdsvc.errors import NotFound
from holdsvc.keys import Keys
from holdsvc.loadtest import LoadConfig, LoadTest, is_loopback, print_report
from holdsvc.redis_server import EmbeddedRedis, EmbeddedRedisError
from holdsvc.scripts import Scripts
from holdsvc.settings import Settings
from holdsvc.staff import Role, StaffTokens
from holdsvc.transfer import BadFile, Transfer, TransferError, read_venues
from holdsvc.venues import VenueKind, Venues

__all__ = ["main"]

DEMO_TIMEZONE = "America/New_York"
DEMO_CAPACITIES = (2, 2, 4, 4, 6, 8)
DEMO_DAYS = 14


class CliError(Exception):
    """A failure worth one line on stderr, not a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``holdsvc`` command line.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        The process exit status.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    try:
        return command(args)
    except CliError as exc:
        print(f"holdsvc {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="holdsvc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (starts an embedded redis-server when HOLDSVC_REDIS_URL is unset)",
    )
    serve.add_argument("--host", help="bind address (default: HOLDSVC_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default: HOLDSVC_PORT, 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default: HOLDSVC_WORKERS, 1)")
    serve.add_argument(
        "--server", choices=["uvicorn", "granian"], help="HTTP server (default: HOLDSVC_SERVER)"
    )
    serve.set_defaults(run=serve_command)

    demo = commands.add_parser("demo", help="create a sample restaurant in a running server")
    demo.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the server")
    demo.add_argument(
        "--admin-token",
        help="admin token (default: first of HOLDSVC_ADMIN_TOKENS, else <data_dir>/admin_token)",
    )
    demo.set_defaults(run=demo_command)

    load = commands.add_parser(
        "loadtest", help="many virtual guests against a running server, then an invariant check"
    )
    load.add_argument("--url", default="http://127.0.0.1:8000", help="base URL (loopback)")
    load.add_argument("--admin-token", help="admin token (default as for demo)")
    load.add_argument("--users", type=int, default=50, help="concurrent virtual users")
    load.add_argument("--duration", type=float, default=20.0, help="seconds to run (at most)")
    load.add_argument("--max-requests", type=int, default=200_000, help="request budget")
    load.add_argument("--hotspot", action="store_true", help="everyone fights over a few cells")
    load.add_argument("--hot-cells", type=int, default=2, help="cells in hot-spot mode")
    load.add_argument("--seed", type=int, default=1, help="random seed")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument("--no-progress", action="store_true", help="no progress bar")
    load.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback URL (your own servers)"
    )
    load.set_defaults(run=loadtest_command)

    audit = commands.add_parser(
        "audit", help="check venues against every invariant (read-only unless --repair)"
    )
    audit.add_argument("venues", nargs="*", help="venue ids (default: every venue)")
    audit.add_argument("--json", action="store_true", help="print the reports as JSON")
    audit.add_argument(
        "--repair",
        action="store_true",
        help="put venues missing from the list of venues back on it, and free cells reserved "
        "by a reservation that does not own them (each checked again as it is freed)",
    )
    audit.set_defaults(run=audit_command)

    staff = commands.add_parser(
        "staff-token", help="create, list or revoke a venue's staff tokens (HOLDSVC_REDIS_URL)"
    )
    staff_commands = staff.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = staff_commands.add_parser("create", help="a new token; printed once")
    create.add_argument("venue", help="venue id")
    create.add_argument("name", help="who or what holds it, 1..80 characters")
    create.add_argument("--role", choices=[role.value for role in Role], default=Role.HOST.value)
    listing = staff_commands.add_parser("list", help="a venue's tokens (never the tokens)")
    listing.add_argument("venue", help="venue id")
    revoke = staff_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("venue", help="venue id")
    revoke.add_argument("token_id", help="the token's id (from list)")
    staff.set_defaults(run=staff_token_command)
    _add_transfer_commands(commands)
    return parser


# -- serve ---------------------------------------------------------------------------------


def serve_command(args: argparse.Namespace) -> int:
    """Run uvicorn on ``holdsvc.app:create_app``, with an embedded Redis if no URL is set.

    Secrets the workers must share (the signing key, an admin token) are read from or created
    in the data dir and exported, so every worker process sees the same values.

    Args:
        args: ``host``, ``port`` and ``workers``, each None for the settings' value.

    Returns:
        0 once uvicorn has stopped (the embedded Redis is stopped too).

    Raises:
        CliError: When the embedded Redis cannot start.
    """
    settings = Settings()
    data_dir = settings.data_dir
    embedded: EmbeddedRedis | None = None
    if settings.redis_url:
        _say(f"using Redis at {_redact(settings.redis_url)}")
    else:
        embedded = EmbeddedRedis(data_dir, appendfsync=settings.appendfsync)
        try:
            embedded.start()
        except EmbeddedRedisError as exc:
            raise CliError(str(exc)) from exc
        os.environ["HOLDSVC_REDIS_URL"] = embedded.url
        _say(
            f"no HOLDSVC_REDIS_URL set, started embedded redis-server ({embedded.version}) "
            f"at {embedded.url}, data and AOF in {data_dir}/"
        )
    try:
        if settings.secret_key is None or not settings.secret_key.get_secret_value():
            os.environ["HOLDSVC_SECRET_KEY"] = _read_or_create_secret(data_dir / "secret_key")
        if not settings.admin_tokens:
            token_file = data_dir / "admin_token"
            token = _read_or_create_secret(token_file)
            os.environ["HOLDSVC_ADMIN_TOKENS"] = token
            _say(f"no HOLDSVC_ADMIN_TOKENS set; admin token (kept in {token_file}): {token}")
        host = args.host if args.host is not None else settings.host
        port = args.port if args.port is not None else settings.port
        workers = args.workers if args.workers is not None else settings.workers
        server = args.server or settings.server
        run_server(server, host, port, workers, settings.log_level)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


APP = "holdsvc.app:create_app"


def run_server(server: str, host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the app with uvicorn or granian until told to stop."""
    if server == "granian":
        # Rust HTTP/1 server: less CPU per request than uvicorn's Python protocol code.
        from granian import Granian  # noqa: PLC0415 - only when chosen
        from granian.constants import Interfaces  # noqa: PLC0415

        Granian(
            APP,
            factory=True,
            address=host,
            port=port,
            workers=workers,
            interface=Interfaces.ASGI,
            log_level=log_level,  # type: ignore[arg-type]
            log_access=False,
            respawn_failed_workers=True,
        ).serve()
        return
    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        # uvicorn's access log prints query strings (phones, manage tokens in page links);
        # the app logs its own access lines with the route template instead.
        access_log=False,
    )


def _say(message: str) -> None:
    print(f"holdsvc: {message}", file=sys.stderr, flush=True)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _read_or_create_secret(path: Path) -> str:
    """The secret stored in `path`, or a new random one written there with mode 0600."""
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret


# -- demo ----------------------------------------------------------------------------------


def _demo_event_start(day: date) -> str:
    """8 pm local on ``day`` in the demo's zone, as RFC 3339."""
    start = datetime.combine(day, time(20, 0), tzinfo=ZoneInfo(DEMO_TIMEZONE))
    return start.isoformat()


def demo_command(args: argparse.Namespace) -> int:
    """Create a sample restaurant with 6 tables and two weeks of slots in a running server.

    Args:
        args: ``url`` of the server and ``admin_token`` (None for the default).

    Returns:
        0 on success.

    Raises:
        CliError: When no admin token is known, the server is unreachable, or it refuses a step.
    """
    settings = Settings()
    token = args.admin_token or _default_admin_token(settings)
    base = args.url.rstrip("/")
    today = _today(DEMO_TIMEZONE)
    last = today + timedelta(days=DEMO_DAYS - 1)
    with httpx.Client(
        base_url=base, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
    ) as client:

        def call(method: str, path: str, **kwargs: Any) -> Any:
            try:
                response = client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise CliError(
                    f"cannot reach {base} ({exc}); is `holdsvc serve` running there?"
                ) from exc
            if response.is_error:
                raise CliError(f"{method} {path} answered {_describe_error(response)}")
            return response.json() if response.content else None

        restaurant = call(
            "POST",
            "/v1/restaurants",
            json={
                "name": "Demo Bistro",
                "phone": "+1 212 555 0100",
                "timezone": DEMO_TIMEZONE,
                "opens": "17:00",
                "closes": "23:00",
                "address": "12 Mulberry Street, New York, NY 10013",
                "description": "Seasonal plates and a short natural-wine list.",
            },
        )
        rid = restaurant["id"]
        tables = [
            {"capacity": capacity, "label": f"Window {n}" if n <= 2 else f"Table {n}"}
            for n, capacity in enumerate(DEMO_CAPACITIES, start=1)
        ]
        call("POST", f"/v1/restaurants/{rid}/tables", json={"tables": tables})
        slots = call(
            "POST",
            f"/v1/restaurants/{rid}/slots",
            json={"from": today.isoformat(), "to": last.isoformat()},
        )
        window = {"from": today.isoformat(), "to": last.isoformat(), "party_size": 2}
        free = call("GET", f"/v1/restaurants/{rid}/availability", params=window)
        first_slot = free["slots"][0]["slot"] if free and free.get("slots") else None
        event = call(
            "POST",
            "/v1/events",
            json={
                "name": "Demo Jazz Night",
                "starts_at": _demo_event_start(today + timedelta(days=7)),
                "timezone": DEMO_TIMEZONE,
                "total_seats": 60,
                "address": "12 Mulberry Street, New York, NY 10013",
            },
        )

    slot = first_slot or f"{(today + timedelta(days=1)).isoformat()}T19:00"
    hold = json.dumps({"user_id": "demo-user", "slot": slot, "party_size": 2})
    venue = f"{base}/v1/restaurants/{rid}"
    print(
        f"Created restaurant {restaurant.get('name', 'Demo Bistro')!r} (id {rid}) with "
        f"{len(tables)} tables ({', '.join(map(str, DEMO_CAPACITIES))} seats) and "
        f"{slots.get('created', '?')} slots from {today} to {last}.\n"
        f"\n"
        f"Admin token: {token}\n"
        f"\n"
        f"Also created event {event.get('name', 'Demo Jazz Night')!r} (id {event['id']}) "
        f"with {event.get('total_seats', 60)} seats.\n"
        f"\n"
        f"Pages:\n"
        f"  home          {base}/\n"
        f"  guest         {base}/r/{rid}\n"
        f"  event         {base}/e/{event['id']}\n"
        f"  staff         {base}/staff/{rid}\n"
        f"  admin         {base}/admin\n"
        f"\n"
        f"Try:\n"
        f"  availability  {venue}/availability?from={today}&to={last}&party_size=2\n"
        f"  all slots     {venue}/slots?from={today}&to={today}\n"
        f"  API docs      {base}/schema  (OpenAPI JSON: {base}/schema/openapi.json)\n"
        f"  metrics       {base}/metrics\n"
        f"\n"
        f"Hold a table:\n"
        f"  curl -sS -X POST {venue}/holds -H 'Content-Type: application/json' -d '{hold}'"
    )
    return 0


# -- loadtest and audit ----------------------------------------------------------------------


def loadtest_command(args: argparse.Namespace) -> int:
    """Run virtual guests against a server; exit 1 when an invariant was broken."""
    if not args.allow_remote and not is_loopback(args.url):
        raise CliError(
            f"{args.url} is not a loopback address; pass --allow-remote for your own servers"
        )
    if not 1 <= args.users <= 5000 or args.duration <= 0 or args.max_requests < 1:
        raise CliError("--users is 1..5000; --duration and --max-requests must be positive")
    config = LoadConfig(
        url=args.url.rstrip("/"),
        admin_token=args.admin_token or _default_admin_token(Settings()),
        users=args.users,
        duration=args.duration,
        max_requests=args.max_requests,
        hotspot=args.hotspot,
        hot_cells=args.hot_cells,
        seed=args.seed,
        progress=not args.no_progress and not args.json,
    )
    try:
        report = asyncio.run(LoadTest(config).run())
    except httpx.HTTPError as exc:
        raise CliError(
            f"cannot reach {args.url} ({exc}); is `holdsvc serve` running there?"
        ) from exc
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0 if report["ok"] else 1


def audit_command(args: argparse.Namespace) -> int:
    """Audit venues straight from Redis (HOLDSVC_REDIS_URL); exit 1 on any violation."""
    settings = Settings()
    if not settings.redis_url:
        raise CliError("set HOLDSVC_REDIS_URL to the Redis to audit (the server's own)")
    reports = asyncio.run(_audit(settings, list(args.venues), repair=args.repair))
    if args.json:
        print(json.dumps([msgspec.to_builtins(r) for r in reports], indent=2))
    for report in reports if not args.json else []:
        state = "ok" if report.ok else f"{len(report.violations)} VIOLATIONS"
        print(f"{report.venue_id}: {state}  (checked {report.checked})")
        for violation in report.violations:
            print(f"  - {violation.check}: {violation.detail}  {msgspec.to_builtins(violation)}")
    return 0 if all(r.ok for r in reports) else 1


def staff_token_command(args: argparse.Namespace) -> int:
    """Create, list or revoke staff tokens straight in Redis, for operators without the page."""
    settings = Settings()
    if not settings.redis_url:
        raise CliError("set HOLDSVC_REDIS_URL to the server's Redis")
    if args.action == "create" and not 1 <= len(args.name) <= 80:
        raise CliError("a token's name is 1..80 characters")
    return asyncio.run(_staff_token(settings, args))


async def _staff_token(settings: Settings, args: argparse.Namespace) -> int:
    redis = connect_redis(settings)
    try:
        keys = Keys(settings.key_prefix)
        tokens = StaffTokens(redis, keys, Venues(redis, keys, settings))
        try:
            if args.action == "create":
                token, secret = await tokens.create(args.venue, args.name, Role(args.role))
                print(f"{token.id}\t{token.role}\t{token.name}", file=sys.stderr)
                print(secret)  # the only time it is shown
            elif args.action == "list":
                for token in await tokens.list(args.venue):
                    used = token.last_used_ms if token.last_used_ms is not None else "never"
                    print(f"{token.id}\t{token.role}\t{token.name}\tlast used {used}")
            else:
                await tokens.revoke(args.venue, args.token_id)
                print(f"revoked {args.token_id}", file=sys.stderr)
        except NotFound as exc:
            raise CliError(str(exc)) from exc
        return 0
    finally:
        await redis.aclose()


async def _audit(
    settings: Settings, venue_ids: list[str], *, repair: bool = False
) -> list[AuditReport]:
    redis = connect_redis(settings)
    try:
        keys = Keys(settings.key_prefix)
        auditor = Auditor(redis, keys)
        if not venue_ids:
            for venue_kind in VenueKind:
                venue_ids += await redis.zrange(keys.venues(venue_kind), 0, -1)
            # Venues a crash left off the list (written after the venue): audited too.
            unlisted = await auditor.unlisted_venues()
            venue_ids += sorted(unlisted)
            for venue_id, (kind, created) in sorted(unlisted.items()) if repair else []:
                await auditor.relist(venue_id, kind, created)
                print(f"{venue_id}: put back on the list of {kind}s", file=sys.stderr)
        scripts = Scripts(
            redis,
            feed_maxlen=settings.feed_maxlen,
            tombstone_seconds=settings.hold_tombstone_seconds,
        )
        reports = []
        for venue_id in venue_ids:
            try:
                report = await auditor.audit(venue_id)
            except NotFound as exc:
                raise CliError(f"no venue {venue_id}") from exc
            if repair and not report.ok and await _free_stuck_cells(auditor, report, scripts):
                report = await auditor.audit(venue_id)  # what is left after the repair
            reports.append(report)
        return reports
    finally:
        await redis.aclose()


async def _free_stuck_cells(auditor: Auditor, report: AuditReport, scripts: Scripts) -> int:
    """The repair of cells no live reservation owns; how many it freed (said on stderr)."""
    freed = await auditor.free_stuck_cells(report, scripts)
    for violation in freed:
        print(
            f"{report.venue_id}: freed {violation.slot} {violation.unit}"
            f" (reserved by {violation.reference}: {violation.detail})",
            file=sys.stderr,
        )
    return len(freed)


def _default_admin_token(settings: Settings) -> str:
    for token in settings.admin_tokens:
        if not token.startswith("sha256:"):  # a digest cannot be sent
            return token
    token_file = settings.data_dir / "admin_token"
    try:
        token = token_file.read_text().strip()
    except OSError:
        token = ""
    if not token:
        raise CliError(
            f"no admin token: pass --admin-token, set HOLDSVC_ADMIN_TOKENS, or run "
            f"`holdsvc serve` here once (it writes {token_file})"
        )
    return token


def _today(timezone: str) -> date:
    try:
        return datetime.now(ZoneInfo(timezone)).date()
    except ZoneInfoNotFoundError:
        return date.today()  # no tz database: the local date is close enough


def _describe_error(response: httpx.Response) -> str:
    summary = f"{response.status_code} {response.reason_phrase}"
    try:
        problem = response.json()
    except ValueError:
        return summary
    if isinstance(problem, dict):
        code, detail = problem.get("code"), problem.get("detail") or problem.get("title")
        summary += "".join(f": {part}" for part in (code, detail) if part)
    return summary


# -- export, import, archive -----------------------------------------------------------------


def _add_transfer_commands(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="write venues (settings, tables, slots, reservations) to stdout as JSON lines",
    )
    export.add_argument("venues", nargs="*", help="venue ids (default: every venue)")
    export.set_defaults(run=export_command)

    restore = commands.add_parser(
        "import", help="restore venues from an export file into a Redis that has none of them"
    )
    restore.add_argument("file", help="a file `holdsvc export` wrote ('-': stdin)")
    restore.set_defaults(run=import_command)

    archive = commands.add_parser(
        "archive",
        help="remove slots that ended before DATE with their reservations, "
        "writing them to stdout first (export format)",
    )
    archive.add_argument(
        "--before", required=True, type=_date_argument, metavar="DATE", help="YYYY-MM-DD"
    )
    archive.add_argument("venues", nargs="*", help="venue ids (default: every venue)")
    archive.set_defaults(run=archive_command)


def _date_argument(text: str) -> date:
    try:
        return timegrid.parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def export_command(args: argparse.Namespace) -> int:
    """Write venues to stdout as JSON lines; a summary on stderr."""
    counts = _run_transfer(lambda transfer: transfer.export(args.venues, sys.stdout))
    summary = ", ".join(f"{n} {kind} lines" for kind, n in sorted(counts.items()))
    _say(f"exported {summary or 'nothing: no venues'}")
    return 0


def import_command(args: argparse.Namespace) -> int:
    """Restore the venues of an export file; exit 2 for a bad file, 1 when a venue exists."""
    try:
        venues = read_venues(args.file)
    except BadFile as exc:
        print(f"holdsvc import: {exc}", file=sys.stderr)
        return 2
    report = _run_transfer(lambda transfer: transfer.import_venues(venues))
    for venue_id, counts in report.venues.items():
        _say(f"imported {venue_id}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    if not report.venues:
        _say("nothing to import: the file has no venues")
    return 0


def archive_command(args: argparse.Namespace) -> int:
    """Archive ended slots to stdout; a summary per venue on stderr."""
    reports = _run_transfer(lambda transfer: transfer.archive(args.before, args.venues, sys.stdout))
    for report in reports:
        kept = f"; kept {len(report.kept)} ended slots" if report.kept else ""
        _say(
            f"{report.venue_id}: archived {report.slots} slots with "
            f"{report.reservations} reservations{kept}"
        )
        for slot, why in sorted(report.kept.items()):
            _say(f"  kept {slot}: {why}")
    return 0


R = TypeVar("R")


def _run_transfer(action: Callable[[Transfer], Awaitable[R]]) -> R:
    """Run an export, import or archive on the configured Redis (HOLDSVC_REDIS_URL)."""
    settings = Settings()
    if not settings.redis_url:
        raise CliError("set HOLDSVC_REDIS_URL to the Redis of the venues")

    async def run() -> R:
        redis = connect_redis(settings)
        try:
            return await action(Transfer.build(redis, settings))
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except TransferError as exc:
        raise CliError(str(exc)) from exc
    except (RedisError, RedisClusterException, OSError) as exc:
        raise CliError(f"Redis at {_redact(settings.redis_url)}: {exc}") from exc

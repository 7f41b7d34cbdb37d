"""Export, import and archive venues as JSON lines (``holdsvc export | import | archive``).

The format: one JSON object per line, each with its ``type``, the format ``version`` and the
``venue`` id it belongs to; lines of several venues may follow each other in any order, and
a later line for the same thing (the same venue, unit, slot or reservation) replaces an
earlier one. Types:

- ``venue``: every field of the venue hash, as stored (so new settings travel unchanged),
  and ``listed``: its score in the list of venues (null: it was not listed).
- ``unit``: a table or seat: ``id``, ``capacity``, ``label`` and ``fit`` (its best-fit rank).
- ``slot``: ``id``, ``starts`` (epoch ms) and ``reserved``: unit -> reference of every cell a
  reservation claims. Live holds are not exported: they last minutes.
- ``reservation``: ``id`` (the reference) and every field of its hash, manage token digest
  included, so manage links keep working after an import.
- ``staff_token``: ``id``, ``digest`` (the token's SHA-256: the token itself is never stored,
  so never written), ``record``: its stored record (id, name, role, created...) and
  ``last_used`` (epoch ms, or null). A revoked token has no record: it is not written.
- ``closure``: a restaurant's closed dates, ``first`` to ``last`` inclusive, and ``reason``.
- ``combination``: a restaurant's tables pushed together: ``id``, ``tables``, ``capacity`` and
  ``seq`` (its creation order, the low bits of its best-fit rank).

A new kind of record is a new ``_Line`` subclass with its ``tag``, written by the exporter and
stored by ``VenueData.add`` (a reader that does not know a type refuses the file rather than
dropping what it cannot store). That is why adding a type keeps the format version: a holdsvc
that predates it refuses the file by the type's name, and files without it (written before it
existed) still import. The version changes only when a type's lines change their meaning.
(``staff_token`` and ``closure`` came after version 1's first lines: a file written before them
carries no staff tokens, which must be created again, and no closures; ``combination`` came
with durations, combinations and pacing. A booking of several slots is listed in the
``reserved`` cells of each of its slots. The rule indexes of pacing and one booking per guest
are not written: an import builds them again from the reservations' fields.)

Reads are consistent per slot (one MULTI: the slot, its cells and its reservations) while the
venue takes bookings. The venue's hash, units, staff tokens, closures and grid (the slot ids)
are read together in one MULTI first, so the grid's ``grid_version`` and ``grid_filled`` marker
(its hash fields) agree with the closures and slots written: after an import into an empty
Redis the rolling grid goes on from the marker (adding only the days it did not reach) and
slots removed on purpose stay removed, as they would have without the export. An archive holds
only ended slots, so its venue line leaves ``grid_filled`` out: a restored archive is filled
from today like a new restaurant. An import writes each venue in one MULTI after WATCHing and
checking every key it would write: a venue that exists is never touched. Archiving removes each
slot with ``archive.lua``, after its lines are in the output, and only if it is still exactly
what was written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, TypeVar

import msgspec
from redis.exceptions import WatchError

from holdsvc import slots as timegrid
from holdsvc.audit import Auditor
from holdsvc.clock import redis_now_ms
from holdsvc.errors import NeedsSweep, NotFound, Stale, UnitUnavailable, ValidationFailed
from holdsvc.grid import read_closure, stored_closure
from holdsvc.identifiers import (
    UNAMBIGUOUS,
    VENUE_ID_LENGTH,
    digest,
    hold_token,
    mac_key,
    venue_of_reference,
)
from holdsvc.keys import Keys, VenueKeys
from holdsvc.metrics import Metrics
from holdsvc.scripts import AnyRedis, ArchivedReservation, Scripts
from holdsvc.seatmap import SeatMap, index_fields
from holdsvc.settings import Settings
from holdsvc.staff import ROLES
from holdsvc.sweeper import Sweeper
from holdsvc.venues import FIT_SCALE, VenueKind, date_range

__all__ = [
    "FORMAT_VERSION",
    "ArchiveReport",
    "BadFile",
    "ImportReport",
    "NoSuchVenue",
    "Transfer",
    "TransferError",
    "VenuesExist",
    "read_venues",
]

FORMAT_VERSION = 1
VENUE_KINDS = tuple(VenueKind)
RESERVATION_FIELDS = ("reference", "status", "slot", "units", "party", "name", "phone")
STAFF_TOKEN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
STAFF_ROLES = tuple(role.value for role in ROLES)
STAFF_NAME_LENGTH = 80  # StaffTokenInput.name
CLOSURE_REASON_LENGTH = 200  # ClosureInput.reason
# The venue hash field of the rolling grid's marker (rolling_grid.py): left out of archives.
GRID_MARKER = "grid_filled"
SEAT_MAP_FIELD = "seat_map"  # on an exported venue line only: the event's seat map (JSON)
SNAPSHOT_TRIES = 5
SETTLE_ROUNDS = 3
ARCHIVE_TRIES = 5
# Slots whose lines are written (and synced) together before their archive scripts run.
ARCHIVE_BATCH = 100
CHUNK = 1000

T = TypeVar("T")


# -- the lines -------------------------------------------------------------------------------


class _Line(msgspec.Struct, forbid_unknown_fields=True, tag_field="type"):
    """What every line carries: its type (the tag), the format version, its venue."""

    version: int
    venue: str


class VenueLine(_Line, tag="venue"):
    """A venue: every field of its hash, and its score in the list of venues."""

    fields: dict[str, str]
    listed: int | None = None


class UnitLine(_Line, tag="unit"):
    """A table or seat."""

    id: str
    capacity: int
    label: str | None = None
    fit: int | None = None


class SlotLine(_Line, tag="slot"):
    """A slot of the grid and the cells reservations claim in it (unit -> reference)."""

    id: str
    starts: int
    reserved: dict[str, str] = msgspec.field(default_factory=dict)


class ReservationLine(_Line, tag="reservation"):
    """A reservation: every field of its hash (the manage token's digest included)."""

    id: str
    fields: dict[str, str]


class StaffTokenLine(_Line, tag="staff_token"):
    """A staff token: its digest, its record as stored and when it was last used (never the
    token itself, which Redis does not keep either)."""

    id: str
    digest: str
    record: dict[str, Any]
    last_used: int | None = None


class ClosureLine(_Line, tag="closure"):
    """Dates a restaurant is closed, ``first`` to ``last`` inclusive (YYYY-MM-DD), and why."""

    first: str
    last: str
    reason: str | None = None


class CombinationLine(_Line, tag="combination"):
    """Tables of a restaurant pushed together for one party, and its creation order."""

    id: str
    tables: list[str]
    capacity: int
    seq: int


Line = (
    VenueLine
    | UnitLine
    | SlotLine
    | ReservationLine
    | StaffTokenLine
    | ClosureLine
    | CombinationLine
)
LINE_TYPES: dict[str, type[_Line]] = {
    str(cls.__struct_config__.tag): cls
    for cls in (
        VenueLine,
        UnitLine,
        SlotLine,
        ReservationLine,
        StaffTokenLine,
        ClosureLine,
        CombinationLine,
    )
}


class _Head(msgspec.Struct):
    """The part of a line read before its type is known."""

    type: str
    version: int


# -- errors and reports --------------------------------------------------------------------------


class TransferError(Exception):
    """An export, import or archive refused; the message says why in one line."""


class BadFile(TransferError):
    """The import file is unreadable or not what ``holdsvc export`` writes; nothing written."""


class VenuesExist(TransferError):
    """Venues of the file exist already in Redis (some of their keys): nothing of them written."""

    def __init__(self, venue_ids: Sequence[str], imported: Sequence[str] = ()) -> None:
        outcome = (
            f"created during the import; imported before it: {', '.join(imported)}"
            if imported
            else "nothing was imported"
        )
        super().__init__(f"already in this Redis: venue {', '.join(venue_ids)} ({outcome})")
        self.venue_ids = list(venue_ids)
        self.imported = list(imported)


class NoSuchVenue(TransferError):
    """A venue named on the command line does not exist."""


@dataclass
class ImportReport:
    """What an import wrote, per venue: venue id -> counts by line type."""

    venues: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class ArchiveReport:
    """What archiving one venue did."""

    venue_id: str
    slots: int = 0
    reservations: int = 0
    kept: dict[str, str] = field(default_factory=dict)


# -- writing lines -----------------------------------------------------------------------------


class LineWriter:
    """Writes lines to a text stream and counts them by type."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self.counts: defaultdict[str, int] = defaultdict(int)

    def write(self, line: Line) -> None:
        """One line."""
        # Dict keys sorted: the same data always gives the same line (diffable exports).
        self._out.write(msgspec.json.encode(line, order="deterministic").decode())
        self._out.write("\n")
        self.counts[str(line.__struct_config__.tag)] += 1

    def sync(self) -> None:
        """Flush, and fsync when the stream is a file: archived data is on disk before it is
        removed from Redis (a pipe or a terminal cannot be synced: flushed only)."""
        self._out.flush()
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.fsync(self._out.fileno())


# -- reading the file ----------------------------------------------------------------------------


@dataclass
class VenueData:
    """One venue as the file describes it (a later line replaces an earlier one)."""

    venue_id: str
    venue: VenueLine | None = None
    units: dict[str, UnitLine] = field(default_factory=dict)
    slots: dict[str, SlotLine] = field(default_factory=dict)
    reservations: dict[str, ReservationLine] = field(default_factory=dict)
    staff_tokens: dict[str, StaffTokenLine] = field(default_factory=dict)
    closures: dict[str, ClosureLine] = field(default_factory=dict)
    combinations: dict[str, CombinationLine] = field(default_factory=dict)

    def add(self, line: _Line) -> None:
        """Store one line of this venue."""
        match line:
            case VenueLine():
                self.venue = line
            case UnitLine():
                self.units[line.id] = line
            case SlotLine():
                self.slots[line.id] = line
            case ReservationLine():
                self.reservations[line.id] = line
            case StaffTokenLine():
                self.staff_tokens[line.id] = line
            case ClosureLine():
                self.closures[line.first] = line
            case CombinationLine():
                self.combinations[line.id] = line
            case _:  # pragma: no cover - every type in LINE_TYPES has a case
                raise TypeError(f"no place for {type(line).__name__}")

    @property
    def kind(self) -> str:
        """restaurant or event."""
        return self.venue.fields["kind"] if self.venue else ""

    def counts(self) -> dict[str, int]:
        """How many records of each type."""
        return {
            "units": len(self.units),
            "slots": len(self.slots),
            "reservations": len(self.reservations),
            "staff tokens": len(self.staff_tokens),
            "closures": len(self.closures),
            "combinations": len(self.combinations),
        }


def read_venues(path: str) -> dict[str, VenueData]:
    """Read and check an export file (``-``: stdin), venue id -> its data.

    Raises:
        BadFile: unreadable, not JSON lines, an unknown type or version, or records that
            disagree (a cell naming a reservation the file does not have...).
    """
    try:
        if path == "-":
            return check_venues(parse_lines(sys.stdin))
        with Path(path).open(encoding="utf-8") as file:
            return check_venues(parse_lines(file))
    except OSError as error:
        raise BadFile(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise BadFile(f"{path} is not UTF-8 text") from None


def parse_lines(lines: Iterable[str]) -> dict[str, VenueData]:
    """Decode every line into its venue's data (blank lines are skipped)."""
    venues: dict[str, VenueData] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        line = _decode(text, number)
        if not _is_venue_id(line.venue):
            raise BadFile(f"line {number}: {line.venue!r} is not a venue id")
        venues.setdefault(line.venue, VenueData(line.venue)).add(line)
    return venues


def _decode(text: str, number: int) -> _Line:
    try:
        head = msgspec.json.decode(text, type=_Head)
    except msgspec.DecodeError as error:
        raise BadFile(f"line {number}: not a holdsvc export line ({error})") from None
    cls = LINE_TYPES.get(head.type)
    if cls is None:
        raise BadFile(f"line {number}: unknown type {head.type!r} (written by a newer holdsvc?)")
    if head.version != FORMAT_VERSION:
        raise BadFile(
            f"line {number}: format version {head.version}; this holdsvc reads {FORMAT_VERSION}"
        )
    try:
        return msgspec.json.decode(text, type=cls)
    except msgspec.DecodeError as error:
        raise BadFile(f"line {number}: bad {head.type} line: {error}") from None


def _is_venue_id(text: str) -> bool:
    return len(text) == VENUE_ID_LENGTH and all(ch in UNAMBIGUOUS for ch in text)


def check_venues(venues: dict[str, VenueData]) -> dict[str, VenueData]:
    """The records of each venue agree with each other; BadFile naming the first that does not."""
    for data in venues.values():
        _check_venue(data)
    return venues


def _check_venue(data: VenueData) -> None:
    vid = data.venue_id
    if data.venue is None:
        raise BadFile(f"venue {vid}: its 'venue' line is missing")
    if data.kind not in VENUE_KINDS:
        raise BadFile(f"venue {vid}: kind {data.kind!r} is not one of {', '.join(VENUE_KINDS)}")
    if not data.venue.fields.get("created", "0").isdigit():
        raise BadFile(f"venue {vid}: 'created' is not a time in ms")
    for unit in data.units.values():
        if not unit.id or "," in unit.id or unit.capacity < 1:
            raise BadFile(
                f"venue {vid}: unit {unit.id!r} needs an id without ',' and capacity >= 1"
            )
    for ref, reservation in data.reservations.items():
        _check_reservation(vid, ref, reservation.fields)
    for slot in data.slots.values():
        _check_slot(data, slot)
    _check_staff_tokens(data)
    for closure in data.closures.values():
        _check_closure(data, closure)
    for combo in data.combinations.values():
        if len(set(combo.tables)) != len(combo.tables) or not set(combo.tables) <= set(data.units):
            raise BadFile(f"venue {vid}: combination {combo.id!r} names unknown or repeated tables")
        if combo.capacity < 1 or combo.seq < 1:
            raise BadFile(f"venue {vid}: combination {combo.id!r} needs capacity and seq >= 1")


def _check_reservation(vid: str, ref: str, fields: dict[str, str]) -> None:
    if venue_of_reference(ref) != vid or ref != ref.upper():
        raise BadFile(f"venue {vid}: {ref!r} is not a reference of this venue")
    missing = [name for name in RESERVATION_FIELDS if not fields.get(name)]
    if missing or fields["reference"] != ref:
        raise BadFile(f"venue {vid}: reservation {ref} lacks {', '.join(missing) or 'reference'}")
    if not fields.get("starts", "").lstrip("-").isdigit():
        raise BadFile(f"venue {vid}: reservation {ref} has no start time")


def _check_slot(data: VenueData, slot: SlotLine) -> None:
    vid = data.venue_id
    try:
        timegrid.parse_slot_id(slot.id)
    except ValueError as error:
        raise BadFile(f"venue {vid}: slot {error}") from None
    for unit, ref in slot.reserved.items():
        if unit not in data.units:
            raise BadFile(f"venue {vid}: slot {slot.id} reserves unknown unit {unit}")
        if ref not in data.reservations:
            raise BadFile(f"venue {vid}: slot {slot.id} names reservation {ref}, not in the file")


def _check_staff_tokens(data: VenueData) -> None:
    vid = data.venue_id
    owners: dict[str, str] = {}
    for token_id, token in data.staff_tokens.items():
        where = f"venue {vid}: staff token {token_id!r}"
        if not STAFF_TOKEN_ID.fullmatch(token_id):
            raise BadFile(f"{where}: not a staff token id")
        if not SHA256_HEX.fullmatch(token.digest):
            raise BadFile(f"{where}: its digest is not a SHA-256 in lowercase hex")
        if owners.setdefault(token.digest, token_id) != token_id:
            raise BadFile(f"{where}: same digest as staff token {owners[token.digest]!r}")
        record = token.record
        name, created = record.get("name"), record.get("created")
        if record.get("id") != token_id:
            raise BadFile(f"{where}: its record names id {record.get('id')!r}")
        if record.get("role") not in STAFF_ROLES:
            raise BadFile(f"{where}: role {record.get('role')!r} is not one of {STAFF_ROLES}")
        if not isinstance(name, str) or not 1 <= len(name) <= STAFF_NAME_LENGTH:
            raise BadFile(f"{where}: needs a name of 1 to {STAFF_NAME_LENGTH} characters")
        if type(created) is not int or created < 0:
            raise BadFile(f"{where}: 'created' is not a time in ms")
        if token.last_used is not None and token.last_used < 0:
            raise BadFile(f"{where}: 'last_used' is not a time in ms")


def _check_closure(data: VenueData, closure: ClosureLine) -> None:
    vid = data.venue_id
    if data.kind != VenueKind.RESTAURANT:
        raise BadFile(f"venue {vid}: closures are for restaurants, this is {data.kind!r}")
    try:
        date_range(closure.first, closure.last)
    except ValidationFailed as error:
        raise BadFile(f"venue {vid}: closure {closure.first!r}: {error.detail}") from None
    if closure.reason is not None and len(closure.reason) > CLOSURE_REASON_LENGTH:
        raise BadFile(
            f"venue {vid}: closure {closure.first}: reason over {CLOSURE_REASON_LENGTH} characters"
        )


# -- the venue's head, as read ------------------------------------------------------------------


def _unit_lines(
    venue_id: str,
    capacities: dict[str, str],
    labels: dict[str, str],
    fit: list[tuple[str, float]],
) -> list[UnitLine]:
    """The units' lines in creation order (the low bits of their best-fit rank)."""
    ranks = {unit: int(score) for unit, score in fit}
    ordered = sorted(capacities, key=lambda unit: (ranks.get(unit, 0) % FIT_SCALE, unit))
    return [
        UnitLine(
            FORMAT_VERSION, venue_id, unit, int(capacities[unit]), labels.get(unit), ranks.get(unit)
        )
        for unit in ordered
    ]


def _staff_token_lines(
    venue_id: str, tokens: dict[str, str], used: dict[str, str]
) -> list[StaffTokenLine]:
    """The staff tokens' lines (digest -> stored record; id -> last used ms), oldest first.
    A last-used time left behind by a revoke that raced a request is not written."""
    lines = []
    for token_digest, text in tokens.items():
        record: dict[str, Any] = json.loads(text)
        token_id = str(record["id"])
        last = used.get(token_id)
        lines.append(
            StaffTokenLine(
                FORMAT_VERSION,
                venue_id,
                token_id,
                token_digest,
                record,
                None if last is None else int(last),
            )
        )
    return sorted(lines, key=lambda line: (line.record.get("created", 0), line.id))


def _closure_lines(venue_id: str, closures: dict[str, str]) -> list[ClosureLine]:
    """The closures' lines (first date -> stored value), earliest first."""
    lines = []
    for first in sorted(closures):
        closure = read_closure(first, closures[first])
        lines.append(
            ClosureLine(FORMAT_VERSION, venue_id, closure.first, closure.last, closure.reason)
        )
    return lines


def _combination_lines(venue_id: str, combos: dict[str, str]) -> list[CombinationLine]:
    """The combinations' lines (id -> stored JSON), in creation order."""
    lines = []
    for combo_id, text in combos.items():
        row = json.loads(text)
        lines.append(
            CombinationLine(
                FORMAT_VERSION,
                venue_id,
                combo_id,
                list(row["tables"]),
                int(row["capacity"]),
                int(row["seq"]),
            )
        )
    return sorted(lines, key=lambda line: line.seq)


# -- one slot, read consistently ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotSnapshot:
    """One slot read in one MULTI: its cells, the references starting in it (by-start
    index) and the records of those and of every reference its cells name."""

    slot: str
    starts: int | None  # None: the slot is not in the grid (any more)
    cells: dict[str, str]
    starting: tuple[str, ...]
    reservations: dict[str, dict[str, str]]

    @property
    def reserved(self) -> dict[str, str]:
        """unit -> reference, for every cell a reservation claims."""
        return {unit: state[2:] for unit, state in self.cells.items() if state.startswith("r|")}

    def holds(self, now_ms: int) -> tuple[list[str], list[str]]:
        """(units under a live hold, ids of lapsed holds still on a cell)."""
        live: list[str] = []
        lapsed: set[str] = set()
        for unit, state in self.cells.items():
            if state.startswith("h|"):
                _, hold_id, expires = state.split("|", 2)
                if int(expires) > now_ms:
                    live.append(unit)
                else:
                    lapsed.add(hold_id)
        return live, sorted(lapsed)

    def lines(self, venue_id: str) -> list[Line]:
        """The slot's line, then one per reservation (sorted by reference)."""
        assert self.starts is not None
        lines: list[Line] = [
            SlotLine(FORMAT_VERSION, venue_id, self.slot, self.starts, self.reserved)
        ]
        for ref, fields in sorted(self.reservations.items()):
            lines.append(ReservationLine(FORMAT_VERSION, venue_id, ref, fields))
        return lines


def _ends_after(snapshot: SlotSnapshot, cutoff: int) -> bool:
    """Whether a reservation on the slot (starting in it or claiming its cells) ends after
    ``cutoff``: a booking of several slots is archived only once all of it has ended."""
    return any(
        int(row.get("ends") or 0) > cutoff
        for row in snapshot.reservations.values()
        if row.get("status") != "cancelled"
    )


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Transfer:
    """Export, import and archive venues straight from and into Redis."""

    def __init__(self, redis: AnyRedis, keys: Keys, scripts: Scripts, sweeper: Sweeper) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._sweeper = sweeper

    @classmethod
    def build(cls, redis: AnyRedis, settings: Settings) -> Transfer:
        """Around one Redis client, with the settings' key prefix and feed length."""
        keys = Keys(settings.key_prefix)
        scripts = Scripts(
            redis,
            feed_maxlen=settings.feed_maxlen,
            tombstone_seconds=settings.hold_tombstone_seconds,
        )
        if settings.secret_key is not None:
            # Expiries it sweeps offer the freed cells to the waitlist, with signed tokens.
            secret = mac_key(settings.secret_key.get_secret_value())
            scripts.offer_digest = lambda venue_id, hold_id: digest(
                hold_token(secret, venue_id, hold_id)
            )
        sweeper = Sweeper(redis, keys, scripts, Metrics(), batch=settings.sweep_batch)
        return cls(redis, keys, scripts, sweeper)

    # -- venues --------------------------------------------------------------------------------

    async def venue_ids(self, named: Sequence[str]) -> list[str]:
        """The venues named (NoSuchVenue for one that does not exist), or else every venue:
        the listed ones, then any a crash left off the list."""
        if named:
            for venue_id in named:
                if not await self._redis.exists(self._keys.of(venue_id).venue):
                    raise NoSuchVenue(f"no venue {venue_id}")
            return list(named)
        found: list[str] = []
        for kind in VENUE_KINDS:
            found += await self._redis.zrange(self._keys.venues(kind), 0, -1)
        found += sorted(await Auditor(self._redis, self._keys).unlisted_venues())
        return found

    async def _venue_head(self, venue_id: str, out: LineWriter) -> dict[str, int]:
        """Write the whole venue's head: its line, its units' lines (in creation order), its
        staff tokens' (oldest first) and its closures' (earliest first); its grid (slot id ->
        start ms) as read in the same MULTI."""
        keys = self._keys.of(venue_id)
        # One MULTI: the grid marker and version (venue fields), the closures and the slots
        # agree; tables are added in one transaction, so none is read half-written.
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(keys.venue)
        self._queue_unit_reads(pipe, keys)
        pipe.hgetall(keys.staff_tokens)
        pipe.hgetall(keys.staff_used)
        pipe.hgetall(keys.closures)
        pipe.zrange(keys.slots, 0, -1, withscores=True)
        pipe.hgetall(keys.combinations)
        fields, capacities, labels, fit, tokens, used, closures, grid, combos = await pipe.execute()
        await self._write_venue_line(venue_id, fields, out)
        lines: list[Line] = [
            *_unit_lines(venue_id, capacities, labels, fit),
            *_staff_token_lines(venue_id, tokens, used),
            *_closure_lines(venue_id, closures),
            *_combination_lines(venue_id, combos),
        ]
        for line in lines:
            out.write(line)
        return {slot: int(start) for slot, start in grid}

    async def _archive_head(self, venue_id: str, out: LineWriter) -> None:
        """Write an archive's head: the venue's line without the rolling grid's marker (the
        archive does not hold the slots it speaks of) and its units' lines (ended slots are
        archived to be looked up: no staff tokens, no closures)."""
        keys = self._keys.of(venue_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(keys.venue)
        self._queue_unit_reads(pipe, keys)
        fields, capacities, labels, fit = await pipe.execute()
        fields.pop(GRID_MARKER, None)
        await self._write_venue_line(venue_id, fields, out)
        for line in _unit_lines(venue_id, capacities, labels, fit):
            out.write(line)

    async def _write_venue_line(
        self, venue_id: str, fields: dict[str, str], out: LineWriter
    ) -> None:
        if not fields:
            raise NoSuchVenue(f"no venue {venue_id}")
        if fields.get("seatmap") == "1":
            # A seat map travels on its venue's line; the import rebuilds its index.
            stored = await self._redis.hget(self._keys.of(venue_id).seat_index, "map")
            fields = {**fields, SEAT_MAP_FIELD: stored or ""}
        listed = await self._redis.zscore(self._keys.venues(fields.get("kind", "")), venue_id)
        out.write(
            VenueLine(FORMAT_VERSION, venue_id, fields, None if listed is None else int(listed))
        )

    @staticmethod
    def _queue_unit_reads(pipe: Any, keys: VenueKeys) -> None:
        """Queue what `_unit_lines` reads: capacities, labels, best-fit ranks."""
        pipe.hgetall(keys.units)
        pipe.hgetall(keys.unit_labels)
        pipe.zrange(keys.units_by_fit, 0, -1, withscores=True)

    async def _by_start(self, keys: VenueKeys, high: int | str = "+inf") -> dict[str, int]:
        """reference -> start ms, from the by-start index (up to ``high``)."""
        rows = await self._redis.zrangebyscore(
            keys.reservations_by_start, "-inf", high, withscores=True
        )
        return {ref: int(score) for ref, score in rows}

    async def _read_slot(
        self, keys: VenueKeys, slot: str, starts: int, guess: Iterable[str]
    ) -> SlotSnapshot:
        """One slot in one MULTI; read again (with their records) while a reference appears
        that the MULTI did not include."""
        refs = set(guess)
        for _ in range(SNAPSHOT_TRIES):
            ordered = sorted(refs)
            pipe = self._redis.pipeline(transaction=True)
            pipe.zscore(keys.slots, slot)
            pipe.hgetall(keys.cells(slot))
            pipe.zrangebyscore(keys.reservations_by_start, starts, starts)
            for ref in ordered:
                pipe.hgetall(keys.reservation(ref))
            score, cells, starting, *rows = await pipe.execute()
            named = set(starting) | {s[2:] for s in cells.values() if s.startswith("r|")}
            if named <= refs:
                records = {
                    ref: row for ref, row in zip(ordered, rows, strict=True) if ref in named and row
                }
                starts_at = None if score is None else int(score)
                return SlotSnapshot(slot, starts_at, cells, tuple(sorted(starting)), records)
            # A reservation appeared since the first read: include its record, read again.
            refs |= named
        raise TransferError(f"slot {slot} kept changing while it was read; try again")

    # -- export --------------------------------------------------------------------------------

    async def export(self, venue_ids: Sequence[str], out: IO[str]) -> dict[str, int]:
        """Write the venues (every one when none is named) as JSON lines; lines by type."""
        writer = LineWriter(out)
        for venue_id in await self.venue_ids(venue_ids):
            await self.export_venue(venue_id, writer)
        writer.sync()
        return dict(writer.counts)

    async def export_venue(self, venue_id: str, out: LineWriter) -> None:
        """One venue: its line, its units, staff tokens and closures, then each slot with its
        reservations."""
        grid = await self._venue_head(venue_id, out)
        keys = self._keys.of(venue_id)
        guesses: defaultdict[int, set[str]] = defaultdict(set)
        for ref, start in (await self._by_start(keys)).items():
            guesses[start].add(ref)
        placed: dict[str, dict[str, str]] = {}
        for slot, starts in sorted(grid.items(), key=lambda item: (item[1], item[0])):
            await self._export_slot(keys, venue_id, slot, starts, guesses[starts], out, placed)
        await self._settle(keys, venue_id, out, placed)

    async def _grid(self, keys: VenueKeys) -> dict[str, int]:
        rows = await self._redis.zrange(keys.slots, 0, -1, withscores=True)
        return {slot: int(start) for slot, start in rows}

    async def _export_slot(
        self,
        keys: VenueKeys,
        venue_id: str,
        slot: str,
        starts: int,
        guess: Iterable[str],
        out: LineWriter,
        placed: dict[str, dict[str, str]],
    ) -> None:
        snapshot = await self._read_slot(keys, slot, starts, guess)
        if snapshot.starts is None:
            placed[slot] = {}  # removed from the grid since the export began
            return
        for line in snapshot.lines(venue_id):
            out.write(line)
        placed[slot] = {ref: row.get("starts", "") for ref, row in snapshot.reservations.items()}

    async def _settle(
        self,
        keys: VenueKeys,
        venue_id: str,
        out: LineWriter,
        placed: dict[str, dict[str, str]],
    ) -> None:
        """Catch up with reservations that moved between slots while the export ran: each
        slot is consistent in itself, but one moved from a slot not yet read to one already
        read is in neither, and one moved the other way is in both. Export the slots
        concerned again (a later line replaces an earlier one), and reservations of no grid
        slot on their own."""
        orphans_done: set[str] = set()
        for _ in range(SETTLE_ROUNDS):
            grid = await self._grid(keys)
            slot_at = {start: slot for slot, start in grid.items()}
            where: defaultdict[str, dict[str, str]] = defaultdict(dict)
            for slot, refs in placed.items():
                for ref, starts in refs.items():
                    where[ref][slot] = starts
            redo: set[str] = set()
            orphans: list[str] = []
            for ref, start in (await self._by_start(keys)).items():
                home = slot_at.get(start)
                moved = {slot for slot, starts in where[ref].items() if starts != str(start)}
                redo |= moved
                if home is not None and (moved or not where[ref]):
                    redo.add(home)
                elif home is None and not where[ref] and ref not in orphans_done:
                    orphans.append(ref)
            for ref in orphans:
                row: dict[str, str] = await self._redis.hgetall(keys.reservation(ref))
                if row:
                    out.write(ReservationLine(FORMAT_VERSION, venue_id, ref, row))
                orphans_done.add(ref)
            if not redo:
                return
            for slot in sorted(redo):
                if slot in grid:
                    await self._export_slot(keys, venue_id, slot, grid[slot], (), out, placed)
                else:
                    placed.pop(slot, None)  # left the grid: its reservations are orphans now

    # -- import --------------------------------------------------------------------------------

    async def import_venues(self, venues: dict[str, VenueData]) -> ImportReport:
        """Write venues read by `read_venues` into a Redis that has none of them.

        Every venue is checked first: if any of them has a key here, nothing is written.
        Each venue is then written in one MULTI, WATCHing every key it writes, and listed.

        Raises:
            VenuesExist: venues of the file have keys here already.
        """
        taken = [vid for vid, data in venues.items() if await self._taken(data)]
        if taken:
            raise VenuesExist(sorted(taken))
        report = ImportReport()
        for vid, data in venues.items():
            try:
                await self._write_venue(data)
            except VenuesExist:
                raise VenuesExist([vid], imported=list(report.venues)) from None
            report.venues[vid] = data.counts()
        return report

    def _import_keys(self, data: VenueData) -> list[str]:
        """Every key the venue's import writes, and its keys that only live use creates."""
        keys = self._keys.of(data.venue_id)
        phones = {r.fields["phone"] for r in data.reservations.values()}
        return [
            keys.venue,
            keys.units,
            keys.unit_labels,
            keys.units_by_fit,
            keys.slots,
            keys.holds,
            keys.reservations_by_start,
            keys.feed,
            keys.staff_tokens,
            keys.staff_ids,
            keys.staff_used,
            keys.closures,
            keys.seat_index,
            keys.combinations,
            keys.combinations_by_fit,
            *self._rule_index_keys(data),
            *(keys.cells(slot) for slot in data.slots),
            *(keys.held(slot) for slot in data.slots),
            *(keys.reservation(ref) for ref in data.reservations),
            *(keys.reservations_by_phone(phone) for phone in sorted(phones)),
        ]

    async def _taken(self, data: VenueData, pipe: Any = None) -> bool:
        """Whether any of the venue's keys exists (on a watching pipeline: while watched)."""
        client = pipe if pipe is not None else self._redis
        for chunk in _chunks(self._import_keys(data)):
            # (execute_command: a watching cluster pipeline queues pipe.exists() instead.)
            if int(await client.execute_command("EXISTS", *chunk)):
                return True
        return False

    async def _write_venue(self, data: VenueData) -> None:
        for _ in range(SNAPSHOT_TRIES):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    # WATCH then EXISTS: a key created by anyone before EXEC aborts the write.
                    for chunk in _chunks(self._import_keys(data)):
                        await pipe.watch(*chunk)
                    if await self._taken(data, pipe):
                        raise VenuesExist([data.venue_id])
                    pipe.multi()
                    self._queue_writes(pipe, data)
                    await pipe.execute()
                except WatchError:
                    continue
            # The list of venues is another cluster slot: written after the venue itself, so
            # a crash in between leaves an unlisted venue (the audit's --repair lists it).
            assert data.venue is not None
            score = data.venue.listed
            if score is None:
                score = int(data.venue.fields.get("created", "0"))
            await self._redis.zadd(self._keys.venues(data.kind), {data.venue_id: score})
            return
        raise TransferError(f"venue {data.venue_id}: its keys kept changing during the import")

    def _queue_writes(self, pipe: Any, data: VenueData) -> None:
        """Queue the venue's writes on a MULTI pipeline."""
        assert data.venue is not None
        keys = self._keys.of(data.venue_id)
        fields = dict(data.venue.fields)
        seat_map_json = fields.pop(SEAT_MAP_FIELD, None)
        pipe.hset(keys.venue, mapping=fields)
        if seat_map_json:
            # The free-run index of the map, with the reserved seats taken (holds do not
            # travel: every other place is free).
            reserved = {unit for slot in data.slots.values() for unit in slot.reserved}
            pipe.hset(
                keys.seat_index, mapping=index_fields(SeatMap.from_json(seat_map_json), reserved)
            )
        units = list(data.units.values())
        if units:
            pipe.hset(keys.units, mapping={u.id: u.capacity for u in units})
        labels = {u.id: u.label for u in units if u.label is not None}
        if labels:
            pipe.hset(keys.unit_labels, mapping=labels)
        for ranked in _chunks([u for u in units if u.fit is not None]):
            pipe.zadd(keys.units_by_fit, {u.id: u.fit for u in ranked})
        for slots in _chunks(list(data.slots.values())):
            pipe.zadd(keys.slots, {slot.id: slot.starts for slot in slots})
        for slot in data.slots.values():
            if slot.reserved:
                cells = {unit: f"r|{ref}" for unit, ref in slot.reserved.items()}
                pipe.hset(keys.cells(slot.id), mapping=cells)
        by_phone: defaultdict[str, list[str]] = defaultdict(list)
        for ref, reservation in data.reservations.items():
            pipe.hset(keys.reservation(ref), mapping=reservation.fields)
            by_phone[reservation.fields["phone"]].append(ref)
        for starting in _chunks(list(data.reservations.values())):
            pipe.zadd(keys.reservations_by_start, {r.id: int(r.fields["starts"]) for r in starting})
        for phone, refs in by_phone.items():
            pipe.sadd(keys.reservations_by_phone(phone), *refs)
        self._queue_staff_and_closures(pipe, keys, data)
        self._queue_combinations_and_rule_indexes(pipe, keys, data)

    def _rule_index_keys(self, data: VenueData) -> list[str]:
        """The rule indexes (pacing, one booking per guest) the import builds again."""
        return sorted({key for key, _, _ in self._rule_index_entries(data)})

    def _rule_index_entries(self, data: VenueData) -> list[tuple[str, str, str]]:
        """(key, member, value) of each reservation not cancelled in the indexes its
        ``idx`` field names (as confirm.lua and book.lua write them)."""
        keys = self._keys.of(data.venue_id)
        entries = []
        for ref, reservation in data.reservations.items():
            fields = reservation.fields
            idx = fields.get("idx", "")
            if not idx or fields.get("status") == "cancelled":
                continue
            member, span = f"r|{ref}", f"{fields['starts']}|{fields.get('ends', '')}"
            if "c" in idx:
                entries.append((keys.covers(fields["slot"]), member, fields["party"]))
            if "g" in idx and fields.get("user"):
                entries.append((keys.guest(fields["user"]), member, span))
            if "p" in idx:
                entries.append((keys.guest_phone(fields["phone"]), member, span))
        return entries

    def _queue_combinations_and_rule_indexes(
        self, pipe: Any, keys: VenueKeys, data: VenueData
    ) -> None:
        """Queue the combinations (record and best-fit rank) and the rule indexes."""
        for combos in _chunks(list(data.combinations.values())):
            pipe.hset(
                keys.combinations,
                mapping={
                    c.id: json.dumps({"tables": c.tables, "capacity": c.capacity, "seq": c.seq})
                    for c in combos
                },
            )
            pipe.zadd(
                keys.combinations_by_fit, {c.id: c.capacity * FIT_SCALE + c.seq for c in combos}
            )
        for key, member, value in self._rule_index_entries(data):
            pipe.hset(key, member, value)

    @staticmethod
    def _queue_staff_and_closures(pipe: Any, keys: VenueKeys, data: VenueData) -> None:
        """Queue the staff tokens (record and id index, as `StaffTokens.create` writes them,
        and last use) and the closures."""
        for tokens in _chunks(list(data.staff_tokens.values())):
            pipe.hset(keys.staff_tokens, mapping={t.digest: json.dumps(t.record) for t in tokens})
            pipe.hset(keys.staff_ids, mapping={t.id: t.digest for t in tokens})
            used = {t.id: t.last_used for t in tokens if t.last_used is not None}
            if used:
                pipe.hset(keys.staff_used, mapping=used)
        for closures in _chunks(list(data.closures.values())):
            pipe.hset(
                keys.closures,
                mapping={c.first: stored_closure(c.last, c.reason) for c in closures},
            )

    # -- archive -------------------------------------------------------------------------------

    async def archive(
        self, before: date, venue_ids: Sequence[str], out: IO[str]
    ) -> list[ArchiveReport]:
        """Remove the slots that ended before ``before`` (local midnight of each venue),
        writing each with its reservations to ``out`` first, in the export format."""
        writer = LineWriter(out)
        return [
            await self.archive_venue(venue_id, before, writer)
            for venue_id in await self.venue_ids(venue_ids)
        ]

    async def archive_venue(self, venue_id: str, before: date, out: LineWriter) -> ArchiveReport:
        """One venue: its ended slots, oldest first, in batches (one sync per batch)."""
        report = ArchiveReport(venue_id)
        keys = self._keys.of(venue_id)
        fields: dict[str, str] = await self._redis.hgetall(keys.venue)
        if not fields:
            raise NoSuchVenue(f"no venue {venue_id}")
        cutoff, _ = timegrid.local_day_bounds_ms(before, before, timegrid.venue_zone(fields))
        length_ms = int(fields.get("slot_minutes", "0")) * 60_000
        # Ended by the cutoff and by now: a cutoff in the future never takes a coming slot.
        latest_start = min(cutoff, await redis_now_ms(self._redis)) - length_ms
        ended = await self._redis.zrangebyscore(keys.slots, "-inf", latest_start, withscores=True)
        if not ended:
            return report
        await self._archive_head(venue_id, out)
        guesses: defaultdict[int, set[str]] = defaultdict(set)
        for ref, start in (await self._by_start(keys, latest_start)).items():
            guesses[start].add(ref)
        for batch in _chunks([(slot, int(start)) for slot, start in ended], ARCHIVE_BATCH):
            await self._archive_batch(keys, venue_id, cutoff, dict(batch), guesses, out, report)
        out.sync()
        return report

    async def _archive_batch(
        self,
        keys: VenueKeys,
        venue_id: str,
        cutoff: int,
        pending: dict[str, int],
        guesses: dict[int, set[str]],
        out: LineWriter,
        report: ArchiveReport,
    ) -> None:
        written: dict[str, list[Line]] = {}
        for _ in range(ARCHIVE_TRIES):
            ready = []
            for slot, starts in pending.items():
                snapshot = await self._swept_snapshot(keys, venue_id, slot, starts, guesses)
                if snapshot is None:
                    report.kept[slot] = "a live hold is on it"
                elif _ends_after(snapshot, cutoff):
                    # A booking of several slots goes whole: its slots stay until it has ended.
                    report.kept[slot] = "a booking on it ends after the cutoff"
                elif snapshot.starts is not None:
                    lines = snapshot.lines(venue_id)
                    if written.get(slot) != lines:
                        for line in lines:
                            out.write(line)
                        written[slot] = lines
                    ready.append(snapshot)
            # The archive holds every slot of the batch before any of them is removed.
            out.sync()
            pending = {}
            for snapshot in ready:
                if not await self._archive_slot(keys, venue_id, cutoff, snapshot, report):
                    assert snapshot.starts is not None
                    pending[snapshot.slot] = snapshot.starts
            if not pending:
                return
        for slot in pending:
            report.kept[slot] = "it kept changing while archived"

    async def _swept_snapshot(
        self,
        keys: VenueKeys,
        venue_id: str,
        slot: str,
        starts: int,
        guesses: dict[int, set[str]],
    ) -> SlotSnapshot | None:
        """The slot with no lapsed hold left on it (expired first: each its own 'expired'
        entry), or None while a live hold is on it."""
        for _ in range(SNAPSHOT_TRIES):
            snapshot = await self._read_slot(keys, slot, starts, guesses.get(starts, ()))
            live, lapsed = snapshot.holds(await redis_now_ms(self._redis))
            if live:
                return None
            if not lapsed:
                return snapshot
            await self._sweeper.expire_holds(venue_id, lapsed)
        raise TransferError(f"slot {slot}: lapsed holds kept coming back")

    async def _archive_slot(
        self,
        keys: VenueKeys,
        venue_id: str,
        cutoff: int,
        snapshot: SlotSnapshot,
        report: ArchiveReport,
    ) -> bool:
        """Run archive.lua on a written snapshot; False when it must be read and written
        again (it changed, or lapsed holds were swept)."""
        try:
            archived = await self._scripts.archive(
                keys,
                slot=snapshot.slot,
                cutoff_ms=cutoff,
                cells=snapshot.cells,
                reservations=[
                    ArchivedReservation(ref, snapshot.reservations.get(ref, {}))
                    for ref in snapshot.starting
                ],
            )
        except Stale:
            return False
        except NeedsSweep as lapsed:
            await self._sweeper.expire_holds(venue_id, lapsed.hold_ids)
            return False
        except UnitUnavailable:
            report.kept[snapshot.slot] = "a live hold is on it"
            return True
        except NotFound:
            return True  # archived (or removed) by someone else meanwhile
        if archived.removed:
            report.slots += 1
            report.reservations += archived.reservations
        else:
            report.kept[snapshot.slot] = "it has not ended"
        return True

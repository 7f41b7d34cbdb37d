"""Seat maps: sections (seated rows or general admission), the free-run index, and reads.

The index lives in one hash per event (``keys.seat_index``), laid out and maintained by
``lua/include/seat_runs.lua``; this module builds it when the event is created and reads it
(with the cells, for what lapsed holds free) for the event's sections and rows. No HTTP here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from holdsvc.errors import ValidationFailed
from holdsvc.models import SectionInput

GA_ROW = 200  # places per internal row of a general-admission section (seat_runs.lua)
MIN_PLACES = 10
MAX_PLACES = 100_000


@dataclass(frozen=True, slots=True)
class Section:
    """One section of a map: seated with ``rows`` (id, seats), or GA with ``capacity``."""

    id: str
    name: str
    kind: str
    capacity: int
    rows: tuple[tuple[str, int], ...] = ()

    def row_keys(self) -> list[str]:
        """The index's row keys of this section, in order."""
        if self.kind == "seated":
            return [f"{self.id}-{row}" for row, _ in self.rows]
        return [f"{self.id}~{r}" for r in range((self.capacity + GA_ROW - 1) // GA_ROW)]


@dataclass(frozen=True, slots=True)
class SeatMap:
    """An event's sections in map order."""

    sections: tuple[Section, ...]
    _seats: list[str] = field(default_factory=list, compare=False)

    @property
    def capacity(self) -> int:
        """Every place: seats and general-admission places."""
        return sum(s.capacity for s in self.sections)

    def section(self, section_id: str) -> Section | None:
        """The section of that id, or None."""
        return next((s for s in self.sections if s.id == section_id), None)

    def seat_ids(self) -> list[str]:
        """Every seat id of the seated sections in map order (computed once)."""
        if not self._seats:
            self._seats.extend(
                f"{s.id}-{row}-{n}"
                for s in self.sections
                if s.kind == "seated"
                for row, seats in s.rows
                for n in range(1, seats + 1)
            )
        return self._seats

    def to_json(self) -> str:
        """The compact stored form: [[id, name, rows | capacity], ...]."""
        return json.dumps(
            [
                [s.id, s.name, [list(r) for r in s.rows] if s.kind == "seated" else s.capacity]
                for s in self.sections
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> SeatMap:
        """The map stored by ``to_json``."""
        sections = []
        for sid, name, shape in json.loads(text):
            if isinstance(shape, list):
                rows = tuple((str(r), int(n)) for r, n in shape)
                sections.append(Section(sid, name, "seated", sum(n for _, n in rows), rows))
            else:
                sections.append(Section(sid, name, "ga", int(shape)))
        return cls(tuple(sections))


def seat_map(inputs: list[SectionInput]) -> SeatMap:
    """The map a request describes, checked: unique ids, one shape each, 10..100000 places."""
    seen: set[str] = set()
    sections = []
    for given in inputs:
        if given.id in seen:
            raise ValidationFailed(f"section id {given.id!r} is used twice")
        seen.add(given.id)
        if (given.rows is None) == (given.capacity is None):
            raise ValidationFailed(f"section {given.id!r} needs either 'rows' or 'capacity'")
        if given.rows is not None:
            row_ids = [r.id for r in given.rows]
            if len(set(row_ids)) != len(row_ids):
                raise ValidationFailed(f"section {given.id!r} names a row twice")
            rows = tuple((r.id, r.seats) for r in given.rows)
            sections.append(Section(given.id, given.name, "seated", sum(n for _, n in rows), rows))
        else:
            sections.append(Section(given.id, given.name, "ga", int(given.capacity or 0)))
    built = SeatMap(tuple(sections))
    if not MIN_PLACES <= built.capacity <= MAX_PLACES:
        raise ValidationFailed(f"a seat map has {MIN_PLACES}..{MAX_PLACES} places in all")
    return built


def ga_units(section: Section) -> list[str]:
    """The internal cell ids of a general-admission section's places (never shown)."""
    return [f"{section.id}~{k}" for k in range(1, section.capacity + 1)]


def all_units(seats: SeatMap) -> list[str]:
    """Every cell id of the map: seats, then general-admission places."""
    return seats.seat_ids() + [u for s in seats.sections if s.kind == "ga" for u in ga_units(s)]


def longest_run(bits: str) -> int:
    """The longest run of free ('.') characters."""
    return max((len(run) for run in bits.split("x")), default=0)


def row_lengths(section: Section) -> list[int]:
    """Seats per index row of a section (GA: rows of GA_ROW places, the last one shorter)."""
    if section.kind == "seated":
        return [n for _, n in section.rows]
    full, rest = divmod(section.capacity, GA_ROW)
    return [GA_ROW] * full + ([rest] if rest else [])


def index_fields(seats: SeatMap, taken: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """The whole free-run index of the map with ``taken`` units taken (none: an empty map),
    as seat_runs.lua reads it."""
    ordered = [s for s in seats.sections if s.kind == "seated"] + [
        s for s in seats.sections if s.kind == "ga"
    ]
    leaves: list[int] = []
    out: dict[str, str] = {"map": seats.to_json()}
    seated_leaves = seated_free = 0
    for section in ordered:
        first = len(leaves)
        free = 0
        for key, length in zip(section.row_keys(), row_lengths(section), strict=True):
            leaf = len(leaves)
            bits = "".join("x" if _unit(key, n) in taken else "." for n in range(1, length + 1))
            out[f"R:{key}"] = f"{leaf}|{section.id}|{bits}"
            out[f"L:{leaf}"] = key
            leaves.append(longest_run(bits))
            free += bits.count(".")
        out[f"S:{section.id}"] = f"{first}|{len(leaves) - 1}|{section.kind}"
        out[f"A:{section.id}"] = str(free)
        if section.kind == "seated":
            seated_leaves = len(leaves)
            seated_free += free
    out["seated"] = f"0|{seated_leaves - 1}"
    out["A*"] = str(seated_free)
    size = 1
    while size < len(leaves):
        size *= 2
    out["size"] = str(size)
    tree = [0] * (2 * size)
    tree[size : size + len(leaves)] = leaves
    for node in range(size - 1, 0, -1):
        tree[node] = max(tree[2 * node], tree[2 * node + 1])
    out.update({f"T:{node}": str(value) for node, value in enumerate(tree) if node and value})
    return out


def fits(plan: SeatMap, taken: set[str], section: str | None, count: int) -> bool:
    """Whether a best-available ask for ``count`` together (in ``section``, else in any
    seated one) finds places with ``taken`` units taken (lua/include/seat_runs.lua)."""
    chosen = plan.section(section) if section else None
    sections = [chosen] if chosen else [s for s in plan.sections if s.kind == "seated"]
    for place in sections:
        if place.kind == "ga":
            if sum(unit not in taken for unit in ga_units(place)) >= count:
                return True
            continue
        for row, seats in place.rows:
            bits = "".join(
                "x" if f"{place.id}-{row}-{n}" in taken else "." for n in range(1, seats + 1)
            )
            if longest_run(bits) >= count:
                return True
    return False


def place_section(unit: str) -> str:
    """The section of a seat id or a GA place id."""
    return unit.split("~", 1)[0].split("-", 1)[0]


def seat_parts(seat: str) -> tuple[str, str, int] | None:
    """(section, row, number) of a seat id, or None for any other unit."""
    parts = seat.split("-")
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def ga_of(units: list[str] | tuple[str, ...]) -> tuple[str, int] | None:
    """(section, count) when the units are places of one general-admission section."""
    if units and all("~" in u for u in units):
        return place_section(units[0]), len(units)
    return None


def counts_from_index(
    seats: SeatMap, values: dict[str, Any], lapsed: list[str], with_rows: bool
) -> dict[str, tuple[int, list[tuple[str, int]]]]:
    """Per section: (free places, [(row id, free seats)]) from index fields and the units of
    lapsed holds (free for everyone, though the sweeper has not ended them yet)."""
    extra: dict[str, int] = {}
    for unit in lapsed:
        key = unit.rsplit("-", 1)[0] if "~" not in unit else place_section(unit)
        extra[key] = extra.get(key, 0) + 1
        extra["#" + place_section(unit)] = extra.get("#" + place_section(unit), 0) + 1
    out: dict[str, tuple[int, list[tuple[str, int]]]] = {}
    for section in seats.sections:
        free = int(values.get(f"A:{section.id}") or 0) + extra.get("#" + section.id, 0)
        rows: list[tuple[str, int]] = []
        if with_rows and section.kind == "seated":
            for row, _ in section.rows:
                record = str(values.get(f"R:{section.id}-{row}") or "")
                bits = record.rsplit("|", 1)[-1]
                rows.append((row, bits.count(".") + extra.get(f"{section.id}-{row}", 0)))
        out[section.id] = (min(free, section.capacity), rows)
    return out


def index_problems(index: dict[str, str], cells: dict[str, str]) -> list[tuple[str, str, str]]:
    """Where a seat map's free-run index disagrees with its cells: (check, detail, unit).

    A place is taken in its row exactly when it has a cell (a lapsed hold included, until
    the sweeper ends it); each section's free count (``ga_counter`` for general admission)
    and the seated total match the rows; every tree node is its longest run / its children's
    maximum."""
    if "map" not in index:
        return [("seat_index", "the event's seat map index is missing", "")]
    plan = SeatMap.from_json(index["map"])
    found: list[tuple[str, str, str]] = []
    size = int(index.get("size", "1"))
    leaves: dict[int, int] = {}
    seated_free = 0
    for section in plan.sections:
        free = 0
        for key, length in zip(section.row_keys(), row_lengths(section), strict=True):
            leaf, _, bits = index.get(f"R:{key}", "0||").split("|", 2)
            if len(bits) != length:
                found.append(("seat_index", f"row {key} has {len(bits)} places, not {length}", ""))
                continue
            for pos, mark in enumerate(bits, start=1):
                unit = _unit(key, pos)
                if (mark == "x") != (unit in cells):
                    state = "taken" if mark == "x" else "free"
                    found.append(("seat_index", f"{unit} is {state} in the row index", unit))
            free += bits.count(".")
            leaves[int(leaf)] = longest_run(bits)
        counted = int(index.get(f"A:{section.id}", "-1"))
        if counted != free:
            check = "ga_counter" if section.kind == "ga" else "seat_index"
            found.append((check, f"section {section.id} counts {counted} free, rows {free}", ""))
        if section.kind == "seated":
            seated_free += free
    if int(index.get("A*", "-1")) != seated_free:
        found.append(("seat_index", f"seated free count is not {seated_free}", ""))
    for node in range(2 * size - 1, 0, -1):
        want = (
            leaves.get(node - size, 0)
            if node >= size
            else max(int(index.get(f"T:{2 * node}", "0")), int(index.get(f"T:{2 * node + 1}", "0")))
        )
        if int(index.get(f"T:{node}", "0")) != want:
            found.append(("seat_index", f"tree node {node} is not {want}", ""))
    return found


def _unit(row_key: str, pos: int) -> str:
    if "~" in row_key:
        section, r = row_key.split("~")
        return f"{section}~{int(r) * GA_ROW + pos}"
    return f"{row_key}-{pos}"

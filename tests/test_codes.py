"""The table of codes is the only place a code is declared: the Lua headers, the scripts'
returns, the exceptions, the OpenAPI descriptions and the page messages all agree with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from holdsvc import errors
from holdsvc.api.schemas import problem_description
from holdsvc.errors import HoldsvcError, Problem, Status, raise_for_status
from holdsvc.scripts import lua_dir, read_script, script_names
from holdsvc.web.views import MESSAGES

HEADER_CODE = re.compile(r"^\s+(\d+)\s+([A-Z_]+)\b", re.MULTILINE)
RETURNED_CODE = re.compile(r"return \{(\d+)\s*[,}]")


def header_codes(name: str) -> dict[str, int]:
    """NAME -> number, from the ``Output:`` part of a script's header comment."""
    text = (lua_dir() / f"{name}.lua").read_text()
    header = text[: text.index("]]")]
    output = header[header.index("Output:") :]
    return {code: int(number) for number, code in HEADER_CODE.findall(output)}


@pytest.mark.parametrize("name", script_names())
def test_every_lua_header_agrees_with_the_status_table(name: str) -> None:
    listed = header_codes(name)
    assert listed, f"{name}.lua lists no result codes"
    for code, number in listed.items():
        assert code in Status.__members__, f"{name}.lua lists {code}, unknown to Status"
        assert Status[code] == number, f"{name}.lua: {code} is {number}, Status says {Status[code]}"


@pytest.mark.parametrize("name", script_names())
def test_every_code_a_script_returns_is_in_its_header(name: str) -> None:
    body = (lua_dir() / f"{name}.lua").read_text().split("]]", 1)[1]
    listed = set(header_codes(name).values())
    returned = {int(number) for number in RETURNED_CODE.findall(body)}
    assert returned <= listed, f"{name}.lua returns {sorted(returned - listed)} not in its header"


def test_a_planted_disagreement_is_found(tmp_path: Path) -> None:
    """The header check really reads the numbers: a header saying 31 for UNIT_UNAVAILABLE
    is caught."""
    text = (
        (lua_dir() / "hold.lua").read_text().replace("30 UNIT_UNAVAILABLE", "31 UNIT_UNAVAILABLE")
    )
    header = text[: text.index("]]")]
    found = dict((c, int(n)) for n, c in HEADER_CODE.findall(header[header.index("Output:") :]))
    assert found["UNIT_UNAVAILABLE"] != Status.UNIT_UNAVAILABLE


def test_scripts_carry_only_the_helpers_they_include() -> None:
    assert "local function choose_units" in read_script("hold")
    assert "local function choose_units" not in read_script("refresh")
    assert "local function now_ms" not in read_script("throttle")
    # A helper another helper needs comes along once, before it.
    hold = read_script("hold")
    assert hold.count("local function parse_cell") == 1
    assert hold.index("local function parse_cell") < hold.index("local function choose_units")
    assert "@include" not in hold


def test_helper_cycles_are_refused(tmp_path: Path) -> None:
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "a.lua").write_text('--- @include "b"\nlocal function a() end\n')
    (tmp_path / "include" / "b.lua").write_text('--- @include "a"\nlocal function b() end\n')
    (tmp_path / "s.lua").write_text('--- @include "a"\nreturn {0}\n')
    with pytest.raises(ValueError, match="a -> b -> a"):
        read_script("s", tmp_path)


def test_every_error_status_has_a_problem_and_every_problem_an_exception() -> None:
    signals = {
        Status.REFERENCE_TAKEN,
        Status.NEEDS_SWEEP,
        Status.STALE,
        Status.LEASE_LOST,
        Status.WAITLIST_KEYS,
    }
    quiet = {Status.OK, Status.REPLAYED, Status.NOT_EXPIRED}
    for status in Status:
        if status in signals | quiet:
            assert status.problem is None
            continue
        assert status.problem is not None, status
        with pytest.raises(HoldsvcError) as raised:
            raise_for_status([status.value, 0, "7", "-1"])
        assert raised.value.code == status.problem.code
        assert raised.value.status_code == status.problem.status
    for problem in Problem:
        made = HoldsvcError.by_problem[problem]
        assert made.problem is problem
        assert problem.code == problem.name.lower()
        assert problem.message and problem.title


def test_unknown_codes_raise() -> None:
    with pytest.raises(errors.UnknownStatus):
        raise_for_status([999, 0])


def test_openapi_descriptions_and_page_messages_come_from_the_table() -> None:
    for problem in Problem:
        assert problem.code in problem_description(problem.status)
        assert MESSAGES[problem.code] == problem.message


async def test_the_pages_javascript_gets_the_table_from_the_server(
    client: AsyncTestClient[Any],
) -> None:
    served = await client.get("/js/codes.js")
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/javascript")
    for problem in Problem:
        assert f'"{problem.code}":' in served.text
    # messages.js imports the table instead of copying it.
    source = (Path(__file__).parents[1] / "src/holdsvc/web/static/js/messages.js").read_text()
    assert 'from "/js/codes.js"' in source
    assert not any(f"  {problem.code}:" in source for problem in Problem)

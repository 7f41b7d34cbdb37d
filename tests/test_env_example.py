""".env.example lists every setting, and its values are the defaults."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from holdsvc.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
LINE = re.compile(r"^(#\s*)?HOLDSVC_([A-Z0-9_]+)=", re.MULTILINE)


def listed() -> dict[str, bool]:
    """Setting name -> whether its line is active (not commented out)."""
    text = ENV_EXAMPLE.read_text()
    return {m.group(2).lower(): m.group(1) is None for m in LINE.finditer(text)}


def test_every_setting_is_listed_and_nothing_else() -> None:
    assert set(listed()) == set(Settings.model_fields)


def test_active_lines_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HOLDSVC_"):
            monkeypatch.delenv(name)
    from_file = Settings(_env_file=ENV_EXAMPLE)
    defaults = Settings(_env_file=None)
    for name, active in listed().items():
        if active:
            assert getattr(from_file, name) == getattr(defaults, name), name
        else:
            assert getattr(defaults, name) is None, f"{name} has a default: list it uncommented"

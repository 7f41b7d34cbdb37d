"""How hold and reservation records store their units: a JSON array of unit ids.

A list kept as one JSON text never splits an id, whatever characters it holds; the scripts
write it with cjson (lua/include/record_units.lua reads it back the same way as here).
Records written before were comma-joined text, which never starts with ``[`` (unit ids never
did): they still read as the list they were written from.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

# msgspec rather than the json module: these run on every hold, several times.
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[str]).decode


def encode_units(units: Sequence[str]) -> str:
    """The stored form of a list of units."""
    return _encode(list(units)).decode()


def decode_units(text: str) -> list[str]:
    """The list of units a record stores (ValueError when it is not one)."""
    if not text.startswith("["):
        return [unit for unit in text.split(",") if unit]  # written before JSON arrays
    try:
        return _decode(text)
    except msgspec.DecodeError as error:
        raise ValueError(f"not a list of unit ids: {text!r}") from error

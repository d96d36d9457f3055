"""Strict JSON for untrusted input: UTF-8, no duplicate members, no NaN or Infinity, no NUL
character in a string (no value of ours carries one, and PostgreSQL text cannot hold it).

RFC 8725 §3.7 (PIN: duplicate member names are rejected rather than last-one-wins, so two
parsers can never disagree about a token's claims).
"""

from __future__ import annotations

import json
import re
from typing import Any


class JSONError(ValueError):
    """The input is not strict UTF-8 JSON of the expected shape."""


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise JSONError("duplicate JSON member")
    return obj


def _reject_constant(name: str) -> Any:
    raise JSONError(f"non-standard JSON constant {name}")


# ``\u0000`` not itself escaped (an even run of backslashes before it is escaped backslashes).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def parse_json(raw: bytes) -> Any:
    """Decode strict JSON; raises :class:`JSONError`."""
    try:
        text = raw.decode("utf-8")
        value = _DECODER.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise JSONError("not UTF-8 JSON") from None
    if "\\u0000" in text and _NUL_ESCAPE.search(text):  # a substring scan first: cheap
        raise JSONError("NUL character in a JSON string")
    return value


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode strict JSON that must be an object."""
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise JSONError("not a JSON object")
    return value

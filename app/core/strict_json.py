"""Strict JSON for untrusted input: UTF-8, no duplicate members, no NaN or Infinity (nor a
number beyond the float range, nor an integer of more than 40 characters), and no string
holding a NUL character or an unpaired UTF-16 surrogate (both can only arrive as
``\\u`` escapes; no value of ours carries one, PostgreSQL text cannot hold a NUL, and no
UTF-8 encoder, the database drivers' included, accepts a lone surrogate).

RFC 8725 §3.7 (PIN: duplicate member names are rejected rather than last-one-wins, so two
parsers can never disagree about a token's claims).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
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


MAX_INTEGER_CHARS = 40  # more than any integer a request carries (amounts are strings)


def _int(text: str) -> int:
    # Python refuses to convert more than 4,300 digits, with a bare ValueError.
    if len(text) > MAX_INTEGER_CHARS:
        raise JSONError("integer out of range")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e99999 would silently become Infinity
        raise JSONError("number out of range")
    return value


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_DECODER = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates,
    parse_constant=_reject_constant,
    parse_int=_int,
    parse_float=_float,
)


def strings_within(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value, member names included."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _holds_unstorable_text(value: Any) -> bool:
    """Whether any string (member names included) holds a NUL or a lone surrogate."""
    return any(_UNSTORABLE.search(text) for text in strings_within(value))


def parse_json(raw: bytes) -> Any:
    """Decode strict JSON; raises :class:`JSONError`."""
    try:
        text = raw.decode("utf-8")
        value = _DECODER.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise JSONError("not UTF-8 JSON") from None
    # Raw UTF-8 cannot carry either character (control characters must be escaped, and the
    # decoder refuses surrogates), so only input with an escape needs the walk.
    if "\\u" in text and _holds_unstorable_text(value):
        raise JSONError("NUL character or unpaired surrogate in a JSON string")
    return value


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode strict JSON that must be an object."""
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise JSONError("not a JSON object")
    return value

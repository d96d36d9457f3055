"""RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value.

Used wherever a JSON document is hashed and must hash the same for everyone who holds it:
the passkey approval challenge (``core/approvals.py``) and the audit chain
(``registry/services/audit.py``). Numbers are serialised as ECMAScript does (RFC 8785
§3.2.2.3), strings with the minimal JSON escapes, members sorted by their UTF-16 code units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any

_MAX_SAFE_INTEGER = 2**53 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(value: str) -> str:
    """RFC 8785 §3.2.2.2: escape only quote, backslash and control characters (``\\b``,
    ``\\t``, ``\\n``, ``\\f``, ``\\r`` by name, the rest as lower-case ``\\u00xx``), which is
    exactly what the standard library's C string encoder does without ``ensure_ascii``."""
    if _LONE_SURROGATE.search(value):
        raise ValueError("lone surrogates cannot be canonicalised")
    return encode_basestring(value)


def _number(value: float) -> str:
    """RFC 8785 §3.2.2.3: ECMAScript Number.prototype.toString for IEEE 754 doubles."""
    if not math.isfinite(value):
        raise ValueError("NaN and Infinity are not JSON")
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
        return str(int(value))
    digits, exponent = _shortest_digits(abs(value))
    sign = "-" if value < 0 else ""
    n = exponent + len(digits)  # position of the decimal point relative to the digits
    if len(digits) <= n <= 21:
        return sign + digits + "0" * (n - len(digits))
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    exp = n - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exp > 0 else '-'}{abs(exp)}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits and exponent: value = int(digits) * 10**exponent."""
    mantissa, _, exp_text = f"{value!r}".partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0") or "0"
    exponent = (int(exp_text) if exp_text else 0) - len(frac)
    stripped = digits.rstrip("0")
    return stripped, exponent + (len(digits) - len(stripped))


def canonicalize(value: Any) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme, UTF-8 encoded.

    Object members are sorted by their UTF-16 code units; integers beyond ±(2**53 - 1) are
    refused because JCS numbers are IEEE 754 doubles and would lose precision.
    """
    return _serialize(value).encode("utf-8")


def _serialize(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise ValueError("integers beyond 2**53 - 1 are not canonicalisable")
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_serialize(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("object member names must be strings")
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_string(k) + ":" + _serialize(value[k]) for k in keys) + "}"
    raise ValueError(f"cannot canonicalise {type(value).__name__}")

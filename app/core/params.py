"""Strict parsing of ``application/x-www-form-urlencoded`` OAuth request bodies.

RFC 6749 §3.1/§3.2: parameters sent without a value are treated as omitted, request and
response parameters must not be included more than once, and unknown parameters are ignored.
RFC 8707 §2 and RFC 8693 §2.1 allow ``resource`` and ``audience`` to repeat.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from app.core.errors import InvalidRequest

REPEATABLE = frozenset({"resource", "audience"})
MAX_BODY_BYTES = 64 * 1024
MAX_PARAMS = 64
MAX_VALUE_CHARS = 16 * 1024


@dataclass(frozen=True, slots=True)
class FormParams(Mapping[str, str]):
    """Single-valued parameters as a mapping; repeatable ones through :meth:`getlist`."""

    single: Mapping[str, str]
    multi: Mapping[str, tuple[str, ...]]

    def __getitem__(self, name: str) -> str:
        return self.single[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.single)

    def __len__(self) -> int:
        return len(self.single)

    def getlist(self, name: str) -> tuple[str, ...]:
        if name in self.multi:
            return self.multi[name]
        value = self.single.get(name)
        return () if value is None else (value,)

    def require(self, name: str) -> str:
        """Return a required parameter or raise ``invalid_request`` naming it."""
        value = self.single.get(name)
        if value is None:
            raise InvalidRequest(f"Missing required parameter: {name}.")
        return value


_ASCII_DIGITS = frozenset(b"0123456789")


def ascii_int(raw: str | bytes, max_digits: int = 18) -> int | None:
    """The value of 1 to ``max_digits`` ASCII digits, else ``None``. ``str.isdigit`` and
    ``int`` also take other scripts' digits (``"²"``, Arabic-Indic ones), and ``int``
    refuses more than 4,300 digits with a bare ``ValueError``: no request reaches them."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    if not 0 < len(data) <= max_digits or not _ASCII_DIGITS.issuperset(data):
        return None
    return int(data)


def _decode(component: bytes) -> str:
    raw = unquote_to_bytes(component.replace(b"+", b" "))
    if b"\x00" in raw:  # no parameter carries one, and PostgreSQL text cannot hold it
        raise InvalidRequest("The request body contains a NUL character.")
    try:
        return raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("The request body is not valid UTF-8.") from None


def parse_form(
    body: bytes,
    *,
    repeatable: frozenset[str] = REPEATABLE,
    max_bytes: int = MAX_BODY_BYTES,
    max_params: int = MAX_PARAMS,
    max_value_chars: int = MAX_VALUE_CHARS,
) -> FormParams:
    """Parse a form body strictly.

    Duplicated parameters raise ``invalid_request`` unless listed in ``repeatable``; empty
    values count as absent (RFC 6749 §3.1); oversized bodies raise ``invalid_request`` with
    status 413.
    """
    if len(body) > max_bytes:
        raise InvalidRequest("The request body is too large.", status_code=413)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    pairs = [p for p in body.split(b"&") if p]
    if len(pairs) > max_params:
        raise InvalidRequest("Too many parameters.")
    for pair in pairs:
        raw_name, sep, raw_value = pair.partition(b"=")
        name = _decode(raw_name)
        value = _decode(raw_value) if sep else ""
        if len(value) > max_value_chars:
            raise InvalidRequest(f"Parameter {name[:40]} is too long.")
        if not value:
            continue
        if name in repeatable:
            multi.setdefault(name, []).append(value)
        elif name in single:
            raise InvalidRequest(f"Parameter {name[:40]} is included more than once.")
        else:
            single[name] = value
    return FormParams(single=single, multi={k: tuple(v) for k, v in multi.items()})

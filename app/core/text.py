"""Text that a human reads before approving: no character that changes how the rest renders.

Bidirectional controls (U+202E "right-to-left override", the isolates), zero-width and other
format characters, control characters, line and paragraph separators, private-use and
unassigned code points can make a message render differently from what it says ("…5.00 EUR"
shown for "…RUE 00.5"). Agent-supplied text refuses all of them (Unicode general categories
Cc, Cf, Co, Cn, Cs, Zl, Zp).
"""

from __future__ import annotations

import unicodedata

_REFUSED = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})


def unsafe_character(text: str) -> str | None:
    """The first character of ``text`` that may not be shown to a human, else ``None``."""
    if text.isascii():
        return next((c for c in text if not " " <= c <= "~"), None)
    return next((c for c in text if unicodedata.category(c) in _REFUSED), None)


def check_display_text(text: str, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the code point when ``text`` holds one."""
    char = unsafe_character(text)
    if char is not None:
        raise ValueError(
            f"{name} contains U+{ord(char):04X}, a control or format character"
            " that could change how the text is shown"
        )

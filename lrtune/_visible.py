"""User text shown as it is: the characters a terminal or a browser would obey rather than show
(control characters, among them NUL and the ESC that starts an ANSI escape, and the
bidirectional overrides that reorder a line, U+202A-U+202E and U+2066-U+2069) are written as
their Python escapes, so a study named ``"a\\u202eb"`` reads ``a\\u202eb`` in ``lrtune show``
and in the HTML report alike."""

from __future__ import annotations

_ESCAPED = {c: ascii(chr(c))[1:-1]
            for c in (*range(0x20), 0x7F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def visible(text: str) -> str:
    """``text`` with every character a display would obey written as its escape."""
    return text.translate(_ESCAPED)

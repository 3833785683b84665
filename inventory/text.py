"""Text from vCenter or a user shown where invisible characters could mislead: pure Python (the topology drawing,
which imports no Django, uses it too)."""

from __future__ import annotations

import unicodedata

# Control, format (zero-width, bidirectional overrides), separator and surrogate/private characters: never part of
# a name an admin types; on a page or in a drawing a right-to-left override reverses the text after it.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})


def is_invisible(char: str) -> bool:
    """A control, format, separator, surrogate or private-use character."""
    return unicodedata.category(char) in _INVISIBLE


def visible_text(value: str) -> str:
    """``value`` with control and invisible characters shown as escapes (``\\u202e``)."""
    return "".join(ch.encode("unicode_escape").decode("ascii") if is_invisible(ch) else ch for ch in str(value))

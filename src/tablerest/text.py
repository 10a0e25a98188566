"""Text that names a person: one spelling per name, so look-alikes cannot pose as each other.

``normalize_text`` is what sign-up stores and what login compares: NFKC (full-width and
compatibility forms folded), trimmed, and refused when it holds control or format characters
(zero-width spaces, bidi overrides) that make two different strings look the same.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories refused inside a name: controls, format characters (zero-width,
#: bidi), surrogates, private use and unassigned code points.
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def normalize_text(value: str) -> str:
    """``value`` in NFKC, trimmed; ``ValueError`` naming the first invisible character."""
    text = unicodedata.normalize("NFKC", value).strip()
    for char in text:
        if unicodedata.category(char) in _REFUSED:
            raise ValueError(
                f"must not contain the invisible or control character U+{ord(char):04X}"
            )
    return text


def fold_case(value: str) -> str:
    """The key two names are compared by: normalized, then case-folded."""
    return normalize_text(value).casefold()

"""The ``Prefer`` header (RFC 7240) as PostgREST reads it.

Every ``Prefer`` header is split on ``,`` and trimmed; the first occurrence of a preference
wins; unknown ones (or unknown values) are ignored, unless ``handling=strict``, which makes
them a 400 ``PGRST122``. The honoured ones are echoed in ``Preference-Applied``, in
PostgREST's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import PostgrestError

#: Each preference and the values it takes (None: a non-negative integer).
KNOWN: dict[str, tuple[str, ...] | None] = {
    "resolution": ("merge-duplicates", "ignore-duplicates"),
    "missing": ("default", "null"),
    "return": ("minimal", "headers-only", "representation"),
    "count": ("exact", "planned", "estimated"),
    "tx": ("commit", "rollback"),
    "handling": ("strict", "lenient"),
    "timezone": (),
    "max-affected": None,
}
#: The order of ``Preference-Applied``.
ORDER = ("resolution", "missing", "return", "count", "tx", "handling", "timezone",
         "max-affected")


@dataclass
class Preferences:
    """What the request prefers; ``applied`` lists the preferences to echo."""

    values: dict[str, str] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def use(self, name: str) -> str | None:
        """The preference's value, marked as honoured."""
        value = self.values.get(name)
        if value is not None:
            self.applied.add(name)
        return value

    @property
    def strict(self) -> bool:
        return self.values.get("handling") == "strict"

    @property
    def max_affected(self) -> int | None:
        raw = self.values.get("max-affected")
        return int(raw) if raw is not None else None

    def header(self) -> str | None:
        shown = [f"{name}={self.values[name]}" for name in ORDER if name in self.applied]
        return ", ".join(shown) or None


def parse_prefer(headers: Sequence[str]) -> Preferences:
    """The preferences of the request's ``Prefer`` headers."""
    found = Preferences()
    invalid: list[str] = []
    for header in headers:
        for part in header.split(","):
            text = part.strip()
            if not text:
                continue
            name, _, value = text.partition("=")
            name, value = name.strip(), value.strip()
            if not _valid(name, value):
                invalid.append(text)
                continue
            found.values.setdefault(name, value)
    if found.strict and invalid:
        raise PostgrestError(400, "PGRST122", "Invalid preferences given with handling=strict",
                             f"Invalid preferences: {', '.join(invalid)}")
    if "handling" in found.values:
        found.applied.add("handling")
    return found


def _valid(name: str, value: str) -> bool:
    if name not in KNOWN:
        return False
    allowed = KNOWN[name]
    if allowed is None:
        return value.isascii() and value.isdigit() and len(value) < 19
    if name == "timezone":
        return False  # datetimes are always UTC here: a time zone is not honoured
    return value in allowed

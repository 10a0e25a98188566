"""The chaos ledger: what each client knows it wrote, and what the checks found.

For every key a client writes (one of its messages, one of its follows) the ledger keeps the
set of states the key may be in now: one state after an acknowledged (2xx) write, more after
a write whose outcome is unknown (no answer, or a 5xx), since that write may or may not have
taken effect. A later acknowledged write settles the key again. A write that timed out may
still be running on the server, so its key is retired: never written again, and at the end
allowed to be in any of its states.

Every content a client sends is unique, so a row names the request that wrote it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

GONE = None  # the state of a message after its delete
CREATE = "create"


@dataclass
class Message:
    """One of a client's messages, by the id the server answered when it was created."""

    id: int
    states: set[str | None]
    history: set[str]  # every content ever sent for this message
    retired: bool = False

    @property
    def certain(self) -> bool:
        return len(self.states) == 1

    @property
    def live(self) -> bool:
        """May exist now (some state is a content)."""
        return any(state is not GONE for state in self.states)

    @property
    def gone(self) -> bool:
        """Acknowledged deleted, and nothing since."""
        return self.states == {GONE}

    def settle(self, state: str | None) -> None:
        self.states = {state}
        if state is not None:
            self.history.add(state)

    def maybe(self, state: str | None, *, timed_out: bool) -> None:
        self.states.add(state)
        if state is not None:
            self.history.add(state)
        self.retired = self.retired or timed_out


@dataclass
class Follow:
    """One client's follow of one other client: may it be there now?"""

    states: set[bool] = field(default_factory=lambda: {False})
    put_sent: bool = False  # a PUT was ever sent, so the row may exist
    retired: bool = False

    @property
    def certain(self) -> bool:
        return len(self.states) == 1

    def settle(self, state: bool) -> None:
        self.states = {state}

    def maybe(self, state: bool, *, timed_out: bool) -> None:
        self.states.add(state)
        self.retired = self.retired or timed_out


@dataclass
class Ledger:
    """Everything one client wrote, and how each write was answered."""

    name: str
    user_id: int
    messages: dict[int, Message] = field(default_factory=dict)
    replaced: list[Message] = field(default_factory=list)  # entries whose id came back
    sent: dict[str, str] = field(default_factory=dict)  # content -> "create" or "patch <id>"
    acked_creates: dict[str, int] = field(default_factory=dict)  # content -> id answered
    unknown_creates: set[str] = field(default_factory=set)
    follows: dict[int, Follow] = field(default_factory=dict)  # by the followed user's id

    def tracked(self) -> Iterator[Message]:
        yield from self.replaced
        yield from self.messages.values()


class DeletedIds:
    """Message ids whose delete was acknowledged, across clients: none may come back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[int, str] = {}

    def add(self, message_id: int, client: str) -> None:
        with self._lock:
            self._ids[message_id] = client

    def deleter(self, message_id: int) -> str | None:
        with self._lock:
            return self._ids.get(message_id)


#: The checked columns, in table order; each must be zero.
LOST = "lost writes"
PHANTOM = "phantom writes"
DUPLICATES = "duplicate rows"
UNEXPLAINED = "unexplained 5xx"
STALE = "stale reads"
REUSED = "reused ids"
UNEXPECTED = "unexpected 4xx"
COLUMNS = (LOST, PHANTOM, DUPLICATES, UNEXPLAINED, STALE, REUSED, UNEXPECTED)


class Findings:
    """What went wrong, by column: each finding once per key, with a line of evidence."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, dict[str, str]] = {column: {} for column in COLUMNS}
        self._serial = itertools.count()
        self.unknown_writes = 0
        self.integrity = "not checked"

    def note(self, column: str, detail: str, key: str | None = None) -> None:
        """Record ``detail`` under ``column``; a second finding of the same ``key`` is
        the same fault seen again (by the API and by SQL, say) and is not counted twice."""
        with self._lock:
            found = self._found[column]
            found.setdefault(key if key is not None else f"#{next(self._serial)}", detail)

    def unknown(self) -> None:
        with self._lock:
            self.unknown_writes += 1

    def count(self, column: str) -> int:
        return len(self._found[column])

    def details(self, column: str) -> list[str]:
        return list(self._found[column].values())


@dataclass(frozen=True)
class Seen:
    """A message as one source shows it: absent, or its author and content."""

    user_id: int | None = None
    content: str | None = None

    @property
    def absent(self) -> bool:
        return self.user_id is None


def judge(message: Message, owner: int, seen: Seen) -> str | None:
    """The column a mismatch between ``message``'s possible states and what a source shows
    belongs to (``LOST`` for an older or missing state, ``REUSED`` for another message
    under a deleted id), or None when the source agrees."""
    if seen.absent:
        return None if GONE in message.states else LOST
    if seen.user_id == owner and seen.content in message.states:
        return None
    if GONE in message.states and not (seen.user_id == owner and seen.content in message.history):
        return REUSED  # the id names a message this one never was
    return LOST

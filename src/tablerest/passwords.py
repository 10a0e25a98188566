"""Argon2 password hashes, and a bound on how many one app computes at once.

Parameters follow the OWASP Password Storage Cheat Sheet: argon2id with 19 MiB of memory,
2 iterations and 1 degree of parallelism (its minimum configuration), instead of
argon2-cffi's default 64 MiB. Hashes made with other parameters still verify: Argon2 writes
its parameters into every hash.

Each hash or check holds ~19 MiB and a core for tens of milliseconds, so a burst of logins
or sign-ups could take a process's memory and CPU. Inside a tablerest app every hash and
check takes a slot of the app's ``HashGate`` (``TABLEREST_HASH_CONCURRENCY`` slots): the
excess waits up to ``TABLEREST_HASH_WAIT_MS``, then is answered 503 with ``Retry-After``.
Outside an app (scripts, tests) nothing is bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context

from .errors import ServiceUnavailable

#: argon2id, m=19 MiB, t=2, p=1: OWASP's minimum configuration for Argon2id.
MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1

_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)


class _Held(threading.local):
    depth = 0  # slots this thread holds, nested


class HashGate:
    """At most ``slots`` password hashes at once; a caller waits ``wait`` seconds for one,
    then gets 503 telling it to retry after ``retry_after`` seconds.

    A thread that holds a slot may enter again (a login holds one around its lookup and its
    check, so that waiting logins hold no database connection).
    """

    def __init__(self, slots: int, wait: float, retry_after: int) -> None:
        self.slots, self.wait, self.retry_after = slots, wait, retry_after
        self._semaphore = threading.BoundedSemaphore(slots)
        self._held = _Held()

    @contextmanager
    def slot(self) -> Iterator[None]:
        held = self._held
        if held.depth == 0 and not self._semaphore.acquire(timeout=self.wait):
            raise ServiceUnavailable(
                f"The server is busy checking other passwords ({self.slots} at a time); "
                f"retry in {self.retry_after} second(s).",
                headers={"Retry-After": str(self.retry_after)},
            )
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                self._semaphore.release()


def current_gate() -> HashGate | None:
    """The gate of the tablerest app being served; None outside an app context."""
    if not has_app_context():
        return None
    from .state import State

    state = current_app.extensions.get("tablerest")
    return state.hash_gate if isinstance(state, State) else None


def _slot() -> AbstractContextManager[None]:
    gate = current_gate()
    return nullcontext() if gate is None else gate.slot()


def hash_password(plain: str) -> PasswordHash:
    """An Argon2 hash of ``plain``, made in one of the current app's hashing slots."""
    with _slot():
        return PasswordHash(_hasher.hash(plain))


def verify_password(stored: str, plain: str) -> bool:
    """Whether ``plain`` is the password ``stored`` hashes; False for a malformed hash."""
    try:
        with _slot():
            return bool(_hasher.verify(stored, plain))
    except (VerificationError, InvalidHashError):
        return False


class PasswordHash(str):
    """A stored Argon2 hash; ``==`` with a plain string verifies the password."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PasswordHash):
            return str.__eq__(self, other)
        if not isinstance(other, str):
            return NotImplemented
        return verify_password(str(self), other)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return "PasswordHash('<hidden>')"

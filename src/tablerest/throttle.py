"""Failed logins counted per account and per client address, so that guessing is refused.

Each account (the identifier a login names, normalised) and each client address may fail
``limit`` times in a window of ``window`` seconds that opens at its first failure; past that,
logins are refused (429 with ``Retry-After``, the seconds until the window closes) before
any password is looked at, so a refused attempt costs no hashing. A successful login
clears its account's count.

The counts live in the process's memory: with N worker processes an attacker gets up to N
times the limits. Each table keeps at most ``max_entries`` keys and forgets the oldest
windows first, so spraying many names or addresses cannot grow it without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .errors import TooManyRequests

#: Keys each table keeps (about 100 bytes each) before it forgets the oldest.
MAX_ENTRIES = 10_000


@dataclass
class _Window:
    opened: float
    failures: int


class FailureCounter:
    """Failures per key in a window opened by the key's first failure; bounded in size."""

    def __init__(self, limit: int, window: float, max_entries: int = MAX_ENTRIES) -> None:
        self.limit, self.window, self.max_entries = limit, window, max_entries
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def _open(self, key: str, now: float) -> _Window | None:
        found = self._windows.get(key)
        if found is not None and now - found.opened >= self.window:
            del self._windows[key]
            return None
        return found

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        found = self._open(key, now)
        if found is None or found.failures < self.limit:
            return 0.0
        return found.opened + self.window - now

    def fail(self, key: str, now: float) -> None:
        found = self._open(key, now)
        if found is not None:
            found.failures += 1
            return
        self._windows[key] = _Window(now, 1)  # newest last: the front closes first
        self._forget_closed(now)
        while len(self._windows) > self.max_entries:
            self._windows.popitem(last=False)

    def _forget_closed(self, now: float) -> None:
        windows = self._windows
        while windows:
            oldest = next(iter(windows.values()))
            if now - oldest.opened < self.window:
                return
            windows.popitem(last=False)

    def clear(self, key: str) -> None:
        self._windows.pop(key, None)


class LoginThrottle:
    """The failed-login counts of one app: per account and per client address."""

    def __init__(self, per_account: int, per_address: int, window: float,
                 max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts = FailureCounter(per_account, window, max_entries)
        self.addresses = FailureCounter(per_address, window, max_entries)
        self._clock = clock
        self._lock = threading.Lock()

    def check(self, account: str | None, address: str | None) -> None:
        """429 when ``account`` or ``address`` has failed too often in its window."""
        with self._lock:
            now = self._clock()
            by_account = self.accounts.wait(account, now) if account is not None else 0.0
            by_address = self.addresses.wait(address, now) if address is not None else 0.0
        if by_account == by_address == 0.0:
            return
        seconds = max(1, math.ceil(max(by_account, by_address)))
        what = "this account" if by_account >= by_address else "this client address"
        raise TooManyRequests(
            f"Too many failed logins for {what}; try again in {seconds} second(s).",
            headers={"Retry-After": str(seconds)},
        )

    def failed(self, account: str | None, address: str | None) -> None:
        with self._lock:
            now = self._clock()
            if account is not None:
                self.accounts.fail(account, now)
            if address is not None:
                self.addresses.fail(address, now)

    def succeeded(self, account: str | None) -> None:
        """A successful login clears its account's failures (not its address's)."""
        if account is not None:
            with self._lock:
                self.accounts.clear(account)

"""The login throttle's windows and its bound on memory, on a clock the test moves.

What HTTP clients see (429, Retry-After, per account and per address) is in test_auth.py;
these are the parts a test cannot wait for: windows closing, and a spray of names.
"""

from __future__ import annotations

import pytest

from tablerest.errors import TooManyRequests
from tablerest.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def retry_after(throttle: LoginThrottle, account: str | None, address: str | None,
                ) -> int | None:
    """The Retry-After a login would get, or None when it may go ahead."""
    try:
        throttle.check(account, address)
    except TooManyRequests as refused:
        assert refused.status == 429
        return int(refused.headers["Retry-After"])
    return None


def test_a_window_opens_at_the_first_failure_and_closes_after_its_length(
        clock: Clock) -> None:
    throttle = LoginThrottle(per_account=2, per_address=100, window=60, clock=clock)
    throttle.failed("jane", "10.0.0.1")
    clock.now += 30
    assert retry_after(throttle, "jane", "10.0.0.1") is None
    throttle.failed("jane", "10.0.0.1")

    assert retry_after(throttle, "jane", "10.0.0.1") == 30
    clock.now += 29.5
    assert retry_after(throttle, "jane", None) == 1  # rounded up, never 0
    clock.now += 0.5
    assert retry_after(throttle, "jane", "10.0.0.1") is None
    throttle.failed("jane", "10.0.0.1")  # a new window, one failure in it
    assert retry_after(throttle, "jane", "10.0.0.1") is None


def test_the_longer_wait_wins_and_success_clears_only_the_account(clock: Clock) -> None:
    throttle = LoginThrottle(per_account=1, per_address=2, window=100, clock=clock)
    throttle.failed("jane", "10.0.0.1")
    clock.now += 40
    throttle.failed("john", "10.0.0.1")

    assert retry_after(throttle, "john", "10.0.0.1") == 100  # the account's 100 over 60
    assert retry_after(throttle, "ann", "10.0.0.1") == 60  # the address's window
    throttle.succeeded("jane")
    assert retry_after(throttle, "jane", None) is None
    assert retry_after(throttle, "jane", "10.0.0.1") == 60
    assert retry_after(throttle, None, "10.0.0.2") is None


def test_a_spray_of_names_cannot_grow_the_tables_past_their_bound(clock: Clock) -> None:
    throttle = LoginThrottle(per_account=1, per_address=1, window=300, max_entries=100,
                             clock=clock)
    for index in range(1000):
        clock.now += 0.01
        throttle.failed(f"name-{index}", f"10.0.{index // 256}.{index % 256}")

    assert len(throttle.accounts) == len(throttle.addresses) == 100
    assert retry_after(throttle, "name-999", None) is not None  # the newest are kept
    assert retry_after(throttle, "name-0", None) is None  # the oldest are forgotten


def test_closed_windows_are_forgotten(clock: Clock) -> None:
    throttle = LoginThrottle(per_account=5, per_address=5, window=10, clock=clock)
    for index in range(50):
        throttle.failed(f"name-{index}", None)
    clock.now += 10
    throttle.failed("late", None)

    assert len(throttle.accounts) == 1

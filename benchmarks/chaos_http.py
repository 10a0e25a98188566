"""HTTP for the chaos clients: one keep-alive ``http.client`` connection per thread, and the
tally of every answer (standard library only, 127.0.0.1 only).

A request either gets an answer (``Reply``, any status) or gets none (``NoAnswer``: the
connection broke, was refused, or timed out). A write without an answer, or answered 5xx, is
an unknown outcome: its effect may or may not be in the database. Reads without an answer are
retried on a fresh connection, a bounded number of times.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

HOST = "127.0.0.1"
READ_ATTEMPTS = 4
READ_PAUSE = 0.25  # seconds between attempts of a read
# gunicorn closes a keep-alive connection idle for 2 s (--keep-alive): a request sent on it
# then fails unanswered, a fault of the client's, not the server's. Reconnect before that.
IDLE_LIMIT = 1.0
EXCERPT = 200


@dataclass(frozen=True)
class Reply:
    """An HTTP answer; header names are lower-case."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    @property
    def explained(self) -> bool:
        """Not a 5xx, or a 503 that says when to retry: the refusal the contract allows."""
        return self.status < 500 or (self.status == 503 and "retry-after" in self.headers)

    @property
    def retry_after(self) -> float:
        try:
            return float(self.headers.get("retry-after", "1"))
        except ValueError:
            return 1.0


@dataclass(frozen=True)
class NoAnswer:
    """The request got no HTTP answer: ``kind`` is ``"timeout"`` or ``"connection"``."""

    kind: str
    detail: str

    @property
    def status_label(self) -> str:
        return f"no answer ({self.kind})"


Outcome = Reply | NoAnswer


def excerpt(body: bytes) -> str:
    text = body.decode(errors="replace")
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


@dataclass
class Tally:
    """Every request of one engine's run: counts per status and the 5xx nobody explained."""

    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    unexplained: list[str] = field(default_factory=list)
    no_answer: Counter[str] = field(default_factory=Counter)  # by method
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, path: str, outcome: Outcome) -> None:
        with self._lock:
            self.requests += 1
            if isinstance(outcome, NoAnswer):
                self.statuses[outcome.status_label] += 1
                self.no_answer[method] += 1
                return
            self.statuses[str(outcome.status)] += 1
            if not outcome.explained:
                self.unexplained.append(
                    f"{method} {path} answered {outcome.status}"
                    f" (Retry-After: {outcome.headers.get('retry-after', 'none')}):"
                    f" {excerpt(outcome.body)}"
                )


class Connection:
    """One client's keep-alive connection to the server; reopened after any failure."""

    def __init__(self, port: int, tally: Tally, timeout: float, token: str | None = None):
        self.port = port
        self.tally = tally
        self.timeout = timeout
        self.token = token
        self._http: http.client.HTTPConnection | None = None
        self._used = 0.0

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def send(self, method: str, path: str, body: Any = None) -> Outcome:
        """Send one request and record it; never raises for network trouble."""
        outcome = self._exchange(method, path, body)
        self.tally.record(method, path, outcome)
        return outcome

    def read(self, path: str, until: float | None = None) -> Outcome:
        """``GET path``, retried on a fresh connection when it gets no answer or a 503,
        at most ``READ_ATTEMPTS`` times and not past ``until`` (monotonic seconds)."""
        outcome: Outcome = NoAnswer("connection", "not sent")
        for attempt in range(READ_ATTEMPTS):
            outcome = self.send("GET", path)
            if isinstance(outcome, Reply) and outcome.status != 503:
                return outcome
            # Shorter than Retry-After: the chaos is in sending while the server is down.
            pause = min(outcome.retry_after, READ_PAUSE) if isinstance(outcome, Reply) else 0.1
            if attempt + 1 == READ_ATTEMPTS or (
                until is not None and time.monotonic() + pause > until
            ):
                break
            time.sleep(pause)
        return outcome

    def _exchange(self, method: str, path: str, body: Any) -> Outcome:
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if self._http is not None and time.monotonic() - self._used > IDLE_LIMIT:
            self.close()
        if self._http is None:
            self._http = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            self._http.request(method, path, body=payload, headers=headers)
            response = self._http.getresponse()
            data = response.read()
        except TimeoutError as error:
            self.close()
            return NoAnswer("timeout", f"{type(error).__name__}: {error}")
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return NoAnswer("connection", f"{type(error).__name__}: {error}")
        self._used = time.monotonic()
        if response.will_close:
            self.close()
        headers_out = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, headers_out, data)

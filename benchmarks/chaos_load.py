"""One chaos client: a thread that writes and reads through the server as one account, keeps
its ledger, and checks that it reads its own acknowledged writes back.

Each step is picked at random: create, patch or delete one of its messages (deletes often
take the newest, so an id handed out twice shows), follow or unfollow another client (also
the same PUT or DELETE sent twice at once from two threads), read its timeline page by page,
read lists, read a message it deleted, read a message it wrote. After each acknowledged write
it reads the item back at once: an older state is a stale read.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .chaos_http import Connection, NoAnswer, Outcome, Reply, Tally, excerpt
from .chaos_ledger import (
    CREATE,
    GONE,
    REUSED,
    STALE,
    UNEXPECTED,
    DeletedIds,
    Findings,
    Follow,
    Ledger,
    Message,
    Seen,
    judge,
)

MAX_LIVE = 25  # messages a client keeps; past this it deletes instead of creating
PAGES = 3  # timeline pages read by cursor in one step
FOLLOWING_PAGES = 5
_WORDS = ("chaos", "monkey", "kills", "a", "worker", "while", "the", "clients", "keep",
          "on", "writing")

ACK, UNKNOWN, TIMEOUT, REFUSED = "ack", "unknown", "timeout", "refused"


def verdict(outcome: Outcome, ok: int) -> str:
    """What a write's outcome says about its effect."""
    if isinstance(outcome, NoAnswer):
        return TIMEOUT if outcome.kind == "timeout" else UNKNOWN
    if outcome.status == ok:
        return ACK
    return UNKNOWN if outcome.status >= 500 else REFUSED


@dataclass(frozen=True)
class Shared:
    """What every client of one run shares."""

    port: int
    timeout: float
    tally: Tally
    findings: Findings
    deleted: DeletedIds
    names: dict[int, str]  # user id -> client name, for the evidence

    def who(self, user_id: int | None) -> str:
        return self.names.get(user_id, f"user {user_id}") if user_id is not None else "nobody"


class Client:
    """One account's load: set ``until``, then call ``run()`` in a thread of its own."""

    def __init__(self, ledger: Ledger, token: str, peers: list[int], shared: Shared,
                 seed: int) -> None:
        self.ledger = ledger
        self.peers = peers
        self.shared = shared
        self.rng = random.Random(seed)
        self.http = Connection(shared.port, shared.tally, shared.timeout, token)
        self.twin = Connection(shared.port, shared.tally, shared.timeout, token)
        self.until = 0.0  # monotonic seconds: when the load ends
        self.crash: BaseException | None = None
        self._serial = 0
        for peer in peers:
            ledger.follows.setdefault(peer, Follow())

    def run(self) -> None:
        """Run random steps until the monotonic clock reaches ``until``."""
        steps: list[tuple[Callable[[], None], int]] = [
            (self.create, 4), (self.patch, 3), (self.delete, 2),
            (lambda: self.link("PUT"), 2), (lambda: self.link("DELETE"), 2),
            (lambda: self.link("PUT", twice=True), 1),
            (lambda: self.link("DELETE", twice=True), 1),
            (self.timeline, 2), (self.lists, 2), (self.reread_deleted, 1), (self.get_own, 1),
        ]
        actions = [action for action, _ in steps]
        weights = [weight for _, weight in steps]
        try:
            while time.monotonic() < self.until:
                self.rng.choices(actions, weights)[0]()
        except BaseException as error:  # reported by the run, which re-raises it
            self.crash = error
        finally:
            self.http.close()
            self.twin.close()

    def stop(self) -> None:
        """End ``run`` after the step under way (a fault could not be injected)."""
        self.until = 0.0

    # -- messages ---------------------------------------------------------------------------

    def _content(self) -> str:
        self._serial += 1
        words = " ".join(self.rng.choices(_WORDS, k=self.rng.randint(2, 8)))
        return f"{self.ledger.name} #{self._serial}: {words}"

    def _live(self) -> list[Message]:
        return [m for m in self.ledger.messages.values() if m.live and not m.retired]

    def create(self) -> None:
        if len(self._live()) >= MAX_LIVE:
            self.delete()
            return
        content = self._content()
        self.ledger.sent[content] = CREATE
        path = self.rng.choice(("/messages", f"/users/{self.ledger.user_id}/messages"))
        outcome = self.http.send("POST", path, {"content": content})
        answer = verdict(outcome, 201)
        if answer == ACK:
            assert isinstance(outcome, Reply)
            self._created(path, content, outcome)
        elif answer == REFUSED:
            self._unexpected("POST", path, outcome)
        else:
            self.ledger.unknown_creates.add(content)
            self.shared.findings.unknown()

    def _created(self, path: str, content: str, reply: Reply) -> None:
        body = reply.json()
        message_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(message_id, int) or body.get("content") != content \
                or body.get("user_id") != self.ledger.user_id:
            self.shared.findings.note(
                UNEXPECTED, f"POST {path} by {self.ledger.name} answered 201 with"
                f" {excerpt(reply.body)}, not the message it sent")
            self.ledger.unknown_creates.add(content)
            return
        self.ledger.acked_creates[content] = message_id
        deleter = self.shared.deleted.deleter(message_id)
        if deleter is not None:
            self.shared.findings.note(
                REUSED, f"POST {path} by {self.ledger.name} was given id {message_id},"
                f" the id of a message whose DELETE {deleter} saw acknowledged",
                key=f"message {message_id}")
        old = self.ledger.messages.get(message_id)
        if old is not None:
            self.ledger.replaced.append(old)
        message = Message(message_id, {content}, {content})
        self.ledger.messages[message_id] = message
        self.verify(message)

    def _pick(self) -> Message | None:
        live = self._live()
        if not live:
            return None
        if self.rng.random() < 0.5:
            return max(live, key=lambda m: m.id)  # the newest: its id is next to be handed out
        return self.rng.choice(live)

    def patch(self) -> None:
        message = self._pick()
        if message is None:
            self.create()
            return
        content = self._content()
        self.ledger.sent[content] = f"patch {message.id}"
        path = f"/messages/{message.id}"
        outcome = self.http.send("PATCH", path, {"content": content})
        answer = verdict(outcome, 200)
        if answer == ACK:
            message.settle(content)
            self.verify(message)
        elif answer == REFUSED:
            self._refused_on(message, "PATCH", path, outcome)
        else:
            message.maybe(content, timed_out=answer == TIMEOUT)
            self.shared.findings.unknown()

    def delete(self) -> None:
        message = self._pick()
        if message is None:
            return
        path = f"/messages/{message.id}"
        outcome = self.http.send("DELETE", path)
        answer = verdict(outcome, 204)
        if answer == ACK:
            message.settle(GONE)
            self.shared.deleted.add(message.id, self.ledger.name)
            self.verify(message)
        elif answer == REFUSED:
            self._refused_on(message, "DELETE", path, outcome)
        else:
            message.maybe(GONE, timed_out=answer == TIMEOUT)
            self.shared.findings.unknown()

    def _refused_on(self, message: Message, method: str, path: str, outcome: Outcome) -> None:
        """A 404 settles a message whose delete had an unknown outcome (a 403 too, and
        shows its id handed out again); any other refusal of a write to one's own message
        is unexpected."""
        status = outcome.status if isinstance(outcome, Reply) else None
        if status == 404 and GONE in message.states:
            message.settle(GONE)
            self.shared.deleted.add(message.id, self.ledger.name)
            return
        if status == 403 and GONE in message.states:
            # Deleted after all, and its id already someone else's: the server says so.
            message.settle(GONE)
            self.shared.findings.note(
                REUSED, f"{self.ledger.name} {method} {path} answered 403: its id now names"
                " someone else's message", key=f"message {message.id}")
            return
        self._unexpected(method, path, outcome)

    def verify(self, message: Message) -> None:
        """Read ``message`` back: a settled state must show as it was acknowledged."""
        if not message.certain or message.retired:
            return
        seen = self._read_message(message.id)
        if seen is None:
            return
        column = judge(message, self.ledger.user_id, seen)
        if column is None:
            return
        expected = "absent" if message.gone else repr(next(iter(message.states)))
        shown = "404" if seen.absent else f"{self.shared.who(seen.user_id)}'s {seen.content!r}"
        detail = (f"{self.ledger.name} GET /messages/{message.id}: expected {expected},"
                  f" got {shown}")
        if column == REUSED:
            self.shared.findings.note(REUSED, detail, key=f"message {message.id}")
        else:
            self.shared.findings.note(STALE, detail)

    def _read_message(self, message_id: int) -> Seen | None:
        # Either connection: each keeps alive to one worker, maybe not the one that wrote.
        connection = self.rng.choice((self.http, self.twin))
        outcome = connection.read(f"/messages/{message_id}", self.until)
        if not isinstance(outcome, Reply):
            return None
        if outcome.status == 404:
            return Seen()
        body = outcome.json()
        if outcome.status != 200 or not isinstance(body, dict):
            if outcome.status < 500:
                self._unexpected("GET", f"/messages/{message_id}", outcome)
            return None
        return Seen(body.get("user_id"), body.get("content"))

    def reread_deleted(self) -> None:
        """Read a message one deleted: whoever holds its URL must get 404."""
        gone = [m for m in self.ledger.messages.values() if m.gone]
        if gone:
            self.verify(self.rng.choice(gone))

    def get_own(self) -> None:
        settled = [m for m in self._live() if m.certain]
        if settled:
            self.verify(self.rng.choice(settled))

    # -- follows ----------------------------------------------------------------------------

    def link(self, method: str, *, twice: bool = False) -> None:
        """Follow (PUT) or unfollow (DELETE) a peer; ``twice`` sends it from two threads
        at the same moment, and both must answer 204."""
        choices = [peer for peer, f in self.ledger.follows.items() if not f.retired]
        if not choices:
            return
        peer = self.rng.choice(choices)
        follow = self.ledger.follows[peer]
        want = method == "PUT"
        follow.put_sent = follow.put_sent or want
        path = f"/users/{self.ledger.user_id}/following/{peer}"
        outcomes = self._twice(method, path) if twice else [self.http.send(method, path)]
        answers = [verdict(outcome, 204) for outcome in outcomes]
        for outcome, answer in zip(outcomes, answers, strict=True):
            if answer == REFUSED:
                self._unexpected(method, path + (" (sent twice at once)" if twice else ""),
                                 outcome)
            elif answer in (UNKNOWN, TIMEOUT):
                self.shared.findings.unknown()
        if ACK in answers:
            follow.settle(want)
            self._verify_follow(peer, follow)
        else:
            follow.maybe(want, timed_out=TIMEOUT in answers)

    def _twice(self, method: str, path: str) -> list[Outcome]:
        outcomes: list[Outcome] = [NoAnswer("connection", "not sent")] * 2
        start = threading.Barrier(2)

        def send(index: int, connection: Connection) -> None:
            # A broken barrier only makes the pair less simultaneous: send anyway.
            with contextlib.suppress(threading.BrokenBarrierError):
                start.wait(timeout=5)
            outcomes[index] = connection.send(method, path)

        other = threading.Thread(target=send, args=(1, self.twin), daemon=True)
        other.start()
        send(0, self.http)
        other.join(self.shared.timeout + 5)
        return outcomes

    def following(self) -> set[int] | None:
        """The ids the client follows, read through the API, or None when unreadable."""
        path: str | None = f"/users/{self.ledger.user_id}/following?limit=100&fields=id"
        ids: set[int] = set()
        connection = self.rng.choice((self.http, self.twin))
        for _ in range(FOLLOWING_PAGES):
            if path is None:
                return ids
            outcome = connection.read(path, self.until)
            body = outcome.json() if isinstance(outcome, Reply) else None
            if not isinstance(outcome, Reply) or outcome.status != 200 \
                    or not isinstance(body, dict):
                return None
            ids.update(item["id"] for item in body.get("items", []))
            path = body.get("next")
        return ids if path is None else None

    def _verify_follow(self, peer: int, follow: Follow) -> None:
        if follow.retired:
            return
        ids = self.following()
        if ids is not None and (peer in ids) not in follow.states:
            expected = "present" if True in follow.states else "absent"
            self.shared.findings.note(
                STALE, f"{self.ledger.name} GET /users/{self.ledger.user_id}/following:"
                f" user {peer} should be {expected} after the acknowledged write")

    # -- reads ------------------------------------------------------------------------------

    def timeline(self) -> None:
        path: str | None = f"/users/{self.ledger.user_id}/timeline?limit=20"
        for _ in range(PAGES):
            if path is None:
                return
            outcome = self._list(path)
            body = outcome.json() if isinstance(outcome, Reply) else None
            path = body.get("next") if isinstance(body, dict) else None

    def lists(self) -> None:
        peer = self.rng.choice(self.peers) if self.peers else self.ledger.user_id
        me = self.ledger.user_id
        self._list(self.rng.choice([
            "/messages?limit=50", "/users?limit=20", f"/users/{peer}/followers",
            f"/users/{peer}/following", f"/users/{me}/messages?limit=50",
        ]))

    def _list(self, path: str) -> Outcome:
        outcome = self.http.read(path, self.until)
        if isinstance(outcome, Reply) and 400 <= outcome.status < 500:
            self._unexpected("GET", path, outcome)
        return outcome

    def _unexpected(self, method: str, path: str, outcome: Outcome) -> None:
        assert isinstance(outcome, Reply)
        self.shared.findings.note(
            UNEXPECTED, f"{self.ledger.name} {method} {path} answered {outcome.status}:"
            f" {excerpt(outcome.body)}")

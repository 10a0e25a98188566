"""After the load: every client's ledger against the API and against the database.

The same rules judge both sources. A key whose last acknowledged state is missing or older
is a lost write; a row nobody sent (or a refused request's) is a phantom; two rows for one
request (or one follow) are duplicates; a deleted id that now shows another message is a
reused id. A fault seen by both sources is counted once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import BenchmarkError
from .chaos_http import Connection, Reply
from .chaos_ledger import (
    CREATE,
    DUPLICATES,
    LOST,
    PHANTOM,
    REUSED,
    Findings,
    Ledger,
    Message,
    Seen,
    judge,
)

MAX_PAGES = 10_000  # bounds every paged read


@dataclass(frozen=True)
class Row:
    """A message as a list (of the API or of SQL) shows it."""

    id: int
    user_id: int
    content: str


# -- rules shared by both sources ---------------------------------------------------------------

def check_message(ledger: Ledger, message: Message, seen: Seen, source: str,
                  findings: Findings) -> None:
    column = judge(message, ledger.user_id, seen)
    if column is None:
        return
    if message.certain:
        expected = "absent (deleted)" if message.gone else repr(next(iter(message.states)))
    else:
        expected = "one of " + ", ".join(sorted(repr(s) for s in message.states))
    shown = "absent" if seen.absent else f"user {seen.user_id}'s {seen.content!r}"
    detail = f"{source}: message {message.id} of {ledger.name} should be {expected}, is {shown}"
    key = f"message {message.id}" if column == REUSED else f"message {message.id} of {ledger.name}"
    findings.note(column, detail, key)


def check_rows(rows: Sequence[Row], ledgers: Sequence[Ledger], source: str,
               findings: Findings) -> None:
    """Rows that no request explains (phantoms) or that one request made twice."""
    by_user = {ledger.user_id: ledger for ledger in ledgers}
    doubled = {content for content, count in Counter(row.content for row in rows).items()
               if count > 1}
    for content in doubled:
        holders = sorted(row.id for row in rows if row.content == content)
        findings.note(DUPLICATES, f"{source}: messages {holders} all have the content"
                      f" {content!r}", key=f"content {content}")
    for message_id, count in Counter(row.id for row in rows).items():
        if count > 1:
            findings.note(DUPLICATES, f"{source}: message {message_id} is listed {count} times",
                          key=f"{source} id {message_id}")
    for row in rows:
        if row.content in doubled:
            continue  # one request's rows: counted as a duplicate above
        ledger = by_user.get(row.user_id)
        why = _unexplained(row, ledger) if ledger is not None else "its author is no client"
        if why == DUPLICATES:
            findings.note(DUPLICATES, f"{source}: message {row.id} holds {row.content!r}, which"
                          " an acknowledged POST created under another id",
                          key=f"content {row.content}")
        elif why is not None:
            findings.note(PHANTOM, f"{source}: message {row.id} of user {row.user_id}"
                          f" ({row.content!r}): {why}", key=f"message {row.id}")


def _unexplained(row: Row, ledger: Ledger) -> str | None:
    sent_as = ledger.sent.get(row.content)
    if sent_as is None:
        return "its author never sent this content"
    if sent_as == CREATE:
        acked = ledger.acked_creates.get(row.content)
        if acked is None and row.content not in ledger.unknown_creates:
            return "the POST that sent it was refused"
        if acked is not None and acked != row.id:
            return DUPLICATES
        return None
    if sent_as != f"patch {row.id}":
        return f"it was sent as {sent_as!r}, a write of another message"
    return None


def check_follows(ledger: Ledger, followed: Iterable[int], source: str,
                  findings: Findings) -> None:
    """One client's follows as ``source`` lists them against its ledger."""
    counts = Counter(followed)
    me = ledger.user_id
    for peer, count in counts.items():
        key = f"follow {me}->{peer}"
        if count > 1:
            findings.note(DUPLICATES, f"{source}: {ledger.name} follows user {peer}"
                          f" {count} times", key=key)
        if peer not in ledger.follows:
            findings.note(PHANTOM, f"{source}: {ledger.name} follows user {peer},"
                          " which it never asked to", key=key)
    for peer, follow in ledger.follows.items():
        present = peer in counts
        if present in follow.states:
            continue
        key = f"follow {me}->{peer}"
        if present and not follow.put_sent:
            findings.note(PHANTOM, f"{source}: {ledger.name} follows user {peer}"
                          " without ever sending a PUT", key=key)
        else:
            expected = "present" if True in follow.states else "absent"
            findings.note(LOST, f"{source}: {ledger.name}'s follow of user {peer} should be"
                          f" {expected}, is {'present' if present else 'absent'}", key=key)


# -- the API ---------------------------------------------------------------------------------

def check_api(connection: Connection, ledgers: Sequence[Ledger], findings: Findings) -> int:
    """Check every ledger through the API; return how many reads got no usable answer."""
    unread = 0
    rows: list[Row] = []
    for ledger in ledgers:
        for message in ledger.tracked():
            seen = _seen(connection, message.id)
            if seen is None:
                unread += 1
            else:
                check_message(ledger, message, seen, "API", findings)
        listed = _pages(connection, f"/users/{ledger.user_id}/messages?limit=100")
        if listed is None:
            unread += 1
        else:
            rows += [Row(item["id"], item["user_id"], item["content"]) for item in listed]
        following = _pages(connection, f"/users/{ledger.user_id}/following?limit=100&fields=id")
        if following is None:
            unread += 1
        else:
            check_follows(ledger, [item["id"] for item in following], "API", findings)
    check_rows(rows, ledgers, "API", findings)
    return unread


def _seen(connection: Connection, message_id: int) -> Seen | None:
    outcome = connection.read(f"/messages/{message_id}")
    if not isinstance(outcome, Reply):
        return None
    body = outcome.json()
    if outcome.status == 404:
        return Seen()
    if outcome.status != 200 or not isinstance(body, dict):
        return None
    return Seen(body.get("user_id"), body.get("content"))


def _pages(connection: Connection, path: str) -> list[dict[str, Any]] | None:
    """Every item of a list, page by page through ``next``; None if a page is unreadable."""
    items: list[dict[str, Any]] = []
    following: str | None = path
    for _ in range(MAX_PAGES):
        if following is None:
            return items
        outcome = connection.read(following)
        body = outcome.json() if isinstance(outcome, Reply) else None
        if not isinstance(outcome, Reply) or outcome.status != 200 or not isinstance(body, dict):
            return None
        items += body.get("items", [])
        following = body.get("next")
    raise BenchmarkError(f"{path} still had a next page after {MAX_PAGES} pages.")


# -- the database ----------------------------------------------------------------------------

def check_database(url: str, ledgers: Sequence[Ledger], findings: Findings) -> None:
    """Check every ledger against the tables, with plain SQL, and the database's integrity."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = [Row(*row) for row in connection.execute(
                sa.text("SELECT id, user_id, content FROM messages"))]
            links = list(connection.execute(
                sa.text("SELECT follower_id, followed_id FROM follows")))
            findings.integrity = _integrity(connection)
    finally:
        engine.dispose()
    by_id = {row.id: row for row in rows}
    for ledger in ledgers:
        for message in ledger.tracked():
            row = by_id.get(message.id)
            seen = Seen() if row is None else Seen(row.user_id, row.content)
            check_message(ledger, message, seen, "SQL", findings)
        check_follows(ledger, [followed for follower, followed in links
                               if follower == ledger.user_id], "SQL", findings)
    check_rows(rows, ledgers, "SQL", findings)
    clients = {ledger.user_id for ledger in ledgers}
    for follower, followed in links:
        if follower not in clients:
            findings.note(PHANTOM, f"SQL: user {follower}, no client, follows user {followed}",
                          key=f"follow {follower}->{followed}")


def _integrity(connection: sa.Connection) -> str:
    """``ok``, or what is wrong: ``PRAGMA integrity_check`` and the foreign keys on SQLite;
    rows whose user is missing on PostgreSQL (``amcheck`` is not used)."""
    if connection.dialect.name == "sqlite":
        report = [row[0] for row in connection.execute(sa.text("PRAGMA integrity_check"))]
        broken = list(connection.execute(sa.text("PRAGMA foreign_key_check")))
        problems = [] if report == ["ok"] else report[:3]
        if broken:
            problems.append(f"{len(broken)} rows break a foreign key")
        return "ok" if not problems else "; ".join(problems)
    orphans = connection.execute(sa.text(
        "SELECT (SELECT count(*) FROM messages m WHERE NOT EXISTS"
        " (SELECT 1 FROM users u WHERE u.id = m.user_id))"
        " + (SELECT count(*) FROM follows f WHERE NOT EXISTS"
        " (SELECT 1 FROM users u WHERE u.id = f.follower_id)"
        " OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = f.followed_id))")).scalar_one()
    return "ok (foreign keys; amcheck n/a)" if orphans == 0 else f"{orphans} orphaned rows"

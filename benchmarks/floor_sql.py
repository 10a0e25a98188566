"""The floors' database work, written by hand once for both floors and both engines.

Both floors (``floor_app``: Flask; ``raw_app``: a bare WSGI callable) run exactly these
statements, the ones a careful hand-written app would run: SQLite through ``sqlite3`` with the
settings tablerest gives its connections (WAL, ``synchronous`` as ``TABLEREST_SQLITE_SYNCHRONOUS``,
foreign keys, a busy timeout), PostgreSQL through psycopg 3 (one connection per worker process,
autocommit: one round trip per statement, a transaction only where two statements must agree).

A token is checked as tablerest checks it: its signature and age, then the stamp of the
user's stored password hash, read by the user's key (a deleted account or a changed password
makes it 401). The stamp is the same keyed digest tablerest puts in its tokens.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .data import PRAGMAS

TOKEN_SALT = "tablerest.auth"
STAMP_SALT = "tablerest.auth.stamp"
STAMP_LENGTH = 16
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_BODY_BYTES = 1024 * 1024

_USER_COLUMNS = "users.id, users.name, users.email, users.created_at, users.updated_at"


@dataclass(frozen=True)
class FloorSettings:
    """What a floor reads from the environment: the same variables as the microblog."""

    database_url: str
    secret_key: str
    token_ttl: int
    synchronous: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FloorSettings:
        url = environ.get("DATABASE_URL", "")
        if not url.startswith(("sqlite:///", "postgresql")):
            raise RuntimeError(
                f"DATABASE_URL must be a sqlite:/// or postgresql:// URL, got {url!r}.")
        secret = environ.get("TABLEREST_SECRET_KEY", "")
        if not secret:
            raise RuntimeError("TABLEREST_SECRET_KEY must be set to the tokens' secret key.")
        raw_ttl = environ.get("TABLEREST_TOKEN_TTL", "3600")
        try:
            ttl = int(raw_ttl)
        except ValueError:
            raise RuntimeError(
                f"TABLEREST_TOKEN_TTL must be an integer, got {raw_ttl!r}."
            ) from None
        synchronous = environ.get("TABLEREST_SQLITE_SYNCHRONOUS", "NORMAL").upper()
        return cls(url, secret, ttl, synchronous)


def iso_utc(stored: str) -> str:
    """Stored naive-UTC text -> ISO 8601 with offset, as ``datetime.isoformat`` renders it.

    ``'2024-05-01 12:00:00.000000'`` -> ``'2024-05-01T12:00:00+00:00'``; a non-zero fraction
    is kept with six digits: ``'2024-05-01T12:00:00.250000+00:00'``.
    """
    fraction = stored[20:26]
    if fraction.strip("0"):
        return f"{stored[:10]}T{stored[11:19]}.{fraction.ljust(6, '0')}+00:00"
    return f"{stored[:10]}T{stored[11:19]}+00:00"


def stamp_text(moment: dt.datetime) -> str:
    """``moment`` (naive UTC) as SQLAlchemy's SQLite DateTime stores it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Cursors:
    """Keyset cursors as tablerest makes them: base64 JSON of the list, its sort and the
    last row's sort values, then an HMAC-SHA256 tag cut to 128 bits."""

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.new(secret_key.encode(), b"tablerest.cursor", hashlib.sha256).digest()

    def dump(self, path: str, sort: list[str], values: list[Any]) -> str:
        shown = [["dt", value.isoformat()] if isinstance(value, dt.datetime) else value
                 for value in values]
        payload = _b64(orjson.dumps([1, path, sort, shown])).encode("ascii")
        tag = hmac.digest(self._key, payload, "sha256")[:16]
        return f"{payload.decode('ascii')}.{_b64(tag)}"


def envelope(
    path: str, items: list[dict[str, Any]], count: int, limit: int, offset: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    """The page: ``items`` holds up to ``limit`` rows; ``cursor`` is set when more follow."""
    if offset is not None:
        following = offset + limit
        next_url = f"{path}?limit={limit}&offset={following}" if following < count else None
    else:
        next_url = f"{path}?limit={limit}&cursor={cursor}" if cursor else None
    return {"items": items, "count": count, "count_kind": "exact", "limit": limit,
            "offset": offset, "cursor": cursor, "next": next_url}


class BadToken(Exception):
    """The bearer token is missing, malformed, expired, or its stamp no longer matches."""


class Tokens:
    """tablerest's bearer tokens: an itsdangerous timed signature of ``{"sub", "stp"}``."""

    def __init__(self, secret_key: str, ttl: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT)
        self._ttl = ttl
        signer = self._serializer.make_signer(STAMP_SALT)
        self._stamp_signer = signer
        self._stamp_key = signer.derive_key()  # derived once, not per request

    def claims(self, header: str) -> dict[str, Any]:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BadToken("no bearer token")
        try:
            claims = self._serializer.loads(token.strip(), max_age=self._ttl)
        except BadSignature as error:
            raise BadToken(str(error)) from None
        if not isinstance(claims, dict) or not isinstance(claims.get("stp"), str):
            raise BadToken("not a stamped token")
        return claims

    def stamp(self, stored: str | None) -> str:
        raw = self._stamp_signer.algorithm.get_signature(self._stamp_key,
                                                        (stored or "").encode())
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")[:STAMP_LENGTH]

    def check_stamp(self, claims: Mapping[str, Any], stored: str | None) -> bool:
        return hmac.compare_digest(self.stamp(stored), claims["stp"])


def floor_token(secret_key: str, user_id: int, password_hash: str) -> str:
    """A bearer token as tablerest signs them, made directly with the shared secret."""
    tokens = Tokens(secret_key, 3600)
    claims = {"sub": user_id, "stp": tokens.stamp(password_hash)}
    token: str = URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT).dumps(claims)
    return token


class Database:
    """One connection per worker process, opened on first use; the floors' statements."""

    def __init__(self, settings: FloorSettings) -> None:
        self._settings = settings
        self.postgresql = settings.database_url.startswith("postgresql")
        self._pid = 0
        self._connection: Any = None
        mark = "%s" if self.postgresql else "?"
        self._item = f"SELECT {_USER_COLUMNS} FROM users WHERE users.id = {mark}"
        self._count_users = "SELECT count(*) FROM users"
        self._users = (f"SELECT {_USER_COLUMNS} FROM users ORDER BY users.id"
                       f" LIMIT {mark} OFFSET {mark}")
        self._exists = f"SELECT 1 FROM users WHERE id = {mark}"
        self._count_followers = (
            f"SELECT count(*) FROM follows WHERE follows.followed_id = {mark}")
        self._followers = (
            f"SELECT {_USER_COLUMNS}, follows.created_at FROM users"
            f" JOIN follows ON users.id = follows.follower_id WHERE follows.followed_id = {mark}"
            f" ORDER BY follows.created_at DESC, users.id LIMIT {mark} OFFSET {mark}")
        self._password = f"SELECT password FROM users WHERE id = {mark}"
        self._insert = ("INSERT INTO messages (content, user_id, created_at, updated_at)"
                        f" VALUES ({mark}, {mark}, {mark}, {mark}) RETURNING id")

    def connection(self) -> Any:
        # Re-open after a fork: a connection must never cross processes.
        if self._connection is None or self._pid != os.getpid():
            self._connection = self._open()
            self._pid = os.getpid()
        return self._connection

    def _open(self) -> Any:
        url = self._settings.database_url
        if self.postgresql:
            import psycopg

            conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
            return psycopg.connect(conninfo, autocommit=True, options="-c timezone=UTC")
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None,
                                     check_same_thread=False)
        for pragma in PRAGMAS:
            connection.execute(pragma)
        if self._settings.synchronous in ("NORMAL", "FULL"):
            connection.execute(f"PRAGMA synchronous={self._settings.synchronous}")
        return connection

    def user_dict(self, row: tuple[Any, ...]) -> dict[str, Any]:
        if self.postgresql:  # aware UTC datetimes: orjson writes them as tablerest does
            return {"id": row[0], "name": row[1], "email": row[2], "created_at": row[3],
                    "updated_at": row[4]}
        return {"id": row[0], "name": row[1], "email": row[2], "created_at": iso_utc(row[3]),
                "updated_at": iso_utc(row[4])}

    def item(self, user_id: int) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.connection().execute(
            self._item, (user_id,)).fetchone()
        return row

    def users(self, limit: int, offset: int) -> tuple[int, list[tuple[Any, ...]]]:
        """The count and the page, read in one transaction (they agree)."""
        connection = self.connection()
        with self._snapshot(connection):
            count = connection.execute(self._count_users).fetchone()[0]
            rows = connection.execute(self._users, (limit, offset)).fetchall()
        return count, rows

    def followers(self, user_id: int, limit: int, offset: int,
                  ) -> tuple[int, list[tuple[Any, ...]]] | None:
        """None when the user does not exist; else the count and the page."""
        connection = self.connection()
        with self._snapshot(connection):
            if connection.execute(self._exists, (user_id,)).fetchone() is None:
                return None
            count = connection.execute(self._count_followers, (user_id,)).fetchone()[0]
            rows = connection.execute(self._followers, (user_id, limit, offset)).fetchall()
        return count, rows

    def password(self, user_id: Any) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.connection().execute(
            self._password, (user_id,)).fetchone()
        return row

    def insert_message(self, content: str, user_id: int) -> tuple[int, Any]:
        """Insert and commit one message; its id and creation time (as the JSON shows it)."""
        now = dt.datetime.now(dt.UTC)
        connection = self.connection()
        if self.postgresql:  # autocommit: one statement, one round trip, committed
            message_id = connection.execute(self._insert, (content, user_id, now, now)
                                            ).fetchone()[0]
            return message_id, now
        created = stamp_text(now.replace(tzinfo=None))
        connection.execute("BEGIN IMMEDIATE")
        try:
            message_id = connection.execute(
                self._insert, (content, user_id, created, created)).fetchone()[0]
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return message_id, iso_utc(created)

    def _snapshot(self, connection: Any) -> Any:
        if self.postgresql:
            return _NoTransaction()  # READ COMMITTED: a transaction would not make them agree
        return _SqliteRead(connection)


class _SqliteRead:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN")

    def __exit__(self, *exc: object) -> None:
        self._connection.execute("COMMIT")


class _NoTransaction:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

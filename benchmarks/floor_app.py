"""The floor: the benchmarked endpoints hand-written with Flask, stdlib sqlite3 and orjson.

It answers the same JSON as the microblog, from the same file with the same SQLite settings,
doing the same queries a careful hand-written app would: it is what tablerest is measured
against. Serve it like the microblog::

    DATABASE_URL=sqlite:////abs/bench.db TABLEREST_SECRET_KEY=... \\
        gunicorn -w 1 -b 127.0.0.1:8000 'benchmarks.floor_app:create_app()'
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
from flask import Flask, Response, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .data import PRAGMAS, stamp

TOKEN_SALT = "tablerest.auth"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_BODY_BYTES = 1024 * 1024

_USER_COLUMNS = "users.id, users.name, users.email, users.created_at, users.updated_at"


@dataclass(frozen=True)
class FloorSettings:
    """What the floor reads from the environment: the same variables as the microblog."""

    database_path: str
    secret_key: str
    token_ttl: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FloorSettings:
        url = environ.get("DATABASE_URL", "")
        if not url.startswith("sqlite:///"):
            raise RuntimeError(f"DATABASE_URL must be a sqlite:/// URL, got {url!r}.")
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
        return cls(database_path=url.removeprefix("sqlite:///"), secret_key=secret, token_ttl=ttl)


class _Database:
    """One sqlite3 connection per worker process, opened on first use."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._pid = 0
        self._connection: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        # Re-open after a fork: a connection must never cross processes.
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(self._path)
            for pragma in PRAGMAS:
                connection.execute(pragma)
            # The same durability as tablerest's TABLEREST_SQLITE_SYNCHRONOUS.
            synchronous = os.environ.get("TABLEREST_SQLITE_SYNCHRONOUS", "NORMAL").upper()
            if synchronous in ("NORMAL", "FULL"):
                connection.execute(f"PRAGMA synchronous={synchronous}")
            self._connection, self._pid = connection, os.getpid()
        return self._connection


def iso_utc(stored: str) -> str:
    """Stored naive-UTC text -> ISO 8601 with offset, as ``datetime.isoformat`` renders it.

    ``'2024-05-01 12:00:00.000000'`` -> ``'2024-05-01T12:00:00+00:00'``; a non-zero fraction
    is kept with six digits: ``'2024-05-01T12:00:00.250000+00:00'``.
    """
    fraction = stored[20:26]
    if fraction.strip("0"):
        return f"{stored[:10]}T{stored[11:19]}.{fraction.ljust(6, '0')}+00:00"
    return f"{stored[:10]}T{stored[11:19]}+00:00"


def _user(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "name": row[1],
        "email": row[2],
        "created_at": iso_utc(row[3]),
        "updated_at": iso_utc(row[4]),
    }


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def _problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(orjson.dumps(body), status=status, mimetype="application/problem+json")


def _page_arguments() -> tuple[int, int | None] | Response:
    raw_limit, raw_offset = request.args.get("limit"), request.args.get("offset")
    try:
        limit = DEFAULT_LIMIT if raw_limit is None else int(raw_limit)
        offset = None if raw_offset is None else int(raw_offset)
    except ValueError:
        return _problem(400, "Bad Request", "limit and offset must be integers.")
    if limit < 1 or (offset is not None and offset < 0):
        return _problem(400, "Bad Request", "limit must be 1 or more and offset 0 or more.")
    return min(limit, MAX_LIMIT), offset


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class _Cursors:
    """Keyset cursors as the microblog makes them: base64 JSON of the list, its sort and the
    last row's sort values, then an HMAC-SHA256 tag cut to 128 bits."""

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.new(secret_key.encode(), b"tablerest.cursor", hashlib.sha256).digest()

    def dump(self, path: str, sort: list[str], values: list[Any]) -> str:
        payload = _b64(orjson.dumps([1, path, sort, values])).encode("ascii")
        tag = hmac.digest(self._key, payload, "sha256")[:16]
        return f"{payload.decode('ascii')}.{_b64(tag)}"


def _envelope(
    path: str, items: list[dict[str, Any]], count: int, limit: int, offset: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    """The page: ``items`` holds up to ``limit`` rows; ``cursor`` is set when more follow."""
    if offset is not None:
        following = offset + limit
        next_url = f"{path}?limit={limit}&offset={following}" if following < count else None
    else:
        next_url = f"{path}?limit={limit}&cursor={cursor}" if cursor else None
    return {"items": items, "count": count, "limit": limit, "offset": offset,
            "cursor": cursor, "next": next_url}


def create_app() -> Flask:
    """The floor app, configured from ``DATABASE_URL`` and ``TABLEREST_*`` variables."""
    settings = FloorSettings.from_environ(os.environ)
    database = _Database(settings.database_path)
    tokens = URLSafeTimedSerializer(settings.secret_key, salt=TOKEN_SALT)
    cursors = _Cursors(settings.secret_key)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.errorhandler(404)
    def not_found(error: Exception) -> Response:
        return _problem(404, "Not Found", "No resource at this URL.")

    @app.errorhandler(405)
    def not_allowed(error: Exception) -> Response:
        return _problem(405, "Method Not Allowed", "This URL does not accept this method.")

    @app.get("/users/<int:user_id>")
    def get_user(user_id: int) -> Response:
        row = database.connection().execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE users.id = ?", (user_id,)
        ).fetchone()
        if row is None:
            return _problem(404, "Not Found", f"No user with id {user_id}.")
        response = _json(_user(row))
        response.set_etag(hashlib.blake2b(response.get_data(), digest_size=16).hexdigest())
        return response

    @app.get("/users")
    def list_users() -> Response:
        page = _page_arguments()
        if isinstance(page, Response):
            return page
        limit, offset = page
        connection = database.connection()
        count = connection.execute("SELECT count(*) FROM users").fetchone()[0]
        rows = connection.execute(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY users.id LIMIT ? OFFSET ?",
            (limit + 1, offset or 0),
        ).fetchall()
        cursor = None
        if len(rows) > limit:
            del rows[limit:]
            if offset is None:
                cursor = cursors.dump("/users", ["id"], [rows[-1][0]])
        return _json(_envelope("/users", [_user(r) for r in rows], count, limit, offset, cursor))

    @app.get("/users/<int:user_id>/followers")
    def list_followers(user_id: int) -> Response:
        page = _page_arguments()
        if isinstance(page, Response):
            return page
        limit, offset = page
        connection = database.connection()
        if connection.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
            return _problem(404, "Not Found", f"No user with id {user_id}.")
        count = connection.execute(
            "SELECT count(*) FROM follows WHERE follows.followed_id = ?", (user_id,)
        ).fetchone()[0]
        rows = connection.execute(
            f"SELECT {_USER_COLUMNS}, follows.created_at FROM users"
            " JOIN follows ON users.id = follows.follower_id WHERE follows.followed_id = ?"
            " ORDER BY follows.created_at DESC, users.id LIMIT ? OFFSET ?",
            (user_id, limit + 1, offset or 0),
        ).fetchall()
        path = f"/users/{user_id}/followers"
        cursor = None
        if len(rows) > limit:
            del rows[limit:]
            if offset is None:
                cursor = cursors.dump(path, ["-follows.created_at", "id"],
                                      [rows[-1][5], rows[-1][0]])
        return _json(_envelope(path, [_user(r) for r in rows], count, limit, offset, cursor))

    @app.post("/users/<int:user_id>/messages")
    def create_message(user_id: int) -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise BadSignature("no bearer token")
            claims = tokens.loads(token.strip(), max_age=settings.token_ttl)
        except BadSignature:
            response = _problem(401, "Unauthorized", "A valid bearer token is required.")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if not isinstance(claims, dict) or claims.get("sub") != user_id:
            return _problem(403, "Forbidden", "You may only post messages as yourself.")
        connection = database.connection()
        if connection.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
            return _problem(404, "Not Found", f"No user with id {user_id}.")
        try:
            body = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return _problem(400, "Bad Request", "The request body must be a JSON object.")
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or not content.strip() or set(body) != {"content"}:
            return _problem(
                422, "Unprocessable Content", "The body must be {\"content\": <non-empty string>}.",
            )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        created = stamp(now)
        with connection:  # commits, or rolls back on error
            message_id = connection.execute(
                "INSERT INTO messages (content, user_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (content, user_id, created, created),
            ).lastrowid
        response = _json(
            {
                "id": message_id,
                "content": content,
                "user_id": user_id,
                "created_at": iso_utc(created),
                "updated_at": iso_utc(created),
            },
            status=201,
        )
        response.headers["Location"] = f"/messages/{message_id}"
        return response

    return app

"""The raw floor: the benchmarked endpoints as one plain WSGI callable, no framework.

The practical limit of a Python app under gunicorn: the same statements as the Flask floor
(``floor_sql``), the same JSON bytes (orjson), the same headers tablerest sends on these
answers (``ETag`` on an item, ``Location`` on a create, ``Vary``, ``nosniff``), and nothing
else: routing is a split of the path. Serve it like the microblog::

    DATABASE_URL=sqlite:////abs/bench.db TABLEREST_SECRET_KEY=... \\
        gunicorn -w 1 -b 127.0.0.1:8000 'benchmarks.raw_app:create_app()'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .floor_sql import (
    DEFAULT_LIMIT,
    MAX_BODY_BYTES,
    MAX_LIMIT,
    BadToken,
    Cursors,
    Database,
    FloorSettings,
    Tokens,
    envelope,
)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Answer = tuple[str, list[tuple[str, str]], bytes]

_STATUS = {200: "200 OK", 201: "201 Created", 400: "400 Bad Request", 401: "401 Unauthorized",
           403: "403 Forbidden", 404: "404 Not Found", 405: "405 Method Not Allowed",
           413: "413 Content Too Large", 422: "422 Unprocessable Content"}
_COMMON = [("X-Content-Type-Options", "nosniff"), ("Vary", "Accept")]


def _json(payload: Any, status: int = 200, extra: list[tuple[str, str]] | None = None,
          ) -> Answer:
    body = orjson.dumps(payload)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
               *_COMMON, *(extra or ())]
    return _STATUS[status], headers, body


def _problem(status: int, title: str, detail: str,
             extra: list[tuple[str, str]] | None = None) -> Answer:
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status,
                         "detail": detail})
    headers = [("Content-Type", "application/problem+json"),
               ("Content-Length", str(len(body))), *_COMMON, *(extra or ())]
    return _STATUS[status], headers, body


def _page(query: str) -> tuple[int, int | None] | Answer:
    args = dict(parse_qsl(query)) if query else {}
    try:
        limit = int(args.get("limit", DEFAULT_LIMIT))
        raw_offset = args.get("offset")
        offset = None if raw_offset is None else int(raw_offset)
    except ValueError:
        return _problem(400, "Bad Request", "limit and offset must be integers.")
    if limit < 1 or (offset is not None and offset < 0):
        return _problem(400, "Bad Request", "limit must be 1 or more and offset 0 or more.")
    return min(limit, MAX_LIMIT), offset


class RawFloor:
    """The WSGI callable."""

    def __init__(self, settings: FloorSettings) -> None:
        self.database = Database(settings)
        self.tokens = Tokens(settings.secret_key, settings.token_ttl)
        self.cursors = Cursors(settings.secret_key)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse,
                 ) -> Iterable[bytes]:
        status, headers, body = self.route(environ)
        if environ.get("HTTP_AUTHORIZATION"):
            headers.append(("Cache-Control", "private"))
        start_response(status, headers)
        return [body]

    def route(self, environ: dict[str, Any]) -> Answer:
        parts = environ.get("PATH_INFO", "").split("/")
        method = environ["REQUEST_METHOD"]
        if len(parts) < 2 or parts[1] != "users":
            return _problem(404, "Not Found", "No resource at this URL.")
        if len(parts) == 2:
            if method != "GET":
                return _problem(405, "Method Not Allowed", "This URL does not accept it.")
            return self.users(environ.get("QUERY_STRING", ""))
        try:
            user_id = int(parts[2])
        except ValueError:
            return _problem(404, "Not Found", "No resource at this URL.")
        if len(parts) == 3 and method == "GET":
            return self.user(user_id)
        if len(parts) == 4 and parts[3] == "followers" and method == "GET":
            return self.followers(user_id, environ.get("QUERY_STRING", ""))
        if len(parts) == 4 and parts[3] == "messages" and method == "POST":
            return self.post_message(user_id, environ)
        return _problem(404, "Not Found", "No resource at this URL.")

    def user(self, user_id: int) -> Answer:
        row = self.database.item(user_id)
        if row is None:
            return _problem(404, "Not Found", f"No user with id {user_id}.")
        status, headers, body = _json(self.database.user_dict(row))
        etag = hashlib.blake2b(body, digest_size=16).hexdigest()
        headers.append(("ETag", f'"{etag}"'))
        return status, headers, body

    def users(self, query: str) -> Answer:
        page = _page(query)
        if isinstance(page[0], str):
            return page  # type: ignore[return-value]
        limit, offset = page  # type: ignore[misc]
        count, rows = self.database.users(limit + 1, offset or 0)
        cursor = None
        if len(rows) > limit:
            del rows[limit:]
            if offset is None:
                cursor = self.cursors.dump("/users", ["id"], [rows[-1][0]])
        items = [self.database.user_dict(row) for row in rows]
        return _json(envelope("/users", items, count, limit, offset, cursor))

    def followers(self, user_id: int, query: str) -> Answer:
        page = _page(query)
        if isinstance(page[0], str):
            return page  # type: ignore[return-value]
        limit, offset = page  # type: ignore[misc]
        found = self.database.followers(user_id, limit + 1, offset or 0)
        if found is None:
            return _problem(404, "Not Found", f"No user with id {user_id}.")
        count, rows = found
        path = f"/users/{user_id}/followers"
        cursor = None
        if len(rows) > limit:
            del rows[limit:]
            if offset is None:
                cursor = self.cursors.dump(path, ["-follows.created_at", "id"],
                                           [rows[-1][5], rows[-1][0]])
        items = [self.database.user_dict(row) for row in rows]
        return _json(envelope(path, items, count, limit, offset, cursor))

    def post_message(self, user_id: int, environ: dict[str, Any]) -> Answer:
        try:
            claims = self.tokens.claims(environ.get("HTTP_AUTHORIZATION", ""))
            stored = self.database.password(claims["sub"])
            if stored is None or not self.tokens.check_stamp(claims, stored[0]):
                raise BadToken("the account is gone or its password changed")
        except BadToken:
            return _problem(401, "Unauthorized", "A valid bearer token is required.",
                            [("WWW-Authenticate", "Bearer")])
        if claims["sub"] != user_id:  # the stamp's row is the user's: it exists
            return _problem(403, "Forbidden", "You may only post messages as yourself.")
        if environ.get("CONTENT_TYPE", "").split(";")[0].strip() != "application/json":
            return _problem(400, "Bad Request", "The body must be JSON.")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            return _problem(413, "Content Too Large", "The body is too large.")
        try:
            body = orjson.loads(environ["wsgi.input"].read(length))
        except orjson.JSONDecodeError:
            return _problem(400, "Bad Request", "The request body must be a JSON object.")
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or not content.strip() or set(body) != {"content"}:
            return _problem(422, "Unprocessable Content",
                            "The body must be {\"content\": <non-empty string>}.")
        message_id, created = self.database.insert_message(content, user_id)
        payload = {"id": message_id, "content": content, "user_id": user_id,
                   "created_at": created, "updated_at": created}
        return _json(payload, 201, [("Location", f"/messages/{message_id}")])


def create_app() -> RawFloor:
    """The raw floor, configured from ``DATABASE_URL`` and ``TABLEREST_*`` variables."""
    return RawFloor(FloorSettings.from_environ(os.environ))

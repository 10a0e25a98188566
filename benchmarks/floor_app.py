"""The Flask floor: the benchmarked endpoints hand-written with Flask, the driver and orjson.

It answers the same JSON as the microblog, from the same database with the same settings,
running the same statements as the raw floor (``floor_sql``): the difference between the two
floors is what Flask's request handling costs. Serve it like the microblog::

    DATABASE_URL=sqlite:////abs/bench.db TABLEREST_SECRET_KEY=... \\
        gunicorn -w 1 -b 127.0.0.1:8000 'benchmarks.floor_app:create_app()'
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson
from flask import Flask, Response, request

from .floor_sql import (
    DEFAULT_LIMIT,
    MAX_BODY_BYTES,
    MAX_LIMIT,
    TOKEN_SALT,
    BadToken,
    Cursors,
    Database,
    FloorSettings,
    Tokens,
    envelope,
    iso_utc,
)

__all__ = ["TOKEN_SALT", "create_app", "iso_utc"]


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


def create_app() -> Flask:
    """The Flask floor, configured from ``DATABASE_URL`` and ``TABLEREST_*`` variables."""
    settings = FloorSettings.from_environ(os.environ)
    database = Database(settings)
    tokens = Tokens(settings.secret_key, settings.token_ttl)
    cursors = Cursors(settings.secret_key)
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
        row = database.item(user_id)
        if row is None:
            return _problem(404, "Not Found", f"No user with id {user_id}.")
        response = _json(database.user_dict(row))
        response.set_etag(hashlib.blake2b(response.get_data(), digest_size=16).hexdigest())
        return response

    @app.get("/users")
    def list_users() -> Response:
        page = _page_arguments()
        if isinstance(page, Response):
            return page
        limit, offset = page
        count, rows = database.users(limit + 1, offset or 0)
        cursor = None
        if len(rows) > limit:
            del rows[limit:]
            if offset is None:
                cursor = cursors.dump("/users", ["id"], [rows[-1][0]])
        items = [database.user_dict(row) for row in rows]
        return _json(envelope("/users", items, count, limit, offset, cursor))

    @app.get("/users/<int:user_id>/followers")
    def list_followers(user_id: int) -> Response:
        page = _page_arguments()
        if isinstance(page, Response):
            return page
        limit, offset = page
        found = database.followers(user_id, limit + 1, offset or 0)
        if found is None:
            return _problem(404, "Not Found", f"No user with id {user_id}.")
        count, rows = found
        path = f"/users/{user_id}/followers"
        cursor = None
        if len(rows) > limit:
            del rows[limit:]
            if offset is None:
                cursor = cursors.dump(path, ["-follows.created_at", "id"],
                                      [rows[-1][5], rows[-1][0]])
        items = [database.user_dict(row) for row in rows]
        return _json(envelope(path, items, count, limit, offset, cursor))

    @app.post("/users/<int:user_id>/messages")
    def create_message(user_id: int) -> Response:
        try:
            claims = tokens.claims(request.headers.get("Authorization", ""))
            stored = database.password(claims["sub"])
            if stored is None or not tokens.check_stamp(claims, stored[0]):
                raise BadToken("the account is gone or its password changed")
        except BadToken:
            response = _problem(401, "Unauthorized", "A valid bearer token is required.")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if claims["sub"] != user_id:  # the stamp's row is the user's: it exists
            return _problem(403, "Forbidden", "You may only post messages as yourself.")
        try:
            body = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return _problem(400, "Bad Request", "The request body must be a JSON object.")
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or not content.strip() or set(body) != {"content"}:
            return _problem(
                422, "Unprocessable Content", "The body must be {\"content\": <non-empty string>}.",
            )
        message_id, created = database.insert_message(content, user_id)
        response = _json({"id": message_id, "content": content, "user_id": user_id,
                          "created_at": created, "updated_at": created}, status=201)
        response.headers["Location"] = f"/messages/{message_id}"
        return response

    return app

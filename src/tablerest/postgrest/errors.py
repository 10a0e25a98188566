"""PostgREST's error body, ``{"code", "message", "details", "hint"}``, and its codes.

``PostgrestError`` is a ``ProblemError`` (the one exception tree): raised under the
dialect's prefix it renders as PostgREST renders errors, elsewhere as problem JSON. tablerest's
own errors raised by the shared core (validation, policies, conflicts) are translated here, so
that PostgREST's clients surface them as their error objects::

    ProblemError
    └── PostgrestError      status, code, message, details, hint
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import orjson
from flask import Flask, Response, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from ..errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    ProblemError,
    Unauthorized,
    ValidationFailed,
)
from ..outages import DISCONNECTED, unavailable

log = logging.getLogger("tablerest")

JSON_UTF8 = "application/json; charset=utf-8"


class PostgrestError(ProblemError):
    """An error in PostgREST's words: its HTTP status and code, message, details, hint."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None,
                 hint: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers=headers)
        self.status_code = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint

    # ``status`` and ``title`` are class attributes of ProblemError; each instance has its
    # own here, so that one rendered as problem JSON (outside the prefix) keeps its status.
    @property
    def status(self) -> int:
        return self.status_code

    @status.setter
    def status(self, value: int) -> None:
        self.status_code = value

    @property
    def title(self) -> str:
        return f"PostgREST error {self.code}"

    @title.setter
    def title(self, value: str) -> None:
        raise AttributeError("a PostgrestError's title is made from its code")

    def pg_body(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "details": self.details,
                "hint": self.hint}


def parse_error(message: str, details: str | None = None) -> PostgrestError:
    """400 ``PGRST100``: the query string does not follow the grammar."""
    return PostgrestError(400, "PGRST100", message, details)


def column_missing(table: str, column: str) -> PostgrestError:
    """400 ``42703``, as PostgreSQL says it: the resource shows no such column."""
    return PostgrestError(400, "42703", f"column {table}.{column} does not exist")


def not_implemented(what: str, hint: str | None = None) -> PostgrestError:
    """400 ``PGRST127``: PostgREST has it, this dialect does not (on this database)."""
    return PostgrestError(400, "PGRST127", "Feature not implemented", what, hint)


def _sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a database error: PostgreSQL's own, SQLite's read from its message."""
    if not isinstance(exc, DBAPIError):
        return None
    original = exc.orig
    state = getattr(original, "sqlstate", None)
    if isinstance(state, str):
        return state
    text = str(original)
    for pattern, code in _SQLITE_STATES:
        if pattern.search(text):
            return code
    return None


_SQLITE_STATES = (
    (re.compile(r"UNIQUE constraint failed"), "23505"),
    (re.compile(r"FOREIGN KEY constraint failed"), "23503"),
    (re.compile(r"NOT NULL constraint failed"), "23502"),
    (re.compile(r"CHECK constraint failed"), "23514"),
    (re.compile(r"no such column"), "42703"),
    (re.compile(r"user-defined function raised exception"), "2201B"),
)


def translate(error: ProblemError) -> PostgrestError:
    """A tablerest error from the shared core, in PostgREST's words. Statuses stay what
    tablerest says (401, 403, 404, 409, 413, 415, 503 ...), except that a body that fails
    validation is a 400, as PostgREST answers a value the database refuses."""
    if isinstance(error, PostgrestError):
        return error
    details = "; ".join(f"{item.field}: {item.message}" for item in error.errors) or None
    headers = dict(error.headers)
    if isinstance(error, Unauthorized):
        return PostgrestError(401, "42501", error.detail, details, None, headers)
    if isinstance(error, Forbidden):
        return PostgrestError(403, "42501", error.detail, details)
    if isinstance(error, Conflict):
        code = _sqlstate(error.__cause__) or "23505"
        return PostgrestError(409, code, error.detail, details)
    if isinstance(error, ValidationFailed):
        return PostgrestError(400, "22023", error.detail, details)
    if isinstance(error, MethodNotAllowed):
        return PostgrestError(405, "PGRST117", error.detail, None, None, headers)
    if isinstance(error, NotAcceptable):
        return PostgrestError(406, "PGRST107", error.detail)
    if isinstance(error, NotFound):
        return PostgrestError(404, "PGRST116", error.detail, details)
    if isinstance(error, BadRequest):
        return PostgrestError(400, "PGRST100", error.detail, details)
    code = {413: "PGRST102", 415: "PGRST102", 412: "PGRST000", 429: "PGRST000",
            503: "PGRST001"}.get(error.status, "PGRST000")
    return PostgrestError(error.status, code, error.detail, details, None, headers)


#: Besides data exceptions (22xxx): an unknown column, a search text that is not a
#: tsquery (``fts.a b``: 42601), an unknown text search configuration (42704).
_CLIENT_STATES = frozenset({"42703", "42601", "42704"})


def database_error(exc: DBAPIError) -> PostgrestError | None:
    """A statement the client's values made fail (a bad regular expression, a value out of
    range): 400 with its SQLSTATE. None for anything else, which stays the server's."""
    state = _sqlstate(exc)
    if state is None or not (state.startswith("22") or state in _CLIENT_STATES):
        return None
    message = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return PostgrestError(400, state, message)


def render(error: PostgrestError) -> Response:
    response = Response(orjson.dumps(error.pg_body()), status=error.status,
                        content_type=JSON_UTF8)
    for name, value in error.headers.items():
        response.headers[name] = value
    response.headers["Proxy-Status"] = f"tablerest; error={error.code}"
    return response


def render_http(error: HTTPException) -> Response:
    """An HTTP error (no route, a method not served) in PostgREST's body."""
    status = error.code or 500
    code = {404: "PGRST125", 405: "PGRST117"}.get(status, "PGRST000")
    headers = {name: value for name, value in error.get_headers() if name == "Allow"}
    return render(PostgrestError(status, code, error.description or error.name,
                                 headers=headers))


def register_handlers(blueprint: Any, app_of: Any) -> None:
    """Render every error raised under the dialect's prefix in PostgREST's body."""

    def problem(error: ProblemError) -> Response:
        return render(translate(error))


    def unexpected(error: Exception) -> Response:
        if isinstance(error, DBAPIError):
            found = database_error(error)
            if found is not None:
                return render(found)
        app: Flask = app_of()
        reason = unavailable(error)
        if reason is not None:
            state = app.extensions.get("tablerest")
            retry = state.settings.retry_after if state is not None else 1
            log.warning("database unavailable: %s (%s)", reason, error)
            if reason in DISCONNECTED and state is not None:
                for engine in (state.engine, *state.bind_engines.values()):
                    engine.dispose()
            return render(PostgrestError(503, "PGRST001", f"{reason} Try again in {retry} s.",
                                         headers={"Retry-After": str(retry)}))
        if app.config.get("PROPAGATE_EXCEPTIONS"):
            raise error
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        log.error("unhandled error in request %s", request_id, exc_info=error)
        return render(PostgrestError(
            500, "PGRST000", "The server failed to answer; the error is logged as request "
            f"{request_id}.", request_id))

    blueprint.register_error_handler(ProblemError, problem)
    blueprint.register_error_handler(HTTPException, render_http)
    blueprint.register_error_handler(Exception, unexpected)

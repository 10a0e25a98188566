"""The exception tree and the one place that renders errors as RFC 9457 problem JSON.

::

    TableRestError                 library errors that are not about an HTTP request
    ├── ConfigurationError         a bad setting or a bad resource declaration
    └── ProblemError               an HTTP-facing error: status, title, detail, field errors
        ├── BadRequest             400 malformed JSON, query or cursor
        ├── Unauthorized           401 no or bad credentials
        ├── Forbidden              403 the row policy refuses
        ├── NotFound               404 no such item or route
        ├── MethodNotAllowed       405, with the Allow header
        ├── NotAcceptable          406 no representation the client accepts
        ├── Conflict               409 unique or foreign-key conflict
        ├── PreconditionFailed     412 stale If-Match
        ├── PayloadTooLarge        413 body over the limit
        ├── UnsupportedMediaType   415 body not JSON
        ├── ValidationFailed       422 the body does not fit the resource
        ├── TooManyRequests        429 too many failed logins, with Retry-After
        └── ServiceUnavailable     503 busy, locked, timed out or away; with Retry-After
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .outages import DISCONNECTED, unavailable

log = logging.getLogger("tablerest")

PROBLEM_JSON = "application/problem+json"


class TableRestError(Exception):
    """The root of every error tablerest raises on purpose."""


class ConfigurationError(TableRestError):
    """A setting or a resource declaration is wrong; raised at start-up, never per request."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a body or a query."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ProblemError(TableRestError):
    """An error that becomes an HTTP response with a problem+json body."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            problem["errors"] = [error.as_dict() for error in self.errors]
        return problem


class BadRequest(ProblemError):
    status = 400
    title = "Bad Request"


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="api"'})


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class NotFound(ProblemError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(ProblemError):
    status = 405
    title = "Method Not Allowed"

    def __init__(self, detail: str, allowed: Iterable[str]) -> None:
        super().__init__(detail, headers={"Allow": ", ".join(sorted(allowed))})


class NotAcceptable(ProblemError):
    status = 406
    title = "Not Acceptable"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class PreconditionFailed(ProblemError):
    status = 412
    title = "Precondition Failed"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Content Too Large"


class UnsupportedMediaType(ProblemError):
    status = 415
    title = "Unsupported Media Type"


class ValidationFailed(ProblemError):
    status = 422
    title = "Unprocessable Content"


class TooManyRequests(ProblemError):
    status = 429
    title = "Too Many Requests"


class ServiceUnavailable(ProblemError):
    status = 503
    title = "Service Unavailable"


#: ``page(problem, body)`` -> an HTML page of the problem, or None when the request does not
#: ask for HTML. ``tablerest.html`` registers it; errors stay problem+json without it.
ErrorPage = Callable[[dict[str, Any], bytes], "Response | None"]
ERROR_PAGES: list[ErrorPage] = []


def problem_response(
    status: int, title: str, detail: str, extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if extra:
        body.update(extra)
    return _respond(body, status, headers or {})


def _respond(problem: dict[str, Any], status: int, headers: dict[str, str]) -> Response:
    """The problem as problem+json, or as the HTML page the request asks for."""
    body = orjson.dumps(problem)
    response = ERROR_PAGES[0](problem, body) if ERROR_PAGES else None
    if response is None:
        response = Response(body, status=status, mimetype=PROBLEM_JSON)
    response.status_code = status
    for name, value in headers.items():
        response.headers[name] = value
    return response


def _render_problem(error: ProblemError) -> Response:
    return _respond(error.body(), error.status, error.headers)


def render_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    headers: dict[str, str] = {}
    if status == 405:
        headers = {name: value for name, value in error.get_headers() if name == "Allow"}
    detail = error.description or error.name
    if status == 404:
        detail = "No route matches this URL."
    elif status == 405:
        detail = "This method is not allowed on this URL."
    elif status == 413:
        detail = "The request body is larger than the server accepts."
    return problem_response(status, error.name, detail, headers=headers)


def _render_unexpected(error: Exception) -> Response:
    # A request id is made only when needed; a proxy's X-Request-Id is kept.
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    log.error("unhandled error in request %s", request_id, exc_info=error)
    return problem_response(
        500, "Internal Server Error",
        f"The server failed to answer; the error is logged as request {request_id}.",
        extra={"request_id": request_id},
    )


def register_error_handlers(app: Flask) -> None:
    """Make every error of ``app`` a problem+json response, unknown routes included."""
    app.register_error_handler(ProblemError, _render_problem)
    app.register_error_handler(HTTPException, render_http_exception)

    def unexpected(error: Exception) -> Response:
        reason = unavailable(error)
        if reason is not None:
            log.warning("database unavailable: %s (%s)", reason, error)
            state = app.extensions.get("tablerest")
            retry = state.settings.retry_after if state is not None else 1
            if reason in DISCONNECTED and state is not None:
                # The server went away: every pooled connection is stale, not just this one.
                for engine in (state.engine, *state.bind_engines.values()):
                    engine.dispose()
            return _render_problem(ServiceUnavailable(
                f"{reason} Try again in {retry} s.", headers={"Retry-After": str(retry)}))
        if app.config.get("PROPAGATE_EXCEPTIONS"):  # explicit opt-in, for debugging tests
            raise error
        return _render_unexpected(error)

    app.register_error_handler(Exception, unexpected)

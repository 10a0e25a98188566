"""What every view of a resource needs from the request: who calls, a reader, the query,
the body, and the preconditions. The one place below the routes that reads ``request``."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from flask import Request, request
from sqlalchemy import Connection

from ..cursors import QUERY_PREFIX
from ..errors import BadRequest, MethodNotAllowed, PayloadTooLarge, PreconditionFailed
from ..http import etag_of, read_json, wants_json
from ..query.model import Query
from ..query.parse import parse_body, parse_url
from ..reading import Reader
from ..replicas import request_reader
from ..representations import FORMAT_PARAMETER
from ..resource import RequestContext
from ..serialization import dumps
from ..served import Served
from ..state import State

#: The methods that carry a list query in a JSON body (and ``POST <list>/query``).
BODY_QUERY_METHODS = ("QUERY", "FETCH")
#: Methods that read: HEAD is GET without a body (Flask adds it to every GET route).
READ_METHODS = ("GET", "HEAD")


class Views:
    """The request side of one served resource; subclasses add the routes of one job."""

    def __init__(self, served: Served, state: State) -> None:
        self.served = served
        self.state = state

    def context(self, connection: Connection) -> RequestContext:
        return RequestContext(connection, request.method, self.state.principal(request))

    def reading(self, fast: bool, snapshot: bool = False) -> AbstractContextManager[Reader]:
        """A reader for this request: prepared statements on a driver cursor when no hook
        or policy needs the SQLAlchemy connection, else a SQLAlchemy read transaction; on a
        replica when there are some (``replicas.py``)."""
        return request_reader(self.state.replicas, self.served, fast, snapshot,
                              request.method, self.state.principal(request))

    def list_request(self, target: Served, list_id: str,
                     body_route: bool = False) -> ListRequest:
        """The request's list query: from its JSON body (QUERY, FETCH, ``POST .../query``),
        from the query token of a body query's ``next`` link, else from its URL."""
        args = request.args.to_dict(flat=False)
        args.pop(FORMAT_PARAMETER, None)  # chooses the representation, not the rows
        vocabulary = target.vocabulary
        token = args.get("cursor", [""])[-1]
        carried = None
        if token.startswith(QUERY_PREFIX):
            carried = target.cursors.load_query(token, list_id)
        if body_route or request.method in BODY_QUERY_METHODS:
            body = read_json(request, self.state.settings.max_body_bytes)
            if carried is not None:
                # QUERY of a next link, the body sent again: it must be the same query.
                if _without_page(body) != _without_page(carried):
                    raise BadRequest("The cursor belongs to another query: send the body "
                                     "that returned it, or GET the next link as it is.")
                return ListRequest(parse_body(carried, vocabulary), list_id,
                                   _without_page(carried))
            query = parse_body(body, vocabulary, args)
            return ListRequest(query, list_id, _without_page(body))
        if carried is not None:
            others = sorted(set(args) - {"cursor"})
            if others:
                raise BadRequest(
                    "This next link carries its whole query; follow it as it is, without "
                    f"other parameters (got {', '.join(others)}).")
            return ListRequest(parse_body(carried, vocabulary), list_id,
                               _without_page(carried))
        return ListRequest(parse_url(args, vocabulary), list_id, None)

    def write_body(self) -> Any:
        """The JSON body of a write, after the checks every write makes first."""
        wants_json(request)
        no_query_parameters(request)
        return read_json(request, self.state.settings.max_body_bytes)

    def write_rows(self, body: Any, target: Served, writable: Mapping[str, Any],
                   validator: Any = None) -> list[dict[str, Any]]:
        """Validated values of each row a create body holds (an object or an array)."""
        if isinstance(body, list):
            if not body:
                raise BadRequest("The body is an empty array: nothing to create.")
            limit = self.state.settings.max_batch
            if len(body) > limit:
                raise PayloadTooLarge(
                    f"The body creates {len(body)} items; one request creates at most "
                    f"{limit} (TABLEREST_MAX_BATCH). Send them in smaller batches.")
            rows = [target.validate_body(item, "create", writable, f"[{index}].", validator)
                    for index, item in enumerate(body)]
        else:
            rows = [target.validate_body(body, "create", writable, validator=validator)]
        return rows


@dataclass(frozen=True)
class ListRequest:
    """A list request: its query, the list it pages (its path), and for a body query the
    body without its page, which its ``next`` link carries."""

    query: Query
    list_id: str
    body: dict[str, Any] | None


def _without_page(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    return {key: value for key, value in body.items() if key not in ("cursor", "offset")}


def no_query_parameters(req: Request) -> None:
    """Items and writes take no query parameters: one refused is better than one ignored."""
    if not req.environ.get("QUERY_STRING"):  # the common case, without parsing a query
        return
    names = ", ".join(sorted(name for name in req.args if name != FORMAT_PARAMETER))
    if names:
        raise BadRequest(f"This URL takes no query parameters, got {names}; fields, filters "
                         "and paging apply to lists.")


def check_if_match(current: Mapping[str, Any]) -> None:
    """412 when ``If-Match`` names another version of the item than ``current``."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    etag = etag_of(dumps(current))
    if header.strip() != "*" and not request.if_match.contains(etag.strip('"')):
        raise PreconditionFailed(
            "The item changed since it was read (If-Match does not match its ETag); "
            "GET it again and retry."
        )


def check_if_none_match_on_write() -> None:
    """``If-None-Match: *`` on a write means "only if it does not exist": the item does."""
    header = request.headers.get("If-None-Match")
    if header is not None and header.strip() == "*":
        raise PreconditionFailed(
            "The item exists, and If-None-Match: * asks to write only if it does not.")


def not_allowed(allowed: tuple[str, ...]) -> MethodNotAllowed:
    return MethodNotAllowed(f"{request.method} is not allowed on this URL.", allowed)

"""The dialect's routes: ``/<table>`` (GET, HEAD, POST, PUT, PATCH, DELETE), ``/`` and the
paths PostgREST answers with an error (``/rpc/<fn>``, deeper paths).

Each request: the resource by its name (404 ``PGRST205``), the schema headers (406
``PGRST106`` unless ``public``), the caller (the app's own authenticator: a bad token is 401
``PGRST301``), the ``Prefer`` header, then the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, request

from ..database import write_transaction
from ..errors import BadRequest, Unauthorized
from ..http import read_json
from ..query.compile import Scope
from ..reading import SqlReader
from ..replicas import request_reader
from ..resource import RequestContext
from ..serialization import dumps
from ..served import Served
from ..state import State
from . import writes
from .errors import PostgrestError, not_implemented
from .parse import (
    RESERVED,
    RESERVED_LAST,
    Shape,
    parse_columns,
    parse_count,
    parse_filters,
    parse_order,
    parse_select,
)
from .prefer import Preferences, parse_prefer
from .reads import build_query, fast_for, key_of, keys_condition, page_of, run_list
from .shape import content_range, content_type, csv_text, keys_of, media_type, project, singular

SCHEMA = "public"


@dataclass(frozen=True)
class Options:
    """How an app serves the dialect (see ``TableRest.postgrest``)."""

    prefix: str
    #: Resources a PATCH or DELETE without any filter may change whole.
    unfiltered_writes: frozenset[str] = frozenset()
    #: The most rows one PATCH or DELETE may change, by resource.
    max_affected: Mapping[str, int] = field(default_factory=dict)


class _Rollback(Exception):
    """Ends a write transaction without keeping it (``Prefer: tx=rollback``)."""

    def __init__(self, response: Response) -> None:
        super().__init__("rolled back")
        self.response = response


def _state() -> State:
    state: State = current_app.extensions["tablerest"]
    return state


def _first(name: str) -> str | None:
    return request.args.get(name)


def root() -> Response:
    """``GET /``: a Swagger 2.0 outline of the tables (neither client reads it)."""
    state = _state()
    paths = {f"/{name}": {"get": {"responses": {"200": {"description": "OK"}}}}
             for name in state.served}
    document = {"swagger": "2.0", "info": {"title": "tablerest (PostgREST dialect)",
                                           "version": "1"}, "paths": paths}
    return Response(dumps(document), content_type="application/openapi+json; charset=utf-8")


def no_function(name: str) -> Response:
    raise PostgrestError(404, "PGRST202", f"Could not find the function public.{name} in the "
                                          "schema cache",
                         hint="This server has no functions to call (RPC).")


def no_path(rest: str) -> Response:
    raise PostgrestError(404, "PGRST125", f"Invalid path specified in request URL: /{rest}")


def resource(name: str, options: Options) -> Response:
    """Every method on ``/<name>``."""
    state = _state()
    served = state.served.get(name)
    if served is None:
        raise PostgrestError(404, "PGRST205", f"Could not find the table '{SCHEMA}.{name}' "
                                              "in the schema cache")
    profile = _profile()
    try:
        principal = state.principal(request)
    except Unauthorized as exc:
        raise PostgrestError(401, "PGRST301", exc.detail, headers=exc.headers) from None
    prefs = parse_prefer(request.headers.getlist("Prefer"))
    method = request.method
    if method in ("GET", "HEAD"):
        response = _read(served, principal, prefs)
    elif method not in ("POST", "PUT", "PATCH", "DELETE"):
        raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {method}",
                             headers={"Allow": "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"})
    elif not served.resource.allows_writes:
        raise PostgrestError(405, "25006", f"{name} is read-only.",
                             hint="Only GET and HEAD are allowed on this table.",
                             headers={"Allow": "GET, HEAD, OPTIONS"})
    else:
        response = _write(served, principal, prefs, options)
    if profile is not None:
        response.headers["Content-Profile"] = profile
    applied = prefs.header()
    if applied is not None:
        response.headers["Preference-Applied"] = applied
    return response


def _profile() -> str | None:
    """The schema the request names (``Accept-Profile`` / ``Content-Profile``)."""
    header = "Accept-Profile" if request.method in ("GET", "HEAD") else "Content-Profile"
    profile = request.headers.get(header)
    if profile is not None and profile.strip() != SCHEMA:
        raise PostgrestError(406, "PGRST106", f"Invalid schema: {profile.strip()}",
                             hint=f"Only the following schemas are exposed: {SCHEMA}")
    return None if profile is None else SCHEMA


# -- reads -------------------------------------------------------------------------------------


def _read(served: Served, principal: Any, prefs: Preferences) -> Response:
    kind = media_type(request)
    args = list(request.args.items(multi=True))
    shape = parse_select(_first("select"), served, args)
    where = parse_filters(args, served, shape)
    sort = parse_order(_first("order"), served)
    page = page_of(parse_count(_first("limit"), "limit"), parse_count(_first("offset"),
                                                                      "offset"),
                   request.headers.get("Range"))
    counting = prefs.use("count")
    query = build_query(where, sort, shape, page.offset)
    # The resource's maximum caps every page, as PostgREST's db-max-rows does.
    limit = served.max_limit if page.limit is None else min(page.limit, served.max_limit)
    fast = fast_for(served, query)
    with ExitStack() as stack:
        reader = stack.enter_context(request_reader(
            _state().replicas, served, fast, bool(counting or query.include), "GET", principal))
        scope = Scope(served.table, served.table, served.read_scope(reader.ctx),
                      key=("all",) if fast else None)
        items, total = run_list(reader, served, query, scope, limit, counting)
        if kind == "object" and len(items) > 1 and total is None:
            _, total = run_list(reader, served, query, scope, 0, "exact")
    if total is not None and page.offset > total:
        raise PostgrestError(416, "PGRST103", "Requested range not satisfiable",
                             f"An offset of {page.offset} was requested, but there are only "
                             f"{total} rows.")
    status = 206 if total is not None and len(items) < total else 200
    headers = {"Content-Range": content_range(page.offset, len(items), total)}
    shaped = [project(item, shape) for item in items]
    if kind == "object":
        matched = None if total is None else max(total - page.offset, 0)
        if page.limit is not None and matched is not None:
            matched = min(matched, page.limit)
        body = dumps(singular(shaped, matched))
        status = 200
    elif kind == "csv":
        body = csv_text(keys_of(shape), shaped)
    else:
        body = dumps(shaped)
    return Response(body, status=status, headers=headers, content_type=content_type(kind))


# -- writes ------------------------------------------------------------------------------------


def _write(served: Served, principal: Any, prefs: Preferences, options: Options) -> Response:
    kind = media_type(request)
    if kind == "csv":
        raise not_implemented("CSV bodies and CSV answers to writes are not supported.")
    shape = parse_select(_first("select"), served)
    returning = prefs.use("return") or "minimal"
    if request.method == "DELETE":
        body: Any = None  # PostgREST ignores a DELETE's body (postgrest-py sends {})
    else:
        try:
            body = read_json(request, _state().settings.max_body_bytes)
        except BadRequest as exc:
            raise PostgrestError(400, "PGRST102", "Empty or invalid json", exc.detail) from None
    try:
        with write_transaction(served.engine) as connection:
            ctx = RequestContext(connection, request.method, principal)
            if request.method == "POST":
                response = _post(ctx, served, body, shape, prefs, returning, kind, options)
            elif request.method == "PUT":
                response = _put(ctx, served, body, shape, returning, kind)
            else:
                response = _change(ctx, served, body, shape, prefs, returning, kind, options)
            if prefs.use("tx") == "rollback":
                raise _Rollback(response)
    except _Rollback as rolled:
        return rolled.response
    return response


def _post(ctx: RequestContext, served: Served, body: Any, shape: Shape, prefs: Preferences,
          returning: str, kind: str, options: Options) -> Response:
    columns = parse_columns(_first("columns"), served)
    missing_default = prefs.use("missing") == "default"
    rows = writes.body_rows(body, served, columns, missing_default)
    resolution = prefs.use("resolution")
    written: list[dict[str, Any]] = []
    inserted = 0
    if resolution is None:
        written = [writes.insert(ctx, served, row) for row in rows]
        inserted = len(written)
    else:
        conflict = parse_columns(_first("on_conflict"), served) or list(
            served.info.primary_key)
        writes.check_conflict_target(served, conflict)
        for row in rows:
            item, created = writes.upsert(ctx, served, row, conflict,
                                          resolution == "ignore-duplicates")
            if item is not None:
                written.append(item)
            inserted += created
    status = 201 if resolution != "merge-duplicates" or inserted else 200
    headers = {"Content-Range": "*/*"}
    if returning == "headers-only" and len(written) == 1 and served.key_fields:
        headers["Location"] = _location(served, written[0], options)
    return _answer(ctx, served, written, shape, returning, kind, status, headers)


def _put(ctx: RequestContext, served: Served, body: Any, shape: Shape, returning: str,
         kind: str) -> Response:
    """PUT of one row by its whole primary key: insert it, or replace every column."""
    item, inserted = writes.put(ctx, served, *_put_request(served, body))
    status = (201 if inserted else 200) if returning == "representation" else 204
    return _answer(ctx, served, [item], shape, returning, kind, status, {})


def _put_request(served: Served, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A PUT's key (from its filters) and row (its body), checked as PostgREST checks them."""
    if _first("limit") is not None or _first("offset") is not None:
        raise PostgrestError(400, "PGRST114", "limit/offset querystring parameters are not "
                                              "allowed for PUT")
    key = writes.put_key(served, list(request.args.items(multi=True)), RESERVED,
                         RESERVED_LAST)
    return key, writes.put_row(body, served, key)


def _change(ctx: RequestContext, served: Served, body: Any, shape: Shape, prefs: Preferences,
            returning: str, kind: str, options: Options) -> Response:
    """PATCH or DELETE of every row the filters match (and the policy allows)."""
    args = list(request.args.items(multi=True))
    if _first("limit") is not None or _first("offset") is not None:
        raise not_implemented("limit and offset on PATCH and DELETE are not supported.")
    where = parse_filters(args, served)
    if where is None and served.name not in options.unfiltered_writes:
        raise PostgrestError(
            400, "21000", f"A {request.method} without any filter would change every row of "
                          f"{served.name}; this server refuses it.",
            hint="Add a filter (for example id=gte.0 to mean every row).")
    values: dict[str, Any] = {}
    if request.method == "PATCH":
        values = served.validate_body(body, "update", served.resource.updatable_fields)
        if not values:
            return _empty(204, {"Content-Range": "*/*"})
    rows = writes.matching(ctx, served, where)
    if request.method == "PATCH":
        changed = writes.update_matching(ctx, served, rows, values)
    else:
        changed = writes.delete_matching(ctx, served, rows)
    _check_affected(served, prefs, options, len(changed))
    counted = prefs.use("count") is not None
    if request.method == "PATCH":
        shown = content_range(0, len(changed), len(changed) if counted else None)
    else:
        shown = f"*/{len(changed) if counted else '*'}"
    status = 200 if returning == "representation" else 204
    return _answer(ctx, served, changed, shape, returning, kind, status,
                   {"Content-Range": shown}, deleted=request.method == "DELETE")


def _check_affected(served: Served, prefs: Preferences, options: Options, count: int) -> None:
    """``Prefer: handling=strict, max-affected=N`` and the resource's own maximum."""
    limits = [options.max_affected[served.name]] if served.name in options.max_affected else []
    if prefs.strict and prefs.max_affected is not None:
        prefs.use("max-affected")
        limits.append(prefs.max_affected)
    if limits and count > min(limits):
        raise PostgrestError(400, "PGRST124", "Query result exceeds max-affected preference "
                                              "constraint", f"The query affects {count} rows")


def _answer(ctx: RequestContext, served: Served, written: list[dict[str, Any]], shape: Shape,
            returning: str, kind: str, status: int, headers: dict[str, str],
            deleted: bool = False) -> Response:
    """A write's answer: nothing, or the written rows as ``select`` shapes them; a singular
    Accept needs exactly one row (else 406, and the write is rolled back)."""
    if kind == "object":
        singular(written)
    if returning != "representation":
        return _empty(status, headers)
    if shape.embeds and written:
        if deleted:
            raise not_implemented("Embedding in the answer to a DELETE is not supported.")
        written = _read_back(ctx, served, written, shape)
    shaped = [project(item, shape) for item in written]
    body = dumps(singular(shaped) if kind == "object" else shaped)
    return Response(body, status=status, headers=headers, content_type=content_type(kind))


def _empty(status: int, headers: dict[str, str]) -> Response:
    response = Response(status=status, headers=headers)
    del response.headers["Content-Type"]  # no body, no type (not Werkzeug's text/html)
    return response


def _read_back(ctx: RequestContext, served: Served, written: list[dict[str, Any]],
               shape: Shape) -> list[dict[str, Any]]:
    """The written rows with their embeds, read in the write's transaction."""
    keys = [key_of(served, item) for item in written]
    query = build_query(keys_condition(served, keys), (), shape, 0)
    if query.fields:  # the key too, to put the rows back in the order they were written
        query = replace(query, fields=tuple(dict.fromkeys(
            [*query.fields, *(info.name for info in served.key_fields)])))
    scope = Scope(served.table, served.table, served.read_scope(ctx))
    items, _ = run_list(SqlReader(ctx), served, query, scope, None, None)
    by_key = {key_of(served, item): item for item in items}
    return [by_key[key] for key in keys if key in by_key]


def _location(served: Served, item: dict[str, Any], options: Options) -> str:
    filters = "&".join(f"{quote(info.name)}=eq.{quote(str(item[info.name]), safe='')}"
                       for info in served.key_fields)
    return f"{options.prefix}/{quote(served.name)}?{filters}"

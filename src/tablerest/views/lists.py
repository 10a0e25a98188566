"""List routes: ``GET``/``QUERY``/``FETCH`` a list (or ``POST <list>/query``), ``POST`` to
create, and lists of your own (``TableRest.list_route``). Every list, relation lists too,
is answered by ``list_response``: one page as JSON, or every row streamed as CSV/NDJSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from flask import Request, Response, request
from sqlalchemy import ColumnElement

from ..database import DriverWrite
from ..errors import BadRequest, FieldError, MethodNotAllowed
from ..http import json_response
from ..listing import (
    VisibleRows,
    add_includes,
    count_rows,
    count_strategy,
    plan_list,
    sort_signature,
    with_default_sort,
)
from ..listing import (
    fast_for as fast_for,  # the relation lists' too
)
from ..query.compile import Scope as SqlScope
from ..query.compile import collect
from ..query.parse import parse_sort
from ..reading import FastReader, Reader
from ..representations import Representation, Stream, negotiate
from ..serialization import dumps
from ..served import Served, WriteContext
from .base import ListRequest, Views

#: A custom list's condition: ``scope(ctx, **url_values)`` -> a WHERE clause on the table.
Scope = Callable[..., ColumnElement[bool]]
#: Rows a streamed list fetches at a time.
STREAM_BATCH = 1000


class Lists(Views):
    """A resource's own list: read it, query it, create in it."""

    def collection(self) -> Response:
        if request.method == "POST":
            return self.create()
        return self.query_collection(body_route=False)

    def query_collection(self, body_route: bool = True) -> Response:
        served = self.served
        shown = negotiate(request)
        asked = self.list_request(served, f"/{served.name}", body_route)
        query = asked.query
        fast = fast_for(served, query)
        with ExitStack() as stack:
            counted = count_strategy(query, served) != "none"
            reader = stack.enter_context(
                self.reading(fast, snapshot=not shown.streamed and (counted or
                                                                    bool(query.include))))
            scope = SqlScope(served.table, served.table, served.read_scope(reader.ctx),
                             key=("all",) if fast else None)
            return list_response(reader, asked, scope, served, shown, stack)

    def create(self) -> Response:
        served = self.served
        if not served.resource.allows_writes:
            raise MethodNotAllowed(f"{served.name} is read-only.", ["GET", "HEAD"])
        return self.create_from(self.write_body())

    def create_from(self, body: Any) -> Response:
        """Create the item (or items) ``body`` holds; the HTML create form calls it too."""
        served = self.served
        rows = self.write_rows(body, served, served.resource.writable_fields)
        with DriverWrite(served.engine) as write:
            ctx = WriteContext(write, request.method, self.state.principal(request))
            items = [served.insert(ctx, values) for values in rows]
        if isinstance(body, list):
            return json_response(dumps(items), 201)
        item = items[0]
        return json_response(dumps(item), 201, {"Location": served.location(item)})

    def scoped_view(self, scope: Scope, sort: Sequence[Any], name: str,
                    body_route: bool) -> Callable[..., Response]:
        """A list of this resource's rows narrowed by ``scope`` (see TableRest.list_route)."""
        served = self.served

        def view(**values: Any) -> Response:
            shown = negotiate(request)
            list_id = request.path.removesuffix("/query") if body_route else request.path
            asked = self.list_request(served, list_id, body_route)
            if not asked.query.sort and sort:
                asked = replace(asked, query=replace(asked.query, sort=tuple(sort)))
            with ExitStack() as stack:
                reader = stack.enter_context(self.reading(fast=False))
                ctx = reader.need_ctx()
                where = [*served.read_scope(ctx), scope(ctx, **values)]
                return list_response(reader, asked, SqlScope(served.table, served.table,
                                                             where), served, shown, stack)

        view.__name__ = name
        return view


def default_sort_of(served: Served, keys: Sequence[str]) -> tuple[Any, ...]:
    return parse_sort(served.vocabulary, list(keys), "sort") if keys else ()


def list_response(reader: Reader, asked: ListRequest, scope: SqlScope, target: Served,
                  shown: Representation, stack: ExitStack) -> Response:
    """The page (or the stream) of ``target``'s rows that ``asked`` asks for.

    ``asked.list_id`` names the list for its cursors (its path); ``stack`` holds the reader:
    a streamed response takes it over, to release the connection when the stream ends.
    """
    list_id = asked.list_id
    query = with_default_sort(asked.query, target)
    if scope.rows is None:  # conditions across relations read only rows the caller may see
        scope = replace(scope, rows=VisibleRows(target, reader.ctx))
    if shown.streamed and query.include:
        raise BadRequest("include embeds related items in JSON lists only; request "
                         "application/json, or export the related list separately.",
                         [FieldError("include", "Not available in " + shown.mimetype)])
    values: dict[str, Any] = {}
    shape = collect(query.where, values)
    after = None
    if query.cursor is not None:
        after = target.cursors.load(query.cursor, list_id, sort_signature(query, scope,
                                                                          target))
    if shown.render is not None:
        plan = plan_list(query, scope, target, shape, values, after, query.requested_limit)
        batches = reader.stream(plan.key, plan.build, plan.params,
                                target.resource.base_query, STREAM_BATCH)
        stack.callback(batches.close)
        chunks = shown.render(plan.names, batches)
        return Response(Stream(chunks, stack.pop_all().close), mimetype=shown.mimetype)
    plan = plan_list(query, scope, target, shape, values, after, query.limit + 1)
    rows = reader.rows(plan.key, plan.build, plan.params, target.resource.base_query)
    more = len(rows) > query.limit
    if more:
        del rows[query.limit:]
    names = plan.names
    items = [dict(zip(names, row, strict=False)) for row in rows]
    if query.include:
        add_includes(reader, plan, target, rows, items, fast=isinstance(reader, FastReader))
    total = count_rows(reader, plan, target, shape, count_strategy(query, target))
    if total is not None and after is None:  # a first or offset page knows where it starts
        total = total.settled(query.offset or 0, len(rows), more)
    cursor = next_url = None
    if more:
        page: dict[str, Any]
        if query.offset is not None:
            page = {"offset": query.offset + query.limit}
        else:
            last = rows[-1]
            cursor = target.cursors.dump(list_id, plan.signature,
                                         [last[index] for index in plan.sort_positions])
            page = {"cursor": cursor}
        if asked.body is not None:  # the link carries the body query, so a GET repeats it
            token = target.cursors.dump_query(list_id, {**asked.body, **page})
            # POST .../query is answered with .../query, to POST again; QUERY and FETCH with
            # the list's URL, to GET, QUERY or FETCH.
            path = request.path if request.method == "POST" else list_id
            next_url = f"{quote(path, safe='/,')}?{urlencode({'cursor': token})}"
        else:
            name, value = next(iter(page.items()))
            next_url = _next_url(request, name, str(value))
    envelope = {"items": items, "count": None if total is None else total.value,
                "count_kind": None if total is None else total.kind, "limit": query.limit,
                "offset": query.offset, "cursor": cursor, "next": next_url}
    body = dumps(envelope)
    if shown.pages is not None:
        stack.close()  # the page is drawn after the connection is given back
        drawn: Response = shown.pages.list_page(target, query, envelope, body)
        return drawn
    return json_response(body)


def _next_url(req: Request, name: str, value: str) -> str:
    """The request's URL with ``name=value`` in place of its page (offset or cursor)."""
    params = [(key, item) for key, item in req.args.items(multi=True)
              if key not in ("offset", "cursor")]
    params.append((name, value))
    return f"{quote(req.path, safe='/,')}?{urlencode(params)}"

"""Item routes: ``GET``/``HEAD``, ``PATCH``, ``PUT`` and ``DELETE /things/<key>``.

Methods are dispatched by name, never by elimination: HEAD is a GET without a body (it
never reads a body and never writes), and a method the route does not serve is a 405.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Response, request
from sqlalchemy.exc import DBAPIError

from ..database import write_transaction
from ..http import etag_of, json_response, wants_json
from ..representations import negotiate
from ..resource import RequestContext
from ..serialization import dumps
from .base import (
    READ_METHODS,
    Views,
    check_if_match,
    check_if_none_match_on_write,
    no_query_parameters,
    not_allowed,
)

WRITE_METHODS = ("PATCH", "PUT", "DELETE")


class Items(Views):
    """One item of a resource, by its key."""

    @property
    def methods(self) -> tuple[str, ...]:
        if self.served.resource.allows_writes:
            return (*READ_METHODS, *WRITE_METHODS)
        return READ_METHODS

    def item(self, key: str) -> Response:
        method = request.method
        if method in READ_METHODS:
            return self.read(key)
        if method not in self.methods:
            raise not_allowed(self.methods)
        if method == "DELETE":
            wants_json(request)
            no_query_parameters(request)
            return self.delete(key)
        body = self.write_body()
        kind = "update" if method == "PATCH" else "replace"
        served = self.served
        values = served.validate_body(body, kind, served.resource.updatable_fields)
        if kind == "replace":
            for name, info in served.resource.updatable_fields.items():
                if name not in values and info.nullable and not info.has_default:
                    values[name] = None
        return self.update(key, values)

    def read(self, raw_key: str) -> Response:
        shown = negotiate(request, streamed=False)
        no_query_parameters(request)
        served = self.served
        key = served.parse_key(raw_key)
        with self.reading(served.fast) as reader:
            found = served.sql.item(reader, key, served.read_scope(reader.ctx),
                                    served.resource.base_query, cacheable=served.fast)
            if found is None:
                raise served.not_found(raw_key)
            item = found
            if not served.fast:
                item = served.resource.render(item, reader.need_ctx())
        body = dumps(item)
        if shown.pages is not None:  # no ETag: the page also shows who is signed in
            page: Response = shown.pages.item_page(served, item, body)
            return page
        etag = etag_of(body)
        # If-None-Match compares weakly (RFC 9110 13.1.2): W/"x" matches "x".
        if "If-None-Match" in request.headers and request.if_none_match.contains_weak(
                etag.strip('"')):
            return Response(status=304, headers={"ETag": etag})
        return json_response(body, headers={"ETag": etag})

    @contextmanager
    def locked(self, key: tuple[Any, ...]) -> Iterator[tuple[RequestContext, dict[str, Any]]]:
        """A write transaction holding the item (locked on PostgreSQL), its preconditions met:
        the request's context and the item as it is now."""
        served = self.served
        with write_transaction(served.engine) as connection:
            ctx = self.context(connection)
            current = served.select_item(ctx, key, lock=True)
            check_if_match(current)
            check_if_none_match_on_write()
            yield ctx, current

    def update(self, raw_key: str, values: dict[str, Any]) -> Response:
        served = self.served
        key = served.parse_key(raw_key)
        with self.locked(key) as (ctx, current):
            item = served.update(ctx, key, current, values)
            if item is None:
                raise served.not_found(raw_key)
        body = dumps(item)
        return json_response(body, headers={"ETag": etag_of(body)})

    def delete(self, raw_key: str) -> Response:
        served = self.served
        resource = served.resource
        key = served.parse_key(raw_key)
        with self.locked(key) as (ctx, current):
            resource.policy_.can_delete(ctx, current)
            resource.before_delete(current, ctx)
            try:
                served.sql.delete(served.writer(ctx), key)
            except DBAPIError as exc:
                raise served.delete_errors(exc, current) from exc
            resource.after_delete(current, ctx)
        return Response(status=204)

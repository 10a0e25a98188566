"""The HTTP endpoints of one resource: one transaction a request, ETags, row policy.

Reads select only the columns a response needs and serialize rows straight to JSON; no ORM
objects are built. Writes run in one transaction that commits only when the whole request
succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from flask import Flask, Request, Response, request
from sqlalchemy import ColumnElement, Connection, FromClause
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import Column

from .coerce import coerce_key
from .cursors import Cursors
from .database import write_transaction
from .errors import (
    BadRequest,
    FieldError,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from .http import etag_of, json_response, read_json, wants_json
from .integrity import translate
from .listing import (
    add_includes,
    count_rows,
    plan_list,
    relation_order,
    sort_signature,
    with_default_sort,
)
from .query.compile import Scope as SqlScope
from .query.compile import SortColumn, collect, include_links
from .query.model import Query, Vocabulary
from .query.parse import parse_body, parse_sort, parse_url
from .reading import FastReader, Reader, SqlReader, fast_reader, sql_reader
from .representations import Representation, Stream, negotiate
from .resource import Policy, RequestContext, Resource
from .schema import FieldInfo, RelationInfo
from .serialization import dumps
from .statements import cache_for
from .tablesql import TableSql
from .timestamps import utcnow, utcnow_for
from .validation import METHODS, BodyValidator, build_validator, check_keys

if TYPE_CHECKING:
    from .state import State

View = Callable[..., Response]
#: A custom list's condition: ``scope(ctx, **url_values)`` -> a WHERE clause on the table.
Scope = Callable[..., ColumnElement[bool]]
#: The methods that carry a list query in a JSON body (and ``POST <list>/query``).
BODY_QUERY_METHODS = ("QUERY", "FETCH")
#: Rows a streamed list fetches at a time.
STREAM_BATCH = 1000


class Endpoints:
    """Every route of one resource on one app."""

    def __init__(self, resource: Resource, state: State) -> None:
        resource = resource.for_dialect(state.engine_for(resource.bind_).dialect.name)
        self.resource = resource
        self.state = state
        self.info = resource.info
        self.table = resource.info.table
        self.name = resource.name_
        # The resource's database: the main one, or the bind it names.
        self.engine = state.engine_for(resource.bind_)
        self.statements = cache_for(self.engine)
        settings = state.settings
        options = resource.options
        self.max_limit = int(options["max_limit"] or settings.max_limit)
        self.default_limit = min(int(options["default_limit"] or settings.default_limit),
                                 self.max_limit)
        self.visible_names = list(resource.visible)
        self.visible_columns: list[Column[Any]] = [
            info.column for info in resource.visible.values()]
        self.key_fields = [self.info.fields[name] for name in self.info.primary_key]
        self.key_columns = [info.column for info in self.key_fields]
        self.relations: dict[str, tuple[RelationInfo, Endpoints]] = {}
        self._relation_sources: dict[str, tuple[FromClause, list[ColumnElement[bool]],
                                                list[SortColumn], list[str]]] = {}
        self.child_validators: dict[str, tuple[dict[str, FieldInfo], BodyValidator]] = {}
        self.vocabulary = Vocabulary(resource.visible, {}, self.default_limit, self.max_limit)
        overrides = resource.schema_overrides
        self.validators: dict[str, BodyValidator] = {
            method: build_validator(
                self.name,
                resource.writable_fields if method == "create" else resource.updatable_fields,
                method,
                overrides.get(method, overrides.get("*")),
            )
            for method in METHODS
        }
        self.cursors = Cursors(settings.secret_key)
        self.sql = TableSql(self.name, self.info, self.visible_names, self.visible_columns)
        # Reads skip the SQLAlchemy connection when no hook or policy needs it.
        self.fast = (
            type(resource.policy_).visible is Policy.visible
            and type(resource).base_query is Resource.base_query
            and type(resource).render is Resource.render
        )

    # -- wiring --------------------------------------------------------------------------

    def register(self, app: Flask) -> None:
        base = f"/{self.name}"
        methods = ["GET", "POST"] if self.resource.allows_writes else ["GET"]
        item_methods = ["GET", "PATCH", "PUT", "DELETE"] if self.resource.allows_writes \
            else ["GET"]
        self._add(app, base, "list", self.collection, [*methods, *BODY_QUERY_METHODS])
        # Werkzeug prefers this static rule to /<key>, for POST only: an item whose key is
        # "query" is still read, changed and deleted at /things/query.
        self._add(app, base + "/query", "query", self.query_collection, ["POST"])
        if self.key_fields:  # a table or view without a key has no item routes
            self._add(app, base + "/<key>", "item", self.item, item_methods)

    def link(self, app: Flask, registry: Mapping[Any, Endpoints]) -> None:
        """Expose the relations whose target is a resource on this app too."""
        wanted = self.resource.options["relations"]
        for name, relation in self.info.relations.items():
            if name in self.relations or (wanted is not None and name not in wanted):
                continue
            target = registry.get(relation.target)
            if target is None or target.engine is not self.engine:
                continue  # not served here, or in another database: no join reaches it
            self.relations[name] = (relation, target)
            base = f"/{self.name}/<key>/{name}"
            writes = self.resource.allows_writes and target.resource.allows_writes
            if relation.kind == "to_many":
                self.child_validators[name] = target.child_validator(relation)
                self._add(app, base, f"rel_{name}", self._relation_view(name),
                          ["GET", "POST", *BODY_QUERY_METHODS] if writes
                          else ["GET", *BODY_QUERY_METHODS])
                self._add(app, base + "/query", f"rel_{name}_query",
                          self._relation_view(name, body_route=True), ["POST"])
            elif relation.kind == "many_to_many":
                self._add(app, base, f"rel_{name}", self._relation_view(name),
                          ["GET", *BODY_QUERY_METHODS])
                self._add(app, base + "/query", f"rel_{name}_query",
                          self._relation_view(name, body_route=True), ["POST"])
                if writes:
                    self._add(app, base + "/<other>", f"link_{name}", self._link_view(name),
                              ["PUT", "DELETE"])
        self.vocabulary = Vocabulary(
            self.resource.visible,
            {name: (relation, target.resource.visible)
             for name, (relation, target) in self.relations.items()},
            self.default_limit, self.max_limit,
        )

    def _add(self, app: Flask, rule: str, kind: str, view: View, methods: list[str]) -> None:
        endpoint = f"tablerest.{self.name}.{kind}"
        app.add_url_rule(rule, endpoint, view, methods=methods)
        self.state.routes.append((rule, tuple(methods), self.name))

    # -- shared pieces -------------------------------------------------------------------

    def context(self, connection: Connection) -> RequestContext:
        return RequestContext(connection, request.method, self.state.principal(request))

    def parse_key(self, raw: str) -> tuple[Any, ...]:
        parts = raw.split(",") if len(self.key_fields) > 1 else [raw]
        if len(parts) != len(self.key_fields):
            raise NotFound(f"No {self.name} item has the key {raw!r}: expected "
                           f"{len(self.key_fields)} comma-separated key values.")
        try:
            return tuple(coerce_key(info, part) for info, part in zip(self.key_fields, parts,
                                                                      strict=True))
        except ValueError:
            raise NotFound(f"No {self.name} item has the key {raw!r}.") from None

    def read_scope(self, ctx: RequestContext | None) -> list[ColumnElement[bool]]:
        if ctx is None:  # the fast path runs only when the policy has no visible()
            return []
        condition = self.resource.policy_.visible(ctx, self.table)
        return [] if condition is None else [condition]

    def writer(self, ctx: RequestContext) -> Reader:
        """Statements inside a write transaction: prepared ones on its driver cursor."""
        if self.fast:
            return FastReader(self.statements, ctx.connection.connection.cursor())
        return SqlReader(ctx)

    def select_item(self, ctx: RequestContext, key: Sequence[Any], lock: bool = False,
                    ) -> dict[str, Any]:
        lock = lock and ctx.connection.dialect.name == "postgresql"
        item = self.sql.item(self.writer(ctx), key, self.read_scope(ctx),
                             self.resource.base_query, lock=lock, cacheable=self.fast)
        if item is None:
            shown = ",".join(str(part) for part in key)
            raise NotFound(f"No {self.name} item has the key {shown!r}.")
        return item

    def location(self, item: Mapping[str, Any]) -> str:
        key = ",".join(quote(str(item[info.name]), safe="") for info in self.key_fields)
        return f"/{self.name}/{key}"

    def validate_body(self, body: Any, method: str, writable: Mapping[str, FieldInfo],
                      where: str = "") -> dict[str, Any]:
        if not isinstance(body, dict):
            shown = f" at {where.rstrip('.')}" if where else ""
            raise BadRequest(f"The body{shown} must be a JSON object, "
                             f"got {type(body).__name__}.")
        check_keys(body, writable, self.info.fields, self.resource.hidden_fields, where)
        values = self.validators[method](body, where)
        for info in self.key_fields:
            value = values.get(info.name)
            if isinstance(value, str) and ("/" in value or (len(self.key_fields) > 1
                                                            and "," in value)):
                raise ValidationFailed(
                    f"The key {info.name!r} cannot contain '/' (or ',' in a composite key): "
                    "it must fit in one URL segment.",
                    [FieldError(f"{where}{info.name}", "This key cannot contain '/' or ','.")],
                )
        return values

    def translate_errors(self, exc: DBAPIError, values: Mapping[str, Any] | None) -> Exception:
        problem = translate(exc, self.info, self.engine, values)
        return problem if problem is not None else exc

    def check_if_match(self, current: Mapping[str, Any]) -> None:
        header = request.headers.get("If-Match")
        if header is None:
            return
        etag = etag_of(dumps(current))
        if header.strip() != "*" and not request.if_match.contains(etag.strip('"')):
            raise PreconditionFailed(
                "The item changed since it was read (If-Match does not match its ETag); "
                "GET it again and retry."
            )

    def insert(self, ctx: RequestContext, values: dict[str, Any],
               endpoints: Endpoints | None = None) -> dict[str, Any]:
        target = endpoints or self
        resource = target.resource
        resource.policy_.can_create(ctx, values)
        resource.before_create(values, ctx)
        now = utcnow()
        for info in target.info.fields.values():
            if info.is_timestamp and info.name not in values:
                values[info.name] = now if getattr(info.column.type, "timezone", False) \
                    else now.replace(tzinfo=None)
        try:
            item = target.sql.insert(target.writer(ctx), values)
        except DBAPIError as exc:
            raise target.translate_errors(exc, values) from exc
        resource.after_create(item, ctx)
        return item

    # -- views ---------------------------------------------------------------------------

    def reading(self, fast: bool, snapshot: bool = False) -> AbstractContextManager[Reader]:
        """A reader for this request: prepared statements on a driver cursor when no hook
        or policy needs the SQLAlchemy connection, else a SQLAlchemy read transaction."""
        principal = self.state.principal(request)
        if fast:
            return fast_reader(self.statements, snapshot)
        return sql_reader(self.engine, request.method, principal)

    def list_query(self, vocabulary: Vocabulary, body_route: bool = False) -> Query:
        """The request's list query: from its JSON body (QUERY, FETCH, ``POST .../query``),
        else from its URL parameters."""
        args = request.args.to_dict(flat=False)
        if body_route or request.method in BODY_QUERY_METHODS:
            body = read_json(request, self.state.settings.max_body_bytes)
            return parse_body(body, vocabulary, args)
        return parse_url(args, vocabulary)

    def fast_for(self, query: Query) -> bool:
        """Whether a list of this resource with ``query``'s includes can skip SQLAlchemy."""
        return self.fast and all(self.relations[name][1].fast for name in query.include)

    def collection(self) -> Response:
        if request.method == "POST":
            return self.create()
        return self.query_collection(body_route=False)

    def query_collection(self, body_route: bool = True) -> Response:
        shown = negotiate(request)
        query = self.list_query(self.vocabulary, body_route)
        fast = self.fast_for(query)
        with ExitStack() as stack:
            reader = stack.enter_context(
                self.reading(fast, snapshot=not shown.streamed and (query.count or
                                                                    bool(query.include))))
            scope = SqlScope(self.table, self.table, self.read_scope(reader.ctx),
                             key=("all",) if fast else None)
            return self.list_response(reader, query, scope, self, f"/{self.name}", shown,
                                      stack)

    def list_response(self, reader: Reader, query: Query, scope: SqlScope, target: Endpoints,
                      list_id: str, shown: Representation, stack: ExitStack) -> Response:
        """The page (or the stream) of ``target``'s rows that ``query`` asks for.

        ``list_id`` names the list for its cursors (its path); ``stack`` holds the reader:
        a streamed response takes it over, to release the connection when the stream ends.
        """
        query = with_default_sort(query, target)
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
            plan = plan_list(query, scope, target, shape, values, after,
                             query.requested_limit)
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
            add_includes(reader, plan, target, rows, items,
                         fast=isinstance(reader, FastReader))
        count = count_rows(reader, plan, target, shape) if query.count else None
        cursor = next_url = None
        if more and query.offset is not None:
            next_url = _next_url(request, "offset", str(query.offset + query.limit))
        elif more:
            last = rows[-1]
            cursor = target.cursors.dump(list_id, plan.signature,
                                         [last[index] for index in plan.sort_positions])
            next_url = _next_url(request, "cursor", cursor)
        envelope = {"items": items, "count": count, "limit": query.limit,
                    "offset": query.offset, "cursor": cursor, "next": next_url}
        return json_response(dumps(envelope))

    def create(self) -> Response:
        if not self.resource.allows_writes:
            raise MethodNotAllowed(f"{self.name} is read-only.", ["GET"])
        wants_json(request)
        body = read_json(request, self.state.settings.max_body_bytes)
        writable = self.resource.writable_fields
        if isinstance(body, list):
            if not body:
                raise BadRequest("The body is an empty array: nothing to create.")
            rows = [self.validate_body(item, "create", writable, f"[{i}].")
                    for i, item in enumerate(body)]
        else:
            rows = [self.validate_body(body, "create", writable)]
        with write_transaction(self.engine) as connection:
            ctx = self.context(connection)
            items = [self.insert(ctx, values) for values in rows]
        if isinstance(body, list):
            return json_response(dumps(items), 201)
        item = items[0]
        return json_response(dumps(item), 201, {"Location": self.location(item)})

    def item(self, key: str) -> Response:
        method = request.method
        if method == "GET":
            return self.read(key)
        wants_json(request)
        if method == "DELETE":
            return self.delete(key)
        body = read_json(request, self.state.settings.max_body_bytes)
        kind = "update" if method == "PATCH" else "replace"
        values = self.validate_body(body, kind, self.resource.updatable_fields)
        if kind == "replace":
            for name, info in self.resource.updatable_fields.items():
                if name not in values and info.nullable and not info.has_default:
                    values[name] = None
        return self.update(key, values)

    def read(self, raw_key: str) -> Response:
        wants_json(request)
        key = self.parse_key(raw_key)
        with self.reading(self.fast) as reader:
            found = self.sql.item(reader, key, self.read_scope(reader.ctx),
                                  self.resource.base_query, cacheable=self.fast)
            if found is None:
                raise NotFound(f"No {self.name} item has the key {raw_key!r}.")
            item = found
            if not self.fast:
                item = self.resource.render(item, reader.need_ctx())
        body = dumps(item)
        etag = etag_of(body)
        # If-None-Match compares weakly (RFC 9110 13.1.2): W/"x" matches "x".
        if "If-None-Match" in request.headers and request.if_none_match.contains_weak(
                etag.strip('"')):
            return Response(status=304, headers={"ETag": etag})
        return json_response(body, headers={"ETag": etag})

    def update(self, raw_key: str, values: dict[str, Any]) -> Response:
        key = self.parse_key(raw_key)
        with write_transaction(self.engine) as connection:
            ctx = self.context(connection)
            current = self.select_item(ctx, key, lock=True)
            self.check_if_match(current)
            self.resource.policy_.can_update(ctx, current, values)
            self.resource.before_update(current, values, ctx)
            item = current
            if values:
                for info in self.info.fields.values():
                    if info.is_timestamp and info.name == "updated_at":
                        values.setdefault(info.name, utcnow_for(info))
                try:
                    updated = self.sql.update(self.writer(ctx), key, values)
                except DBAPIError as exc:
                    raise self.translate_errors(exc, values) from exc
                if updated is None:
                    raise NotFound(f"No {self.name} item has the key {raw_key!r}.")
                item = updated
            self.resource.after_update(item, ctx)
        body = dumps(item)
        return json_response(body, headers={"ETag": etag_of(body)})

    def delete(self, raw_key: str) -> Response:
        key = self.parse_key(raw_key)
        with write_transaction(self.engine) as connection:
            ctx = self.context(connection)
            current = self.select_item(ctx, key, lock=True)
            self.check_if_match(current)
            self.resource.policy_.can_delete(ctx, current)
            self.resource.before_delete(current, ctx)
            try:
                self.sql.delete(self.writer(ctx), key)
            except DBAPIError as exc:
                raise self.translate_errors(exc, None) from exc
            self.resource.after_delete(current, ctx)
        return Response(status=204)

    def add_scoped_list(self, app: Flask, rule: str, scope: Scope,
                        default_sort: Sequence[str]) -> None:
        """A list of this resource's rows narrowed by ``scope`` (see TableRest.list_route)."""
        sort = parse_sort(self.vocabulary, list(default_sort), "sort") if default_sort else ()
        number = len(self.state.routes)

        def make_view(body_route: bool) -> View:
            def view(**values: Any) -> Response:
                shown = negotiate(request)
                query = self.list_query(self.vocabulary, body_route)
                if not query.sort and sort:
                    query = replace(query, sort=sort)
                list_id = request.path.removesuffix("/query") if body_route else request.path
                with ExitStack() as stack:
                    reader = stack.enter_context(self.reading(fast=False))
                    ctx = reader.need_ctx()
                    where = [*self.read_scope(ctx), scope(ctx, **values)]
                    return self.list_response(reader, query,
                                              SqlScope(self.table, self.table, where), self,
                                              list_id, shown, stack)

            view.__name__ = f"{self.name}_scoped_{number}{'_query' if body_route else ''}"
            return view

        self._add(app, rule, f"scoped_{number}", make_view(False), ["GET", *BODY_QUERY_METHODS])
        self._add(app, rule.rstrip("/") + "/query", f"scoped_{number}_query", make_view(True),
                  ["POST"])

    # -- relationship routes -------------------------------------------------------------

    def relation_scope(self, ctx: RequestContext | None, relation: RelationInfo,
                       target: Endpoints, parent: Mapping[str, Any]) -> SqlScope:
        """The target's rows related to ``parent``; parent values are bound as ``s0, s1``."""
        found = self._relation_sources.get(relation.name)
        if found is None:
            found = self._relation_sources[relation.name] = self._relation_source(relation,
                                                                                  target)
        source, conditions, order, parent_fields = found
        where = target.read_scope(ctx)
        key = ("rel", self.name, relation.name) if not where else None
        params = {f"s{index}": parent[name] for index, name in enumerate(parent_fields)}
        return SqlScope(target.table, source, [*where, *conditions], order, key, params)

    def _relation_source(self, relation: RelationInfo, target: Endpoints) -> tuple[
            FromClause, list[ColumnElement[bool]], list[SortColumn], list[str]]:
        """What every list of ``relation`` shares: built once, the parent's values bound."""
        source, columns = include_links(relation)
        conditions = [column == sa.bindparam(f"s{index}", type_=column.type)
                      for index, column in enumerate(columns)]
        parent_fields = []
        for local, _ in relation.pairs:
            info = self.info.field_for_column(local)
            assert info is not None
            parent_fields.append(info.name)
        return source, conditions, relation_order(relation), parent_fields

    def parent(self, reader: Reader, raw_key: str) -> dict[str, Any]:
        """The parent row with every column, for joining; 404 when it is not visible."""
        key = self.parse_key(raw_key)
        row = self.sql.whole_row(reader, key, self.read_scope(reader.ctx),
                                 self.resource.base_query, cacheable=self.fast)
        if row is None:
            raise NotFound(f"No {self.name} item has the key {raw_key!r}.")
        return row

    def _relation_view(self, name: str, body_route: bool = False) -> View:
        def view(key: str) -> Response:
            relation, target = self.relations[name]
            if request.method == "POST" and not body_route:
                return self.create_child(key, relation, target)
            shown = negotiate(request)
            query = self.list_query(target.vocabulary, body_route)
            fast = self.fast and target.fast_for(query)
            with ExitStack() as stack:
                reader = stack.enter_context(self.reading(fast, snapshot=not shown.streamed))
                parent = self.parent(reader, key)
                scope = self.relation_scope(reader.ctx, relation, target, parent)
                return self.list_response(reader, query, scope, target,
                                          f"/{self.name}/{key}/{name}", shown, stack)

        view.__name__ = f"{self.name}_{name}{'_query' if body_route else ''}"
        return view

    def child_validator(self, relation: RelationInfo,
                        ) -> tuple[dict[str, FieldInfo], BodyValidator]:
        """Validation of a row created under a parent: the URL fills the foreign key."""
        filled = {remote.name for _, remote in relation.pairs}
        writable = {name: info for name, info in self.resource.writable_fields.items()
                    if info.column.name not in filled}
        overrides = self.resource.schema_overrides
        override = overrides.get("create", overrides.get("*"))
        return writable, build_validator(self.name, writable, "create", override)

    def create_child(self, key: str, relation: RelationInfo, target: Endpoints) -> Response:
        wants_json(request)
        body = read_json(request, self.state.settings.max_body_bytes)
        writable, validator = self.child_validators[relation.name]
        if not isinstance(body, dict):
            raise BadRequest(f"The body must be a JSON object, got {type(body).__name__}.")
        check_keys(body, writable, target.info.fields, target.resource.hidden_fields)
        values = validator(body, "")
        with write_transaction(self.engine) as connection:
            ctx = self.context(connection)
            parent = self.parent(self.writer(ctx), key)
            for local, remote in relation.pairs:
                child_field = target.info.field_for_column(remote)
                parent_field = self.info.field_for_column(local)
                assert child_field is not None and parent_field is not None
                values[child_field.name] = parent[parent_field.name]
            item = self.insert(ctx, values, target)
        return json_response(dumps(item), 201, {"Location": target.location(item)})

    def _link_view(self, name: str) -> View:
        def view(key: str, other: str) -> Response:
            relation, target = self.relations[name]
            wants_json(request)
            other_key = target.parse_key(other)
            with write_transaction(self.engine) as connection:
                ctx = self.context(connection)
                parent = self.parent(self.writer(ctx), key)
                self.resource.policy_.can_update(ctx, parent, {})
                other_row = target.select_item(ctx, other_key)
                self.resource.before_link(parent, name, other_row, ctx)
                self.write_link(ctx, relation, target, parent, other_key,
                                link=request.method == "PUT")
            return Response(status=204)

        view.__name__ = f"{self.name}_{name}_link"
        return view

    def write_link(self, ctx: RequestContext, relation: RelationInfo, target: Endpoints,
                   parent: Mapping[str, Any], other_key: Sequence[Any], link: bool) -> None:
        secondary = relation.secondary
        assert secondary is not None
        parent_values = {info.column.name: parent[name] for name, info in self.info.fields.items()}
        other_values = dict(zip((c.name for c in target.key_columns), other_key, strict=True))
        row: dict[str, Any] = {link_col.name: parent_values[local.name]
                               for local, link_col in relation.pairs}
        row.update({link_col.name: other_values[col.name]
                    for col, link_col in relation.secondary_pairs if col.name in other_values})
        match = sa.and_(*(secondary.c[name] == value for name, value in row.items()))
        connection = ctx.connection
        if not link:
            connection.execute(sa.delete(secondary).where(match))
            return
        if connection.execute(sa.select(sa.literal(1)).select_from(secondary).where(match)
                              ).first() is not None:
            return
        for column in secondary.columns:
            if column.name in ("created_at", "updated_at") and column.name not in row:
                row[column.name] = utcnow_for(column)
        try:
            connection.execute(sa.insert(secondary).values(row))
        except DBAPIError as exc:
            raise self.translate_errors(exc, None) from exc


def _next_url(req: Request, name: str, value: str) -> str:
    """The request's URL with ``name=value`` in place of its page (offset or cursor)."""
    params = [(key, item) for key, item in req.args.items(multi=True)
              if key not in ("offset", "cursor")]
    params.append((name, value))
    return f"{quote(req.path, safe='/,')}?{urlencode(params)}"


def index_view(names: Callable[[], list[str]]) -> View:
    def index() -> Response:
        wants_json(request)
        resources = [{"name": name, "url": "/" + quote(name, safe="")} for name in names()]
        return json_response(dumps({"resources": resources}))

    return index

"""The HTTP endpoints of one resource: one transaction a request, ETags, row policy.

Reads select only the columns a response needs and serialize rows straight to JSON; no ORM
objects are built. Writes run in one transaction that commits only when the whole request
succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from flask import Flask, Request, Response, request
from sqlalchemy import ColumnElement, Connection, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import Column

from .coerce import coerce
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
from .query.compile import Scope as SqlScope
from .query.compile import collect, count_statement, list_statement
from .query.model import Query, Vocabulary
from .query.parse import parse_url
from .reading import Built, FastReader, Reader, SqlReader, fast_reader, sql_reader
from .resource import Policy, RequestContext, Resource
from .schema import FieldInfo, RelationInfo
from .serialization import dumps
from .tablesql import TableSql
from .timestamps import utcnow, utcnow_for
from .validation import METHODS, BodyValidator, build_validator, check_keys

if TYPE_CHECKING:
    from .extension import State

View = Callable[..., Response]
#: A custom list's condition: ``scope(ctx, **url_values)`` -> a WHERE clause on the table.
Scope = Callable[..., ColumnElement[bool]]


class Endpoints:
    """Every route of one resource on one app."""

    def __init__(self, resource: Resource, state: State) -> None:
        self.resource = resource
        self.state = state
        self.info = resource.info
        self.table = resource.info.table
        self.name = resource.name_
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
        self._sort_default = resource.default_sort_keys
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
        self._add(app, base, "list", self.collection, methods)
        if self.key_fields:  # a table or view without a key has no item routes
            self._add(app, base + "/<key>", "item", self.item, item_methods)

    def link(self, app: Flask, registry: Mapping[Any, Endpoints]) -> None:
        """Expose the relations whose target is a resource on this app too."""
        wanted = self.resource.options["relations"]
        for name, relation in self.info.relations.items():
            if name in self.relations or (wanted is not None and name not in wanted):
                continue
            target = registry.get(relation.target)
            if target is None:
                continue
            self.relations[name] = (relation, target)
            base = f"/{self.name}/<key>/{name}"
            writes = self.resource.allows_writes and target.resource.allows_writes
            if relation.kind == "to_many":
                self.child_validators[name] = target.child_validator(relation)
                self._add(app, base, f"rel_{name}", self._relation_view(name),
                          ["GET", "POST"] if writes else ["GET"])
            elif relation.kind == "many_to_many":
                self._add(app, base, f"rel_{name}", self._relation_view(name), ["GET"])
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
            return tuple(coerce(info, part) for info, part in zip(self.key_fields, parts,
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
            return FastReader(self.state.statements, ctx.connection.connection.cursor())
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
        problem = translate(exc, self.info, self.state.engine, values)
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
            return fast_reader(self.state.statements, snapshot)
        return sql_reader(self.state.engine, request.method, principal)

    def collection(self) -> Response:
        if request.method == "POST":
            return self.create()
        wants_json(request)
        query = parse_url(request.args.to_dict(flat=False), self.vocabulary)
        with self.reading(self.fast, snapshot=query.count) as reader:
            scope = SqlScope(self.table, self.table, self.read_scope(reader.ctx),
                             key=("all",) if self.fast else None)
            return self.list_response(reader, query, scope, self)

    def list_response(self, reader: Reader, query: Query, scope: SqlScope,
                      target: Endpoints) -> Response:
        if query.cursor is not None:
            raise BadRequest("Cursor paging is not available yet; use offset.",
                             [FieldError("cursor", "Not supported yet.")])
        names = list(query.fields) if query.fields else target.visible_names
        columns = [target.info.fields[name].column for name in names]
        if not query.sort and target._sort_default:
            query = _with_default_sort(query, target)
        values: dict[str, Any] = {}
        shape = collect(query.where, values)
        params = {**scope.params, **values, "_limit": query.limit}
        if query.offset:
            params["_offset"] = query.offset
        sort = tuple((key.field.name, key.descending) for key in query.sort)
        base = (target.name, scope.key, shape)

        def page_statement() -> Select[Any]:
            return list_statement(query, scope, columns, target.key_columns)

        def page() -> Built:
            return page_statement(), [column.type for column in columns]

        rows = reader.rows((*base, sort, tuple(names), bool(query.offset)), page, params,
                           target.resource.base_query)
        items = [dict(zip(names, row, strict=True)) for row in rows]
        count = None
        if query.count:
            if type(target.resource).base_query is Resource.base_query:
                def counting() -> Built:
                    return count_statement(query, scope), []

                count = reader.rows((*base, "count"), counting, params)[0][0]
            else:
                def hooked_count() -> Built:
                    inner = target.resource.base_query(page_statement(), reader.need_ctx())
                    inner = inner.limit(None).offset(None).order_by(None)
                    return sa.select(sa.func.count()).select_from(inner.subquery()), []

                count = reader.rows(None, hooked_count, params)[0][0]
        offset = query.offset or 0
        more = len(items) == query.limit and (count is None or offset + query.limit < count)
        envelope = {
            "items": items, "count": count, "limit": query.limit, "offset": query.offset,
            "cursor": None, "next": _next_url(request, offset + query.limit) if more else None,
        }
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
        with write_transaction(self.state.engine) as connection:
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
        if "If-None-Match" in request.headers and request.if_none_match.contains(
                etag.strip('"')):
            return Response(status=304, headers={"ETag": etag})
        return json_response(body, headers={"ETag": etag})

    def update(self, raw_key: str, values: dict[str, Any]) -> Response:
        key = self.parse_key(raw_key)
        with write_transaction(self.state.engine) as connection:
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
        with write_transaction(self.state.engine) as connection:
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
        from .query.parse import parse_sort

        sort = parse_sort(self.vocabulary, list(default_sort), "sort") if default_sort else ()

        def view(**values: Any) -> Response:
            wants_json(request)
            query = parse_url(request.args.to_dict(flat=False), self.vocabulary)
            if not query.sort and sort:
                query = replace(query, sort=sort)
            with self.reading(fast=False) as reader:
                ctx = reader.need_ctx()
                where = [*self.read_scope(ctx), scope(ctx, **values)]
                return self.list_response(reader, query, SqlScope(self.table, self.table, where),
                                          self)

        view.__name__ = f"{self.name}_scoped_{len(self.state.routes)}"
        self._add(app, rule, f"scoped_{len(self.state.routes)}", view, ["GET"])

    # -- relationship routes -------------------------------------------------------------

    def relation_scope(self, ctx: RequestContext | None, relation: RelationInfo,
                       target: Endpoints, parent: Mapping[str, Any]) -> SqlScope:
        """The target's rows related to ``parent``; parent values are bound as ``s0, s1``."""
        table = target.table
        where = target.read_scope(ctx)
        parent_values = {info.column.name: parent[name] for name, info in self.info.fields.items()
                         if name in parent}
        params: dict[str, Any] = {}

        def bound(column: Column[Any], local: Column[Any]) -> ColumnElement[bool]:
            name = f"s{len(params)}"
            params[name] = parent_values[local.name]
            return column == sa.bindparam(name, type_=column.type)

        key = ("rel", self.name, relation.name) if not where else None
        if relation.kind == "many_to_many":
            secondary = relation.secondary
            assert secondary is not None
            source = table.join(secondary, sa.and_(*(
                table.c[col.name] == secondary.c[link.name]
                for col, link in relation.secondary_pairs)))
            where += [bound(secondary.c[link.name], local) for local, link in relation.pairs]
            order: list[ColumnElement[Any]] = [
                secondary.c[column.name].desc() for column in relation.secondary_order]
            return SqlScope(table, source, where, order, key, params)
        where += [bound(table.c[remote.name], local) for local, remote in relation.pairs]
        return SqlScope(table, table, where, [], key, params)

    def parent(self, reader: Reader, raw_key: str) -> dict[str, Any]:
        """The parent row with every column, for joining; 404 when it is not visible."""
        key = self.parse_key(raw_key)
        row = self.sql.whole_row(reader, key, self.read_scope(reader.ctx),
                                 self.resource.base_query, cacheable=self.fast)
        if row is None:
            raise NotFound(f"No {self.name} item has the key {raw_key!r}.")
        return row

    def _relation_view(self, name: str) -> View:
        def view(key: str) -> Response:
            relation, target = self.relations[name]
            if request.method == "POST":
                return self.create_child(key, relation, target)
            wants_json(request)
            query = parse_url(request.args.to_dict(flat=False), target.vocabulary)
            with self.reading(self.fast and target.fast, snapshot=True) as reader:
                parent = self.parent(reader, key)
                scope = self.relation_scope(reader.ctx, relation, target, parent)
                return self.list_response(reader, query, scope, target)

        view.__name__ = f"{self.name}_{name}"
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
        with write_transaction(self.state.engine) as connection:
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
            with write_transaction(self.state.engine) as connection:
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


def _with_default_sort(query: Query, target: Endpoints) -> Query:
    from .query.parse import parse_sort

    return replace(query, sort=parse_sort(target.vocabulary, target._sort_default, "sort"))


def _next_url(req: Request, offset: int) -> str:
    params = [(name, value) for name, value in req.args.items(multi=True)
              if name not in ("offset", "cursor")]
    params.append(("offset", str(offset)))
    return f"{req.path}?{urlencode(params)}"


def index_view(names: Callable[[], list[str]]) -> View:
    def index() -> Response:
        wants_json(request)
        resources = [{"name": name, "url": f"/{name}"} for name in names()]
        return json_response(dumps({"resources": resources}))

    return index

"""``Served``: one resource as one app serves it, on one engine.

What every route of the resource shares, worked out once at start-up: its engine, limits,
visible and key columns, validators, statements, cursors, and the relations whose target is
served too. It knows nothing of HTTP requests: views hand it a ``RequestContext`` and a
reader; the listing code and the OpenAPI document read it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Engine, FromClause, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import Column

from .coerce import coerce_key
from .cursors import Cursors
from .database import DriverWrite
from .errors import BadRequest, FieldError, NotFound, ValidationFailed
from .integrity import delete_conflict, translate
from .orm import hash_password
from .query.compile import Scope as SqlScope
from .query.compile import SortColumn, include_links
from .query.model import Vocabulary
from .reading import Built, FastReader, Reader, SqlReader
from .resource import Policy, RequestContext, Resource
from .schema import FieldInfo, RelationInfo
from .settings import Settings
from .statements import cache_for
from .tablesql import TableSql
from .timestamps import utcnow, utcnow_for
from .validation import METHODS, BodyValidator, build_validator, check_keys

#: The parent's values of a relation list, bound as ``s0, s1, ...``.
RelationSource = tuple[FromClause, list[ColumnElement[bool]], list[SortColumn], list[str]]


def relation_order(relation: RelationInfo) -> list[SortColumn]:
    """A many-to-many list's own order: the newest link first (its ``created_at``)."""
    secondary = relation.secondary
    if relation.kind != "many_to_many" or secondary is None:
        return []
    return [SortColumn(f"{secondary.name}.{column.name}", secondary.c[column.name], True,
                       bool(secondary.c[column.name].nullable))
            for column in relation.secondary_order]


class WriteContext(RequestContext):
    """The ``RequestContext`` of a write on the driver (``database.DriverWrite``): its
    ``connection`` is made when a hook or policy first asks for it, in the same transaction;
    ``first`` and the prepared statements run on the driver cursor without it."""

    def __init__(self, write: DriverWrite, method: str, principal: Any | None = None) -> None:
        self.write = write
        self.method = method
        self.principal = principal
        self.extras = {}

    @property
    def connection(self) -> Connection:
        return self.write.connection()

    @connection.setter
    def connection(self, _value: Connection) -> None:
        raise AttributeError("the connection of a write is its transaction's")

    def __repr__(self) -> str:  # without making the connection
        return f"WriteContext(method={self.method!r}, principal={self.principal!r})"

    def first(self, statement: Select[Any], **params: Any) -> tuple[Any, ...] | None:
        return cache_for(self.write.engine).first(self.write.cursor, statement, params)


@dataclass(frozen=True)
class Under:
    """A create under a parent whose check is part of the INSERT (``Served.folded_parent``):
    the row is inserted only if the parent row with ``key`` exists."""

    parent: Served
    raw_key: str
    key: Any
    #: The create is the transaction's only statement (one row, no ``after_create``).
    alone: bool

    def check(self, ctx: RequestContext) -> None:
        """The 404 of a missing parent, as ``Served.parent`` gives it. Called when the
        policy refused: a transaction its error left unusable keeps that error."""
        try:
            self.parent.parent(self.parent.writer(ctx), self.raw_key)
        except DBAPIError:
            return


class Served:
    """One resource served on one engine: what its routes share."""

    def __init__(self, resource: Resource, engine: Engine, settings: Settings) -> None:
        self.resource = resource
        self.engine = engine
        self.settings = settings
        self.info = resource.info
        self.table = resource.info.table
        self.name = resource.name_
        self._item_prefix = f"/{quote(self.name, safe='')}/"  # a path segment, like the index's
        self.statements = cache_for(engine)
        options = resource.options
        self.max_limit = int(options["max_limit"] or settings.max_limit)
        self.default_limit = min(int(options["default_limit"] or settings.default_limit),
                                 self.max_limit)
        self.visible_names = list(resource.visible)
        self.visible_columns: list[Column[Any]] = [
            info.column for info in resource.visible.values()]
        self.key_fields = [self.info.fields[name] for name in self.info.primary_key]
        self.key_columns = [info.column for info in self.key_fields]
        #: The range of a single integer key, for the quick reading of canonical keys.
        self._int_key: tuple[int, int] | None = None
        if len(self.key_fields) == 1 and self.key_fields[0].python_type is int:
            self._int_key = self.key_fields[0].int_range or (-(2 ** 63), 2 ** 63 - 1)
        self.relations: dict[str, tuple[RelationInfo, Served]] = {}
        self._relation_sources: dict[str, RelationSource] = {}
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

    def relate(self, name: str, relation: RelationInfo, target: Served) -> None:
        """Serve ``relation`` (to ``target``) as ``name``."""
        self.relations[name] = (relation, target)
        if relation.kind == "to_many":
            self.child_validators[name] = target.child_validator(relation)

    def update_vocabulary(self) -> None:
        """The query vocabulary, once the relations are known (filters one level through)."""
        self.vocabulary = Vocabulary(
            self.resource.visible,
            {name: (relation, target.resource.visible)
             for name, (relation, target) in self.relations.items()},
            self.default_limit, self.max_limit, self._related_vocabulary,
        )

    def _related_vocabulary(self, name: str) -> Vocabulary:
        return self.relations[name][1].vocabulary

    # -- keys and rows -------------------------------------------------------------------

    def not_found(self, raw: str) -> NotFound:
        return NotFound(f"No {self.name} item has the key {raw!r}.")

    def parse_key(self, raw: str) -> tuple[Any, ...]:
        int_key = self._int_key
        if int_key is not None and raw.isascii() and raw.isdigit() and len(raw) < 20 \
                and (raw[0] != "0" or raw == "0"):
            # The canonical form of a non-negative integer, as coerce_key reads it.
            number = int(raw)
            if int_key[0] <= number <= int_key[1]:
                return (number,)
            raise self.not_found(raw)
        parts = raw.split(",") if len(self.key_fields) > 1 else [raw]
        if len(parts) != len(self.key_fields):
            raise NotFound(f"No {self.name} item has the key {raw!r}: expected "
                           f"{len(self.key_fields)} comma-separated key values.")
        try:
            return tuple(coerce_key(info, part) for info, part in zip(self.key_fields, parts,
                                                                  strict=True))
        except ValueError:
            raise self.not_found(raw) from None

    def location(self, item: Mapping[str, Any]) -> str:
        key = ",".join(str(value) if type(value) is int else quote(str(value), safe="")
                       for value in (item[info.name] for info in self.key_fields))
        return f"{self._item_prefix}{key}"

    def read_scope(self, ctx: RequestContext | None) -> list[ColumnElement[bool]]:
        if ctx is None:  # the fast path runs only when the policy has no visible()
            return []
        condition = self.resource.policy_.visible(ctx, self.table)
        return [] if condition is None else [condition]

    def writer(self, ctx: RequestContext) -> Reader:
        """Statements inside a write transaction: prepared ones on its driver cursor."""
        if self.fast:
            if isinstance(ctx, WriteContext):
                return FastReader(self.statements, ctx.write.cursor)
            return FastReader(self.statements, ctx.connection.connection.cursor())
        return SqlReader(ctx)

    def select_item(self, ctx: RequestContext, key: Sequence[Any], lock: bool = False,
                    ) -> dict[str, Any]:
        lock = lock and ctx.connection.dialect.name == "postgresql"
        item = self.sql.item(self.writer(ctx), key, self.read_scope(ctx),
                             self.resource.base_query, lock=lock, cacheable=self.fast)
        if item is None:
            raise self.not_found(",".join(str(part) for part in key))
        return item

    def parent(self, reader: Reader, raw_key: str) -> dict[str, Any]:
        """The parent row with every column, for joining; 404 when it is not visible."""
        key = self.parse_key(raw_key)
        row = self.sql.whole_row(reader, key, self.read_scope(reader.ctx),
                                 self.resource.base_query, cacheable=self.fast)
        if row is None:
            raise self.not_found(raw_key)
        return row

    # -- bodies and writes ---------------------------------------------------------------

    def validate_body(self, body: Any, method: str, writable: Mapping[str, FieldInfo],
                      where: str = "", validator: BodyValidator | None = None,
                      ) -> dict[str, Any]:
        """``body`` checked against ``writable`` and the method's validator: the values."""
        if not isinstance(body, dict):
            shown = f" at {where.rstrip('.')}" if where else ""
            raise BadRequest(f"The body{shown} must be a JSON object, "
                             f"got {type(body).__name__}.")
        check_keys(body, writable, self.info.fields, self.resource.hidden_fields, where)
        values = (validator or self.validators[method])(body, where)
        for info in self.key_fields:
            value = values.get(info.name)
            if isinstance(value, str) and ("/" in value or (len(self.key_fields) > 1
                                                            and "," in value)):
                raise ValidationFailed(
                    f"The key {info.name!r} cannot contain '/' (or ',' in a composite key): "
                    "it must fit in one URL segment.",
                    [FieldError(f"{where}{info.name}", "This key cannot contain '/' or ','.")],
                )
        # Hash passwords now, before a transaction holds the write lock (Argon2 is slow).
        for name, value in values.items():
            if isinstance(value, str) and self.info.fields[name].is_password:
                values[name] = hash_password(value)
        return values

    def translate_errors(self, exc: DBAPIError, values: Mapping[str, Any] | None) -> Exception:
        problem = translate(exc, self.info, self.engine, values)
        return problem if problem is not None else exc

    def delete_errors(self, exc: DBAPIError, current: Mapping[str, Any]) -> Exception:
        problem = delete_conflict(exc, self.info, self.engine, current)
        return problem if problem is not None else exc

    def insert(self, ctx: RequestContext, values: dict[str, Any], under: Under | None = None,
               ) -> dict[str, Any]:
        """Insert one row under the policy and hooks; the created item. With ``under``, only
        if that parent row exists, else its 404 (as when it is read first)."""
        resource = self.resource
        if under is None:
            resource.policy_.can_create(ctx, values)
        else:
            try:
                resource.policy_.can_create(ctx, values)
            except Exception:
                under.check(ctx)  # a missing parent is a 404 before any refusal
                raise
        resource.before_create(values, ctx)
        now = utcnow()
        for info in self.info.fields.values():
            if info.is_timestamp and info.name not in values:
                values[info.name] = now if getattr(info.column.type, "timezone", False) \
                    else now.replace(tzinfo=None)
        try:
            if under is None:
                item = self.sql.insert(self.writer(ctx), values)
            else:
                found = self._insert_under(ctx, values, under)
                if found is None:
                    raise under.parent.not_found(under.raw_key)
                item = found
        except DBAPIError as exc:
            raise self.translate_errors(exc, values) from exc
        resource.after_create(item, ctx)
        return item

    def folded_parent(self, relation: RelationInfo, target: Served) -> str | None:
        """The field of ``target`` that a create under ``relation`` fills with this parent's
        key, when the parent's check can be part of the INSERT: a plain parent (no row
        policy or query hook) with one integer key that the relation joins on (so the key
        from the URL is the value the row would give), and no ``before_create`` on the
        target, which must not see a create whose parent is missing."""
        if not self.fast or self._int_key is None or relation.kind != "to_many" \
                or len(relation.pairs) != 1 or relation.pairs[0][0] is not self.key_columns[0] \
                or type(target.resource).before_create is not Resource.before_create:
            return None
        field = target.info.field_for_column(relation.pairs[0][1])
        return None if field is None else field.name

    def _insert_under(self, ctx: RequestContext, values: dict[str, Any], under: Under,
                      ) -> dict[str, Any] | None:
        """``INSERT ... SELECT ... WHERE EXISTS (the parent)``: one statement where a read
        of the parent and an insert were two; alone, on PostgreSQL, in autocommit."""
        sql = self.sql
        row = sql._with_defaults(values, update=False)
        names = tuple(sorted(row))
        params = {f"c{index}": row[name] for index, name in enumerate(names)}
        params["p0"] = under.key
        parent_column = under.parent.key_columns[0]
        postgresql = self.engine.dialect.name == "postgresql"

        def build() -> Built:
            table = self.table
            # PostgreSQL types a SELECT's parameters from the SELECT, not the target columns:
            # cast each to its column's type (SQLite's columns take any value, as VALUES).
            chosen = [sa.cast(sa.bindparam(f"c{index}", type_=table.c[name].type),
                              table.c[name].type) if postgresql
                      else sa.bindparam(f"c{index}", type_=table.c[name].type)
                      for index, name in enumerate(names)]
            exists = sa.exists().where(
                parent_column == sa.bindparam("p0", type_=parent_column.type))
            statement = sa.insert(table).from_select(
                list(names), sa.select(*chosen).where(exists),
            ).returning(*self.visible_columns)
            return statement, [column.type for column in self.visible_columns]

        def run() -> list[tuple[Any, ...]]:
            return self.writer(ctx).rows((self.name, "insert_under", names,
                                          under.parent.name), build, params)

        rows = ctx.write.alone(run) if isinstance(ctx, WriteContext) and under.alone else run()
        return dict(zip(self.visible_names, rows[0], strict=True)) if rows else None

    def update(self, ctx: RequestContext, key: Sequence[Any], current: dict[str, Any],
               values: dict[str, Any]) -> dict[str, Any] | None:
        """Change the row ``current`` (whose key is ``key``) under the policy and hooks; the
        item as it is now, or None when the row is gone."""
        resource = self.resource
        resource.policy_.can_update(ctx, current, values)
        resource.before_update(current, values, ctx)
        item: dict[str, Any] | None = current
        if values:
            for info in self.info.fields.values():
                if info.is_timestamp and info.name == "updated_at":
                    values.setdefault(info.name, utcnow_for(info))
            try:
                item = self.sql.update(self.writer(ctx), key, values)
            except DBAPIError as exc:
                raise self.translate_errors(exc, values) from exc
        if item is not None:
            resource.after_update(item, ctx)
        return item

    # -- relations -----------------------------------------------------------------------

    def relation_scope(self, ctx: RequestContext | None, relation: RelationInfo,
                       target: Served, parent: Mapping[str, Any]) -> SqlScope:
        """The target's rows related to ``parent``; parent values are bound as ``s0, s1``."""
        found = self._relation_sources.get(relation.name)
        if found is None:
            found = self._relation_sources[relation.name] = self._relation_source(relation)
        source, conditions, order, parent_fields = found
        where = target.read_scope(ctx)
        key = ("rel", self.name, relation.name) if not where else None
        params = {f"s{index}": parent[name] for index, name in enumerate(parent_fields)}
        return SqlScope(target.table, source, [*where, *conditions], order, key, params)

    def _relation_source(self, relation: RelationInfo) -> RelationSource:
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

    def child_validator(self, relation: RelationInfo,
                        ) -> tuple[dict[str, FieldInfo], BodyValidator]:
        """Validation of a row created under a parent: the URL fills the foreign key."""
        filled = {remote.name for _, remote in relation.pairs}
        writable = {name: info for name, info in self.resource.writable_fields.items()
                    if info.column.name not in filled}
        overrides = self.resource.schema_overrides
        override = overrides.get("create", overrides.get("*"))
        return writable, build_validator(self.name, writable, "create", override)

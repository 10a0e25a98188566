"""``Query`` -> parameterised SQL. The only place a query description becomes a statement.

Filter values become bound parameters named ``v0, v1, ...`` in the order ``collect`` visits
them, so a statement depends only on the query's *shape* and can be compiled once per shape
(``statements.py``); ``collect`` gives that shape and the values for each request. Keyset
pages bind the cursor's values as ``_c0, _c1, ...`` and includes bind the parent keys as
``_i0, _i1, ...``, padded to a few sizes: those are parameters too, never part of the SQL.

An ``Exists`` condition (an ``!inner`` embed, an anti-join, a condition across a relation
in a logic tree) reads the related rows the caller may see: its ``Rows`` gives them, under
the target's row policy and ``base_query`` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import ColumnElement, FromClause, Select, Table
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.schema import Column
from sqlalchemy.types import NullType

from ..schema import RelationInfo
from .model import And, Condition, Exists, Node, Or, Query


class Rows(Protocol):
    """The rows of one resource that a request may see, for ``Exists`` conditions."""

    def related(self, name: str) -> tuple[RelationInfo, Rows]:
        """The relation called ``name`` and the rows of its target."""
        ...

    def source(self) -> FromClause:
        """A fresh FROM of the visible rows: an alias of the table, or a subquery under
        the row policy and ``base_query`` hook."""
        ...


@dataclass
class Scope:
    """Where list rows come from: the table, or a join through a link table, and conditions.

    ``key`` names the scope's shape when its conditions use only the bound ``params``; None
    means the conditions carry their own values and the statement is built every time.
    """

    table: Table
    source: FromClause
    where: list[ColumnElement[bool]] = field(default_factory=list)
    default_order: list[SortColumn] = field(default_factory=list)
    key: Hashable | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: What ``Exists`` conditions on the scope's table read (None: none may appear).
    rows: Rows | None = None


class Binder:
    """Hands out the bound parameters ``v0, v1, ...`` in visiting order."""

    def __init__(self) -> None:
        self.count = 0

    def bind(self, column: ColumnElement[Any]) -> BindParameter[Any]:
        name = f"v{self.count}"
        self.count += 1
        return sa.bindparam(name, type_=column.type)


def _bound_values(node: Condition) -> list[Any] | None:
    """The values a condition binds, or None when its value is part of its shape."""
    if node.op.kind in ("bool", "is") or node.value is None:
        return None
    if node.op.kind == "list":
        return list(node.value)
    return [node.value]


def collect(node: Node | None, values: dict[str, Any]) -> Hashable:
    """The shape of ``node``, adding its bound values to ``values`` as ``v0, v1, ...``."""
    if node is None:
        return None
    if isinstance(node, Condition):
        bound = _bound_values(node)
        for value in bound or ():
            values[f"v{len(values)}"] = value
        relation = node.relation.name if node.relation is not None else None
        detail = len(bound) if bound is not None else node.value
        return ("c", node.field.name, relation, node.op.name, detail)
    if isinstance(node, And | Or):
        return (type(node).__name__, tuple(collect(item, values) for item in node.items))
    if isinstance(node, Exists):
        return ("exists", node.relation, node.negated, collect(node.where, values))
    return ("not", collect(node.item, values))


def join_condition(
    relation: RelationInfo, outer: FromClause, inner: FromClause,
    secondary: FromClause | None = None,
) -> ColumnElement[bool]:
    """Join ``outer`` (the relation's own table) to ``inner`` (an alias of its target)."""
    if relation.kind == "many_to_many":
        assert secondary is not None and relation.secondary is not None
        clauses = [secondary.c[link.name] == outer.c[local.name]
                   for local, link in relation.pairs]
        clauses += [inner.c[target.name] == secondary.c[link.name]
                    for target, link in relation.secondary_pairs]
        return sa.and_(*clauses)
    return sa.and_(*(inner.c[remote.name] == outer.c[local.name]
                     for local, remote in relation.pairs))


def _clause(node: Condition, column: ColumnElement[Any], binder: Binder) -> ColumnElement[bool]:
    bound = _bound_values(node)
    if bound is None:
        return node.op.build(column, node.value)
    params = [binder.bind(column) for _ in bound]
    return node.op.build(column, params if node.op.kind == "list" else params[0])


def _condition(node: Condition, table: FromClause, binder: Binder,
               rows: Rows | None) -> ColumnElement[bool]:
    if node.relation is None:
        return _clause(node, table.c[node.field.column.name], binder)
    # ``author__name=x``: some author the caller may see is named x (never a hidden one).
    across = Exists(node.relation.name, replace(node, relation=None))
    return _exists(across, table, binder, rows)


def _exists(node: Exists, table: FromClause, binder: Binder,
            rows: Rows | None) -> ColumnElement[bool]:
    if rows is None:
        raise ValueError(f"A condition across the relation {node.relation!r} needs the "
                         "rows it may read (Scope.rows).")
    relation, target_rows = rows.related(node.relation)
    target = target_rows.source()
    secondary = relation.secondary.alias() if relation.secondary is not None else None
    inner = sa.select(sa.literal(1)).select_from(target)
    if secondary is not None:
        inner = inner.select_from(secondary)
    inner = inner.where(join_condition(relation, table, target, secondary))
    if node.where is not None:
        inner = inner.where(compile_where(node.where, target, binder, target_rows))
    found = sa.exists(inner)
    return sa.not_(found) if node.negated else found


def compile_where(node: Node, table: FromClause, binder: Binder,
                  rows: Rows | None = None) -> ColumnElement[bool]:
    """``node`` as a WHERE clause whose values are bound parameters (see ``collect``);
    ``rows``: the visible rows of ``table``'s resource, for ``Exists`` conditions."""
    if isinstance(node, Condition):
        return _condition(node, table, binder, rows)
    if isinstance(node, And):
        return sa.and_(*(compile_where(item, table, binder, rows) for item in node.items))
    if isinstance(node, Or):
        return sa.or_(*(compile_where(item, table, binder, rows) for item in node.items))
    if isinstance(node, Exists):
        return _exists(node, table, binder, rows)
    return sa.not_(compile_where(node.item, table, binder, rows))


#: The type of a cursor's values: none, so they are read and bound as the driver gives them,
#: not through the column's type. On SQLite a datetime column holds text, and a row written by
#: another program may hold it in another format; the keyset condition must compare the stored
#: text exactly as ORDER BY does, which a value re-formatted by the column's type would not.
RAW = NullType()


def raw(column: ColumnElement[Any], index: int) -> ColumnElement[Any]:
    """``column`` as stored, for a cursor: selected as ``_k<index>``."""
    return sa.type_coerce(column, RAW).label(f"_k{index}")


@dataclass(frozen=True)
class SortColumn:
    """One column of a list's order. ``name`` is what a cursor records: the field's name, or
    ``table.column`` for a column of a joined table (a link table's ``created_at``)."""

    name: str
    column: Column[Any]
    descending: bool = False
    nullable: bool = False
    #: NULLs first; False (the default): last in both directions, on every database, as
    #: keyset paging assumes (see keyset_where). Only offset pages sort NULLs first.
    nulls_first: bool = False

    def clause(self) -> ColumnElement[Any]:
        ordered = self.column.desc() if self.descending else self.column.asc()
        if not self.nullable:
            return ordered
        return ordered.nulls_first() if self.nulls_first else ordered.nulls_last()


def sort_columns(query: Query, scope: Scope, primary_key: Sequence[Column[Any]],
                 ) -> tuple[SortColumn, ...]:
    """The requested sort, else the scope's default one, always ended by the primary key:
    a total order, which keyset paging needs."""
    table = scope.table
    found: list[SortColumn] = []
    seen: set[Column[Any]] = set()
    for key in query.sort:
        column = table.c[key.field.column.name]
        found.append(SortColumn(key.field.name, column, key.descending, key.field.nullable,
                                key.nulls == "first"))
        seen.add(column)
    if not query.sort:
        found.extend(scope.default_order)
    for key_column in primary_key:
        column = table.c[key_column.name]
        if column not in seen:
            found.append(SortColumn(str(key_column.name), column))
    return tuple(found)


def keyset_where(sort: Sequence[SortColumn], nulls: Sequence[bool]) -> ColumnElement[bool]:
    """Rows strictly after the cursor's row in ``sort``; its values are bound as ``_c0, _c1,
    ...`` except where ``nulls`` says the value is NULL (the shape then says IS NULL).

    NULLs sort last: nothing comes after a NULL but the rows tied with it, and every NULL
    comes after a value. A leading non-nullable column also gets a plain range condition,
    so that an index on it narrows the scan.
    """
    after: list[ColumnElement[bool]] = []
    tied: list[ColumnElement[bool]] = []
    params: list[ColumnElement[Any] | None] = []
    for index, (key, is_null) in enumerate(zip(sort, nulls, strict=True)):
        column = key.column
        if is_null:
            params.append(None)
            tied.append(column.is_(None))
            continue
        # The stored value, bound as it was read (see RAW): compared exactly as ORDER BY does.
        param = sa.type_coerce(sa.bindparam(f"_c{index}"), RAW)
        params.append(param)
        beyond: ColumnElement[bool] = column < param if key.descending else column > param
        if key.nullable:
            beyond = sa.or_(beyond, column.is_(None))
        after.append(sa.and_(*tied, beyond) if tied else beyond)
        tied.append(column == param)
    predicate: ColumnElement[bool] = sa.or_(*after) if after else sa.false()
    lead, lead_param = sort[0], params[0]
    if lead_param is not None and not lead.nullable and len(after) > 1:
        bound = lead.column <= lead_param if lead.descending else lead.column >= lead_param
        predicate = sa.and_(bound, predicate)
    return predicate


def list_statement(
    query: Query, scope: Scope, columns: Sequence[ColumnElement[Any]],
    sort: Sequence[SortColumn], keyset: Sequence[bool] | None = None, limited: bool = True,
) -> Select[Any]:
    """The rows ``query`` asks for, in ``sort`` order, ``columns`` selected.

    Bound parameters: ``v0, v1, ...`` (filters, see ``collect``), ``_c0, _c1, ...`` (the
    cursor's values, when ``keyset`` gives which of them are NULL), ``_limit`` (when
    ``limited``) and ``_offset`` (when the query has a non-zero offset).
    """
    statement = matching(query, scope, *columns)
    if keyset is not None:
        statement = statement.where(keyset_where(sort, keyset))
    statement = statement.order_by(*(key.clause() for key in sort))
    if limited:
        statement = statement.limit(sa.bindparam("_limit", type_=sa.Integer()))
    if query.offset:
        statement = statement.offset(sa.bindparam("_offset", type_=sa.BigInteger()))
    return statement


def matching(query: Query, scope: Scope, *columns: ColumnElement[Any]) -> Select[Any]:
    """``columns`` of the rows of ``scope`` that ``query``'s filter matches, in no order."""
    statement = sa.select(*columns).select_from(scope.source)
    if scope.where:
        statement = statement.where(*scope.where)
    if query.where is not None:
        statement = statement.where(compile_where(query.where, scope.table, Binder(),
                                                  scope.rows))
    return statement


def count_statement(query: Query, scope: Scope) -> Select[Any]:
    """How many rows match ``query``, whatever the page."""
    return matching(query, scope, sa.func.count())


# -- includes ------------------------------------------------------------------------------


def include_sizes(count: int) -> int:
    """How many ``_i`` parameters an include statement binds for ``count`` parent keys: the
    next power of two, so that a few statements serve every page size (the rest of the
    list repeats a key, which matches nothing new)."""
    size = 1
    while size < count:
        size *= 2
    return size


def include_links(relation: RelationInfo) -> tuple[FromClause, list[Column[Any]]]:
    """Where a relation's rows come from (for its list and its includes), and the columns
    that hold their parent's key."""
    target = relation.target
    if relation.kind == "many_to_many":
        secondary = relation.secondary
        assert secondary is not None
        source = target.join(secondary, sa.and_(*(
            target.c[column.name] == secondary.c[link.name]
            for column, link in relation.secondary_pairs)))
        return source, [secondary.c[link.name] for _, link in relation.pairs]
    return target, [target.c[remote.name] for _, remote in relation.pairs]


def include_statement(
    relation: RelationInfo, columns: Sequence[Column[Any]],
    where: Sequence[ColumnElement[bool]], order: Sequence[SortColumn], size: int,
    capped: bool, hook: Callable[[Select[Any]], Select[Any]] | None = None,
    skipped: bool = False,
) -> Select[Any]:
    """The rows of ``relation``'s target related to ``size`` parent keys, bound as ``_i0,
    _i1, ...`` (``_i0_0, _i0_1, ...`` for a composite key): ``columns`` then the parent key
    columns. ``capped``: at most ``_cap`` rows per parent, first in ``order``, after the
    first ``_skip`` when ``skipped``; the rows of one parent come together, in ``order``."""
    source, links = include_links(relation)
    match: ColumnElement[bool]
    if len(links) == 1:
        link = links[0]
        match = link.in_([sa.bindparam(f"_i{index}", type_=link.type) for index in range(size)])
    else:
        match = sa.or_(*(
            sa.and_(*(link == sa.bindparam(f"_i{index}_{part}", type_=link.type)
                      for part, link in enumerate(links)))
            for index in range(size)))
    labelled = [column.label(f"_f{index}") for index, column in enumerate(columns)]
    labelled += [link.label(f"_l{index}") for index, link in enumerate(links)]
    inner = sa.select(*labelled).select_from(source).where(match, *where)
    if hook is not None:
        inner = hook(inner)
    if not capped:
        return inner
    rank = sa.func.row_number().over(partition_by=links,
                                     order_by=[key.clause() for key in order])
    ranked = inner.add_columns(rank.label("_rank")).subquery("included")
    kept = [ranked.c[f"_f{index}"] for index in range(len(columns))]
    kept += [ranked.c[f"_l{index}"] for index in range(len(links))]
    kept_rank: list[ColumnElement[bool]] = [
        ranked.c["_rank"] <= sa.bindparam("_cap", type_=sa.BigInteger())]
    if skipped:
        kept_rank.append(ranked.c["_rank"] > sa.bindparam("_skip", type_=sa.BigInteger()))
    return (sa.select(*kept)
            .where(*kept_rank)
            .order_by(*(ranked.c[f"_l{index}"] for index in range(len(links))),
                      ranked.c["_rank"]))

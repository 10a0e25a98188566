"""``Query`` -> parameterised SQL. The only place a query description becomes a statement.

Filter values become bound parameters named ``v0, v1, ...`` in the order ``collect`` visits
them, so a statement depends only on the query's *shape* and can be compiled once per shape
(``statements.py``); ``collect`` gives that shape and the values for each request.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, FromClause, Select, Table
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.schema import Column

from ..schema import RelationInfo
from .model import And, Condition, Node, Or, Query


@dataclass
class Scope:
    """Where list rows come from: the table, or a join through a link table, and conditions.

    ``key`` names the scope's shape when its conditions use only the bound ``params``; None
    means the conditions carry their own values and the statement is built every time.
    """

    table: Table
    source: FromClause
    where: list[ColumnElement[bool]] = field(default_factory=list)
    default_order: list[ColumnElement[Any]] = field(default_factory=list)
    key: Hashable | None = None
    params: dict[str, Any] = field(default_factory=dict)


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
    if node.op.kind == "bool" or node.value is None:
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


def _condition(node: Condition, table: FromClause, binder: Binder) -> ColumnElement[bool]:
    if node.relation is None:
        return _clause(node, table.c[node.field.column.name], binder)
    relation = node.relation
    target = relation.target.alias()
    secondary = relation.secondary.alias() if relation.secondary is not None else None
    clause = _clause(node, target.c[node.field.column.name], binder)
    inner = sa.select(sa.literal(1)).select_from(target)
    if secondary is not None:
        inner = inner.select_from(secondary)
    inner = inner.where(join_condition(relation, table, target, secondary), clause)
    return sa.exists(inner)


def compile_where(node: Node, table: FromClause, binder: Binder) -> ColumnElement[bool]:
    """``node`` as a WHERE clause whose values are bound parameters (see ``collect``)."""
    if isinstance(node, Condition):
        return _condition(node, table, binder)
    if isinstance(node, And):
        return sa.and_(*(compile_where(item, table, binder) for item in node.items))
    if isinstance(node, Or):
        return sa.or_(*(compile_where(item, table, binder) for item in node.items))
    return sa.not_(compile_where(node.item, table, binder))


def order_by(
    query: Query, scope: Scope, primary_key: Sequence[Column[Any]]
) -> list[ColumnElement[Any]]:
    """The requested sort, else the default one, always ended by the primary key."""
    table = scope.table
    clauses: list[ColumnElement[Any]] = []
    seen: set[str] = set()
    for key in query.sort:
        column = table.c[key.field.column.name]
        clauses.append(column.desc() if key.descending else column.asc())
        seen.add(key.field.column.name)
    if not query.sort:
        clauses.extend(scope.default_order)
    clauses.extend(table.c[column.name].asc() for column in primary_key
                   if column.name not in seen)
    return clauses


def list_statement(
    query: Query, scope: Scope, columns: Sequence[Column[Any]],
    primary_key: Sequence[Column[Any]],
) -> Select[Any]:
    """The page of rows ``query`` asks for; parameters ``_limit`` and ``_offset`` are bound."""
    statement = sa.select(*(scope.table.c[column.name] for column in columns))
    statement = statement.select_from(scope.source)
    if scope.where:
        statement = statement.where(*scope.where)
    if query.where is not None:
        statement = statement.where(compile_where(query.where, scope.table, Binder()))
    statement = statement.order_by(*order_by(query, scope, primary_key))
    statement = statement.limit(sa.bindparam("_limit", type_=sa.Integer()))
    if query.offset:
        statement = statement.offset(sa.bindparam("_offset", type_=sa.Integer()))
    return statement


def count_statement(query: Query, scope: Scope) -> Select[Any]:
    """How many rows match ``query``, whatever the page."""
    statement = sa.select(sa.func.count()).select_from(scope.source)
    if scope.where:
        statement = statement.where(*scope.where)
    if query.where is not None:
        statement = statement.where(compile_where(query.where, scope.table, Binder()))
    return statement

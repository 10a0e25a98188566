"""``Query`` -> parameterised SQL. The only place a query description becomes a statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, FromClause, Select, Table
from sqlalchemy.sql.schema import Column

from ..schema import RelationInfo
from .model import And, Condition, Node, Or, Query


@dataclass
class Scope:
    """Where list rows come from: the table, or a join through a link table, and conditions."""

    table: Table
    source: FromClause
    where: list[ColumnElement[bool]] = field(default_factory=list)
    default_order: list[ColumnElement[Any]] = field(default_factory=list)


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


def _condition(node: Condition, table: FromClause) -> ColumnElement[bool]:
    if node.relation is None:
        return node.op.build(table.c[node.field.column.name], node.value)
    relation = node.relation
    target = relation.target.alias()
    secondary = relation.secondary.alias() if relation.secondary is not None else None
    clause = node.op.build(target.c[node.field.column.name], node.value)
    inner = sa.select(sa.literal(1)).select_from(target)
    if secondary is not None:
        inner = inner.select_from(secondary)
    inner = inner.where(join_condition(relation, table, target, secondary), clause)
    return sa.exists(inner)


def compile_where(node: Node, table: FromClause) -> ColumnElement[bool]:
    if isinstance(node, Condition):
        return _condition(node, table)
    if isinstance(node, And):
        return sa.and_(*(compile_where(item, table) for item in node.items))
    if isinstance(node, Or):
        return sa.or_(*(compile_where(item, table) for item in node.items))
    return sa.not_(compile_where(node.item, table))


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
    """The page of rows ``query`` asks for."""
    statement = sa.select(*(scope.table.c[column.name] for column in columns))
    statement = statement.select_from(scope.source)
    if scope.where:
        statement = statement.where(*scope.where)
    if query.where is not None:
        statement = statement.where(compile_where(query.where, scope.table))
    statement = statement.order_by(*order_by(query, scope, primary_key)).limit(query.limit)
    if query.offset:
        statement = statement.offset(query.offset)
    return statement


def count_statement(query: Query, scope: Scope) -> Select[Any]:
    """How many rows match ``query``, whatever the page."""
    statement = sa.select(sa.func.count()).select_from(scope.source)
    if scope.where:
        statement = statement.where(*scope.where)
    if query.where is not None:
        statement = statement.where(compile_where(query.where, scope.table))
    return statement

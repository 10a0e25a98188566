"""One list request, run: the columns it selects, its page, its count and its includes.

A ``ListPlan`` is what a ``Query`` needs from the database: the fields of each item, then
the columns only paging and includes need (sort columns outside ``fields``, a link table's
``created_at``, the foreign keys an include joins on), their statement's cache key and its
bound parameters. Every statement depends only on the request's shape, so the fast reader
compiles it once (see ``query/compile.py`` for how values become parameters).

Includes cost one statement per included relation, whatever the page size: the related rows
of every item of the page at once, ``WHERE key IN (...)``, under the target's row policy.
An included to-many or many-to-many list holds at most the target's ``max_limit`` rows per
item, first in the order of the relation's own list.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select
from sqlalchemy.sql.schema import Column

from . import counting
from .counting import Counting, Total, matching_statement
from .query.compile import (
    Scope,
    SortColumn,
    count_statement,
    include_links,
    include_sizes,
    include_statement,
    list_statement,
    raw,
    sort_columns,
)
from .query.model import Query
from .query.parse import parse_sort
from .reading import Built, Reader
from .resource import Resource
from .schema import RelationInfo
from .served import Served, relation_order


def with_default_sort(query: Query, target: Served) -> Query:
    """``query``, sorted by the resource's ``default_sort`` when it gives no sort."""
    if query.sort or not target.resource.default_sort_keys:
        return query
    return replace(query, sort=parse_sort(target.vocabulary, target.resource.default_sort_keys,
                                          "sort"))


@dataclass
class ListPlan:
    """The statement of one list request and how to read its rows."""

    query: Query
    scope: Scope
    names: list[str]
    columns: list[Column[Any]]  # the items' fields, then the foreign keys includes need
    sort: tuple[SortColumn, ...]
    sort_positions: list[int]
    include_positions: dict[str, list[int]]
    key: Hashable | None
    params: dict[str, Any]
    keyset: tuple[bool, ...] | None
    limited: bool

    @property
    def signature(self) -> tuple[tuple[str, bool], ...]:
        return tuple((key.name, key.descending) for key in self.sort)

    def selected(self) -> list[ColumnElement[Any]]:
        return [*self.columns, *(raw(key.column, index) for index, key in enumerate(self.sort))]

    def build(self) -> Built:
        # Called only when the statement is not cached yet: expressions are built here.
        selected = self.selected()
        statement = list_statement(self.query, self.scope, selected, self.sort,
                                   self.keyset, self.limited)
        return statement, [column.type for column in selected]

    def count_inner(self) -> Select[Any]:
        """The page's statement without its page: what a hooked count counts."""
        return list_statement(replace(self.query, offset=None), self.scope, self.selected(),
                              self.sort, None, limited=False)


def plan_list(query: Query, scope: Scope, target: Served, shape: Hashable,
              values: dict[str, Any], after: Sequence[Any] | None,
              limit: int | None) -> ListPlan:
    """Plan ``query`` over ``scope``; ``shape`` and ``values`` come from ``collect``, ``after``
    is the cursor's row (its sort values), ``limit`` the rows to fetch (None: all)."""
    names = list(query.fields) if query.fields else target.visible_names
    columns = [target.info.fields[name].column for name in names]
    sort = sort_columns(query, scope, target.key_columns)

    def position(column: Column[Any]) -> int:
        for index, selected in enumerate(columns):
            if selected is column:
                return index
        columns.append(column)
        return len(columns) - 1

    include_positions = {
        name: [position(scope.table.c[local.name])
               for local, _ in target.relations[name][0].pairs]
        for name in query.include
    }
    # The sort columns come last, as stored (see query.compile.RAW), for the cursor.
    sort_positions = list(range(len(columns), len(columns) + len(sort)))
    params = {**scope.params, **values}
    keyset = None
    if after is not None:
        keyset = tuple(value is None for value in after)
        params.update({f"_c{index}": value for index, value in enumerate(after)
                       if value is not None})
    if limit is not None:
        params["_limit"] = limit
    if query.offset:
        params["_offset"] = query.offset
    key = None if scope.key is None else (
        target.name, scope.key, shape,
        tuple((k.name, k.descending, k.nulls_first) for k in sort),
        tuple(names), query.include, bool(query.offset), keyset, limit is not None)
    return ListPlan(query, scope, names, columns, sort, sort_positions, include_positions,
                    key, params, keyset, limit is not None)


def _include_order(relation: RelationInfo, other: Served) -> list[SortColumn]:
    query = with_default_sort(Query(), other)
    scope = Scope(other.table, other.table, default_order=relation_order(relation))
    return list(sort_columns(query, scope, other.key_columns))


def add_includes(reader: Reader, plan: ListPlan, target: Served,
                 rows: Sequence[Sequence[Any]], items: list[dict[str, Any]],
                 fast: bool) -> None:
    """Embed each of ``plan``'s includes into ``items`` (the page's rows, in order)."""
    for name in plan.query.include:
        relation, other = target.relations[name]
        positions = plan.include_positions[name]
        parents = [tuple(row[index] for index in positions) for row in rows]
        keys = list(dict.fromkeys(key for key in parents if None not in key))
        single = relation.kind == "to_one"
        found: dict[tuple[Any, ...], Any] = {}
        if keys:
            found = _related(reader, relation, other, target.name, keys, single, fast)
        for item, key in zip(items, parents, strict=True):
            item[name] = found.get(key) if single else found.get(key, [])


def _related(reader: Reader, relation: RelationInfo, other: Served, parent_name: str,
             keys: list[tuple[Any, ...]], single: bool, fast: bool,
             ) -> dict[tuple[Any, ...], Any]:
    size = include_sizes(len(keys))
    padded = keys + [keys[0]] * (size - len(keys))
    _source, links = include_links(relation)
    params: dict[str, Any] = {}
    for index, key in enumerate(padded):
        if len(links) == 1:
            params[f"_i{index}"] = key[0]
        else:
            params.update({f"_i{index}_{part}": value for part, value in enumerate(key)})
    if not single:
        params["_cap"] = other.max_limit
    ctx = reader.ctx
    where: list[ColumnElement[bool]] = other.read_scope(ctx)
    hooked = ctx is not None and not other.fast

    def build() -> Built:
        hook = None
        if hooked:
            def hook(statement: Select[Any]) -> Select[Any]:
                return other.resource.base_query(statement, reader.need_ctx())
        statement = include_statement(relation, other.visible_columns, where,
                                      [] if single else _include_order(relation, other),
                                      size, capped=not single, hook=hook)
        return statement, [*(column.type for column in other.visible_columns),
                           *(link.type for link in links)]

    cache_key = (parent_name, "include", relation.name, size) if fast else None
    width = len(other.visible_names)
    names = other.visible_names
    found: dict[tuple[Any, ...], Any] = {}
    for row in reader.rows(cache_key, build, params):
        item = dict(zip(names, row[:width], strict=True))
        key = tuple(row[width:])
        if single:
            found[key] = item
        else:
            found.setdefault(key, []).append(item)
    return found


def sort_signature(query: Query, scope: Scope, target: Served,
                   ) -> tuple[tuple[str, bool], ...]:
    """The sort a cursor for ``query`` must have been made for: names and directions."""
    return tuple((key.name, key.descending)
                 for key in sort_columns(query, scope, target.key_columns))


def count_rows(reader: Reader, plan: ListPlan, target: Served, shape: Hashable,
               strategy: str = "exact") -> Total | None:
    """How many rows the list holds, whatever the page (and under ``base_query``), counted as
    ``strategy`` says (see ``tablerest.counting``); None for ``none``."""
    if strategy == "none":
        return None
    scope = plan.scope
    plain = type(target.resource).base_query is Resource.base_query
    key: Hashable | None = None
    if plain:
        if scope.key is not None:
            key = (target.name, scope.key, shape, "count")

        def matching() -> Select[Any]:
            return matching_statement(plan.query, scope)

        def exact() -> Select[Any]:
            return count_statement(plan.query, scope)
    else:
        def matching() -> Select[Any]:
            inner = target.resource.base_query(plan.count_inner(), reader.need_ctx())
            return inner.limit(None).offset(None).order_by(None)

        def exact() -> Select[Any]:
            return sa.select(sa.func.count()).select_from(matching().subquery())
    unfiltered = (plain and plan.query.where is None and not scope.where
                  and scope.source is scope.table)
    source = Counting(reader, matching, exact, plan.params, key, target.engine.dialect,
                      scope.table, unfiltered)
    return counting.count(source, strategy, target.settings.count_exact_up_to)


def count_strategy(query: Query, target: Served) -> str:
    """The count strategy of a list of ``target``: the request's, else the resource's
    ``count``, else ``TABLEREST_COUNT``."""
    return counting.resolve(query.count, target.resource.options.get("count"),
                            target.settings.count)

"""One list request, run: the columns it selects, its page, its count and its includes.

A ``ListPlan`` is what a ``Query`` needs from the database: the fields of each item, then
the columns only paging and includes need (sort columns outside ``fields``, a link table's
``created_at``, the foreign keys an include joins on), their statement's cache key and its
bound parameters. Every statement depends only on the request's shape, so the fast reader
compiles it once (see ``query/compile.py`` for how values become parameters).

Includes are a tree (``query.model.Include``) and cost one statement per included relation
per level, whatever the page size: the related rows of every row of the level above at once,
``WHERE key IN (...)``, under the target's row policy and ``base_query`` hook, its hidden
fields never read. An included to-many or many-to-many list holds at most the target's
``max_limit`` rows per item (fewer when the include has a ``limit``), first in the include's
sort or else the order of the relation's own list: capped per parent by a window function.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, FromClause, Select
from sqlalchemy.sql.schema import Column

from . import counting
from .counting import Counting, Total, matching_statement
from .query.compile import (
    Binder,
    Scope,
    SortColumn,
    collect,
    compile_where,
    count_statement,
    include_links,
    include_sizes,
    include_statement,
    list_statement,
    raw,
    sort_columns,
)
from .query.model import And, Condition, Include, Node, Not, Or, Query
from .query.parse import parse_sort
from .reading import Built, Reader
from .resource import RequestContext, Resource
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


def position_of(columns: list[Column[Any]], column: Column[Any]) -> int:
    """Where ``column`` is selected in ``columns``, appended when it is not yet."""
    for index, selected in enumerate(columns):
        if selected is column:
            return index
    columns.append(column)
    return len(columns) - 1


def plan_list(query: Query, scope: Scope, target: Served, shape: Hashable,
              values: dict[str, Any], after: Sequence[Any] | None,
              limit: int | None) -> ListPlan:
    """Plan ``query`` over ``scope``; ``shape`` and ``values`` come from ``collect``, ``after``
    is the cursor's row (its sort values), ``limit`` the rows to fetch (None: all)."""
    names = list(query.fields) if query.fields else target.visible_names
    columns = [target.info.fields[name].column for name in names]
    sort = sort_columns(query, scope, target.key_columns)

    include_positions = {
        include.key: [position_of(columns, scope.table.c[local.name])
                      for local, _ in target.relations[include.relation][0].pairs]
        for include in query.include if include.fetched
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
        tuple(names), tuple(include.relation for include in query.include if include.fetched),
        bool(query.offset), keyset, limit is not None)
    return ListPlan(query, scope, names, columns, sort, sort_positions, include_positions,
                    key, params, keyset, limit is not None)


class VisibleRows:
    """``compile.Rows`` for one request: a served resource's rows under its row policy and
    ``base_query`` hook (the caller's context ``ctx``; None on the fast path, where no
    resource read has either)."""

    def __init__(self, served: Served, ctx: RequestContext | None) -> None:
        self.served, self.ctx = served, ctx

    def related(self, name: str) -> tuple[RelationInfo, VisibleRows]:
        relation, target = self.served.relations[name]
        return relation, VisibleRows(target, self.ctx)

    def source(self) -> FromClause:
        served, ctx = self.served, self.ctx
        where = served.read_scope(ctx)
        hooked = ctx is not None and type(served.resource).base_query is not \
            Resource.base_query
        if not where and not hooked:
            return served.table.alias()
        # The policy and hook see the table itself, as they do everywhere else.
        statement = sa.select(served.table).where(*where)
        if hooked:
            assert ctx is not None
            statement = served.resource.base_query(statement, ctx)
        return statement.subquery()


def fast_for(served: Served, query: Query) -> bool:
    """Whether a read of ``query`` can skip SQLAlchemy: no policy or hook on any resource
    it reads, includes and conditions across relations at every depth included."""
    return (served.fast and _fast_where(served, query.where)
            and all(_fast_include(served, include) for include in query.include))


def _fast_include(parent: Served, include: Include) -> bool:
    other = parent.relations[include.relation][1]
    return (other.fast and _fast_where(other, include.where)
            and all(_fast_include(other, child) for child in include.include))


def _fast_where(served: Served, node: Node | None) -> bool:
    if node is None:
        return True
    if isinstance(node, Condition):
        return node.relation is None or served.relations[node.relation.name][1].fast
    if isinstance(node, And | Or):
        return all(_fast_where(served, item) for item in node.items)
    if isinstance(node, Not):
        return _fast_where(served, node.item)
    other = served.relations[node.relation][1]
    return other.fast and _fast_where(other, node.where)


@dataclass
class _Level:
    """The rows read for one include: each with its parent's key, its item, and where the
    next level's parent keys are in the row."""

    parents: list[tuple[Any, ...]]
    rows: list[tuple[Any, ...]]
    items: list[dict[str, Any]]


def _include_order(relation: RelationInfo, other: Served, include: Include,
                   ) -> list[SortColumn]:
    query = Query(sort=include.sort) if include.sort else with_default_sort(Query(), other)
    scope = Scope(other.table, other.table, default_order=relation_order(relation))
    return list(sort_columns(query, scope, other.key_columns))


def add_includes(reader: Reader, plan: ListPlan, target: Served,
                 rows: Sequence[Sequence[Any]], items: list[dict[str, Any]],
                 fast: bool) -> None:
    """Embed ``plan``'s include tree into ``items`` (the page's rows, in order): one
    statement per included relation per level, whatever the page size."""
    _embed(reader, plan.query.include, target, rows, plan.include_positions, items, fast)


def _embed(reader: Reader, includes: Sequence[Include], parent: Served,
           rows: Sequence[Sequence[Any]], positions: dict[str, list[int]],
           items: list[dict[str, Any]], fast: bool) -> None:
    for include in includes:
        relation, other = parent.relations[include.relation]
        single = relation.kind == "to_one"
        name = include.key
        if not include.fetched:
            for item in items:
                item[name] = None if single else []
            continue
        parents = [tuple(row[index] for index in positions[name]) for row in rows]
        keys = list(dict.fromkeys(key for key in parents if None not in key))
        level = _Level([], [], [])
        child_positions: dict[str, list[int]] = {}
        for chunk in range(0, len(keys), MAX_KEYS):
            child_positions = _related(reader, include, relation, other, parent.name,
                                       keys[chunk:chunk + MAX_KEYS], single, fast, level)
        found: dict[tuple[Any, ...], Any] = {}
        for key, item in zip(level.parents, level.items, strict=True):
            if single:
                found[key] = item
            else:
                found.setdefault(key, []).append(item)
        for item, key in zip(items, parents, strict=True):
            item[name] = found.get(key) if single else found.get(key, [])
        if include.include:
            _embed(reader, include.include, other, level.rows, child_positions, level.items,
                   fast)


#: The most parent keys one include statement binds; more take one statement per this many.
MAX_KEYS = 4096


def _related(reader: Reader, include: Include, relation: RelationInfo, other: Served,
             parent_name: str, keys: list[tuple[Any, ...]], single: bool, fast: bool,
             level: _Level) -> dict[str, list[int]]:
    """Read the rows of ``other`` related to ``keys`` into ``level``; where each next-level
    include finds its parent key in those rows."""
    size = include_sizes(len(keys))
    padded = keys + [keys[0]] * (size - len(keys))
    _source, links = include_links(relation)
    params: dict[str, Any] = {}
    for index, key in enumerate(padded):
        if len(links) == 1:
            params[f"_i{index}"] = key[0]
        else:
            params.update({f"_i{index}_{part}": value for part, value in enumerate(key)})
    skipped = not single and bool(include.offset)
    if not single:
        cap = other.max_limit if include.limit is None else min(include.limit,
                                                                 other.max_limit)
        params["_cap"] = cap + (include.offset or 0)
        if skipped:
            params["_skip"] = include.offset
    values: dict[str, Any] = {}
    where_shape = collect(include.where, values)
    params.update(values)
    names = list(include.fields) if include.fields is not None else other.visible_names
    columns = [other.info.fields[name].column for name in names]

    positions = {
        child.key: [position_of(columns, other.table.c[local.name])
                    for local, _ in other.relations[child.relation][0].pairs]
        for child in include.include if child.fetched
    }
    order = [] if single else _include_order(relation, other, include)
    ctx = reader.ctx
    hooked = ctx is not None and not other.fast

    def build() -> Built:
        where: list[ColumnElement[bool]] = other.read_scope(ctx)
        if include.where is not None:
            where.append(compile_where(include.where, relation.target, Binder(),
                                       VisibleRows(other, ctx)))
        hook = None
        if hooked:
            def hook(statement: Select[Any]) -> Select[Any]:
                return other.resource.base_query(statement, reader.need_ctx())
        statement = include_statement(relation, columns, where, order, size,
                                      capped=not single, hook=hook, skipped=skipped)
        return statement, [*(column.type for column in columns),
                           *(link.type for link in links)]

    cache_key = (parent_name, "include", relation.name, size, tuple(names),
                 tuple(str(column.name) for column in columns[len(names):]), where_shape,
                 tuple((key.name, key.descending, key.nulls_first) for key in order),
                 skipped) if fast else None
    width = len(columns)
    for row in reader.rows(cache_key, build, params):
        level.parents.append(tuple(row[width:]))
        level.rows.append(tuple(row[:width]))
        level.items.append(dict(zip(names, row[:len(names)], strict=True)))
    return positions


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

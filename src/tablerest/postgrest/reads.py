"""Running a PostgREST read through tablerest's one list path (``tablerest.listing``).

The statement is planned by ``plan_list`` (compiled once per shape), related rows come from
``add_includes`` (one statement per embedded relation per level, whatever the page size),
the total from ``count_rows``; all under each resource's row policy and ``base_query``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..listing import VisibleRows, add_includes, count_rows, plan_list
from ..listing import fast_for as fast_for  # the dialect's views read it from here
from ..query.compile import Scope, collect
from ..query.model import OPERATORS, And, Condition, Exists, Include, Node, Or, Query, SortKey
from ..reading import FastReader, Reader
from ..served import Served
from .errors import PostgrestError
from .parse import Embed, Shape, all_of

_RANGE = re.compile(r"(\d{1,18})-(\d{0,18})\Z")


@dataclass(frozen=True)
class Page:
    """The rows a read asks for: from ``offset``, at most ``limit`` (None: no limit)."""

    offset: int
    limit: int | None


def page_of(limit: int | None, offset: int | None, range_header: str | None) -> Page:
    """``limit``/``offset`` intersected with a ``Range: a-b`` header (one that does not
    read ``digits-[digits]`` is ignored, as PostgREST ignores it); ``5-2`` is a 416."""
    lower = offset or 0
    upper = None if limit is None else lower + limit - 1
    match = _RANGE.match(range_header.strip()) if range_header else None
    if match is not None:
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else None
        if last is not None and first > last:
            raise PostgrestError(416, "PGRST103", "Requested range not satisfiable",
                                 "The lower boundary must be lower than or equal to the "
                                 "upper boundary in the Range header.")
        lower = max(lower, first)
        if last is not None:
            upper = last if upper is None else min(upper, last)
    return Page(lower, None if upper is None else max(upper - lower + 1, 0))


def build_query(where: Node | None, sort: tuple[SortKey, ...], shape: Shape,
                offset: int) -> Query:
    """The one query description of a read: ``!inner`` and anti-joined embeds become
    ``Exists`` conditions on their parent level (the page and its count, or the level
    above), every embed with a key an ``Include`` of the tree."""
    return Query(where=all_of([where, *_joins(shape)]), sort=sort, offset=offset,
                 fields=shape.fields or None, include=_includes(shape))


def _includes(shape: Shape) -> tuple[Include, ...]:
    return tuple(
        Include(embed.relation, name=embed.slot, fields=embed.shape.fields,
                include=_includes(embed.shape), where=_level_where(embed), sort=embed.sort,
                limit=embed.limit, offset=embed.offset, fetched=not embed.anti)
        for embed in shape.embeds if embed.key is not None or embed.spread)


def _level_where(embed: Embed) -> Node | None:
    """What an embed's rows meet: its filters and its own embeds' joins."""
    return all_of([embed.where, *_joins(embed.shape)])


def _joins(shape: Shape) -> list[Node | None]:
    """The conditions the embeds of ``shape`` put on its rows: a related row exists
    (``!inner``, ``rel=not.is.null``), or none does (``rel=is.null``)."""
    found: list[Node | None] = []
    for embed in shape.embeds:
        if embed.inner:
            found.append(Exists(embed.relation, _level_where(embed)))
        if embed.anti:
            found.append(Exists(embed.relation, _level_where(embed), negated=True))
    return found


def run_list(reader: Reader, served: Served, query: Query, scope: Scope, limit: int | None,
             counting: str | None) -> tuple[list[dict[str, Any]], int | None]:
    """The rows (with their includes) and, when ``counting`` (``Prefer: count=``: ``exact``,
    ``planned`` or ``estimated``; see ``tablerest.counting``), how many match in all."""
    scope = replace(scope, rows=VisibleRows(served, reader.ctx))
    values: dict[str, Any] = {}
    shape = collect(query.where, values)
    plan = plan_list(query, scope, served, shape, values, None, limit)
    rows = reader.rows(plan.key, plan.build, plan.params, served.resource.base_query)
    items = [dict(zip(plan.names, row, strict=False)) for row in rows]
    if query.include:
        add_includes(reader, plan, served, rows, items, fast=isinstance(reader, FastReader))
    if counting is None:
        return items, None
    total = count_rows(reader, plan, served, shape, counting)
    if total is None:
        return items, None
    more = limit is None or len(rows) >= limit
    return items, total.settled(query.offset or 0, len(rows), more).value


def keys_condition(served: Served, keys: Sequence[tuple[Any, ...]]) -> Node:
    """The rows with these primary keys (read back after a write)."""
    fields = served.key_fields
    if len(fields) == 1:
        return Condition(fields[0], OPERATORS["in"], [key[0] for key in keys])
    rows = tuple(And(tuple(Condition(info, OPERATORS["eq"], value)
                           for info, value in zip(fields, key, strict=True)))
                 for key in keys)
    return rows[0] if len(rows) == 1 else Or(rows)


def key_of(served: Served, item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(item[info.name] for info in served.key_fields)

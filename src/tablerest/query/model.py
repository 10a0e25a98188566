"""The one internal description of a list query, and the registry of filter operators.

URL parameters and the QUERY body both parse into a ``Query``; only ``compile.py`` turns a
``Query`` into SQL. Values in a ``Query`` are already coerced to the column's Python type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import ColumnElement

from ..schema import FieldInfo, RelationInfo

#: How an operator's value is read: one value of the field's type, a list of them, true or
#: false, a text pattern (text fields only), or one of the ``IS`` words (``IS_VALUES``).
ValueKind = Literal["scalar", "list", "bool", "pattern", "is"]
NullsOrder = Literal["first", "last"]
#: The words ``is`` takes: ``null``, ``not_null`` (any field), ``true``, ``false``,
#: ``unknown`` (boolean fields; ``unknown`` is SQL's third truth value, NULL).
IS_VALUES = ("null", "not_null", "true", "false", "unknown")


@dataclass(frozen=True)
class Operator:
    """A filter operator: how its value is read and how it becomes SQL."""

    name: str
    kind: ValueKind
    build: Callable[[ColumnElement[Any], Any], ColumnElement[bool]]


OPERATORS: dict[str, Operator] = {}


def operator(name: str, kind: ValueKind = "scalar") -> Callable[
    [Callable[[ColumnElement[Any], Any], ColumnElement[bool]]],
    Callable[[ColumnElement[Any], Any], ColumnElement[bool]],
]:
    """Register a filter operator under ``name``; a second registration is refused."""

    def register(
        build: Callable[[ColumnElement[Any], Any], ColumnElement[bool]],
    ) -> Callable[[ColumnElement[Any], Any], ColumnElement[bool]]:
        if name in OPERATORS:
            raise ValueError(f"The filter operator {name!r} is already registered.")
        OPERATORS[name] = Operator(name, kind, build)
        return build

    return register


@operator("eq")
def _eq(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


@operator("ne")
def _ne(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.is_not(None) if value is None else column != value


@operator("lt")
def _lt(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column < value
    return result


@operator("lte")
def _lte(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column <= value
    return result


@operator("gt")
def _gt(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column > value
    return result


@operator("gte")
def _gte(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column >= value
    return result


@operator("in", kind="list")
def _in(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.in_(value)


@operator("like", kind="pattern")
def _like(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.like(value)


@operator("ilike", kind="pattern")
def _ilike(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.ilike(value)


@operator("isnull", kind="bool")
def _isnull(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value else column.is_not(None)


@operator("is", kind="is")
def _is(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    if value == "not_null":
        return column.is_not(None)
    if value in ("true", "false"):
        return column.is_(value == "true")
    return column.is_(None)


@operator("isdistinct")
def _isdistinct(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.is_distinct_from(value)


#: A regular expression that starts case-insensitive: PostgreSQL's AREs and Python's ``re``
#: (the REGEXP function SQLAlchemy registers on SQLite) both read the embedded ``(?i)``.
_INSENSITIVE = sa.literal_column("'(?i)'", sa.String())


@operator("match", kind="pattern")
def _match(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.regexp_match(value)


@operator("imatch", kind="pattern")
def _imatch(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.regexp_match(_INSENSITIVE.concat(value))


@dataclass(frozen=True)
class Condition:
    """``field op value``; ``relation`` set when the field belongs to a related table."""

    field: FieldInfo
    op: Operator
    value: Any
    relation: RelationInfo | None = None


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class Exists:
    """Some row related through ``relation`` (a relation's name on the filtered resource)
    that the caller may see meets ``where`` (None: any row); ``negated``: no such row.

    Compiled as a correlated ``EXISTS`` under the target's row policy and ``base_query``
    (see ``compile.Rows``): ``!inner`` embeds, ``rel=is.null`` anti-joins, and conditions
    in a logic tree that reach across a relation.
    """

    relation: str
    where: Node | None = None
    negated: bool = False


Node = Condition | And | Or | Not | Exists


@dataclass(frozen=True)
class SortKey:
    """One key of a sort. ``nulls`` None: NULLs last in both directions (tablerest's own
    order, which keyset cursors rely on); ``"first"``/``"last"`` say where they go."""

    field: FieldInfo
    descending: bool = False
    nulls: NullsOrder | None = None


#: How deep includes nest (``messages.author.posts`` is 3).
MAX_INCLUDE_DEPTH = 8


@dataclass(frozen=True)
class Include:
    """One relation embedded in each item of a level, and what to embed of it: a tree.

    ``relation`` is the relation's name on the parent's resource; ``name`` the key its rows
    go under in the parent's item (None: the relation's name); ``fields`` the target's
    fields to read (None: every visible one); ``include`` the next level, whose parents are
    every row read at this one. ``where``, ``sort``, ``limit`` and ``offset`` narrow, order
    and page the related rows of each parent (a to-many list holds at most the target's
    ``max_limit``). ``fetched`` False: nothing is read (an anti-joined embed), each item
    gets ``[]`` or ``None``.
    """

    relation: str
    name: str | None = None
    fields: tuple[str, ...] | None = None
    include: tuple[Include, ...] = ()
    where: Node | None = None
    sort: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int | None = None
    fetched: bool = True

    @property
    def key(self) -> str:
        return self.relation if self.name is None else self.name


@dataclass(frozen=True)
class Query:
    """What a list request asks for, independent of how it was written.

    ``limit`` is the page size of a JSON list (the default, or the request's clamped to the
    maximum); ``requested_limit`` is what the request asked for, unclamped, or None: streamed
    representations return every row unless the request gives a limit. ``offset`` and
    ``cursor`` exclude each other; without ``offset``, pages are keyset pages.
    """

    where: Node | None = None
    sort: tuple[SortKey, ...] = ()
    limit: int = 20
    offset: int | None = None
    cursor: str | None = None
    fields: tuple[str, ...] | None = None
    include: tuple[Include, ...] = ()
    #: How to count the matching rows: ``exact``, ``estimated`` or ``none``; None: the
    #: resource's default (see ``tablerest.counting``).
    count: Literal["exact", "estimated", "none"] | None = None
    requested_limit: int | None = None


@dataclass(frozen=True)
class Vocabulary:
    """The names a query against one resource may use: visible fields and relations, and
    (``related``) the names of each relation's target."""

    fields: Mapping[str, FieldInfo]
    relations: Mapping[str, tuple[RelationInfo, Mapping[str, FieldInfo]]] = field(
        default_factory=dict
    )
    default_limit: int = 20
    max_limit: int = 100
    #: The vocabulary of a relation's target, by the relation's name (nested includes).
    related: Callable[[str], Vocabulary] | None = None

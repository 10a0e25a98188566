"""PostgREST's URL grammar -> tablerest's one query description (``query.model.Query``).

``select`` becomes a ``Shape`` (output keys, aliases, embeds at any depth) that ``reads.py``
turns into the query's ``fields`` and include tree and ``shape.py`` applies to the rows; the
embedded parameters (``rel.col=``, ``rel.or=``, ``rel.order=``, ``rel.limit=``, ``rel=is.null``)
go to their embed; filters, ``or``/``and``/``not`` trees (which may reach across a relation:
``or=(a.eq.1,rel.b.eq.2)``), ``order``, ``limit`` and ``offset`` become its ``where``, ``sort``
and page.

Every name is looked up in the resource's own description (``Served``): nothing from the
URL reaches SQL or ``getattr``. Anything the grammar refuses is a 400 ``PGRST100``; a name
the resource does not show is ``42703``; what PostgREST has and this dialect does not is
``PGRST127``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import BadRequest
from ..query.model import (
    MAX_INCLUDE_DEPTH,
    OPERATORS,
    And,
    Condition,
    Exists,
    Node,
    Not,
    NullsOrder,
    Or,
    SortKey,
)
from ..query.parse import MAX_CONDITIONS, MAX_DEPTH, MAX_LIST_VALUES, make_condition
from ..query.postgres_ops import POSTGRES_OPERATORS, PostgresOnly, WrongType
from ..query.postgres_ops import condition as postgres_condition
from ..served import Served
from .errors import PostgrestError, column_missing, not_implemented, parse_error

#: PostgREST's operators and tablerest's registered operator each one is.
OPERATOR_NAMES = {"eq": "eq", "neq": "ne", "gt": "gt", "gte": "gte", "lt": "lt",
                  "lte": "lte", "like": "like", "ilike": "ilike", "match": "match",
                  "imatch": "imatch", "in": "in", "is": "is", "isdistinct": "isdistinct"}
#: PostgREST's operators that only PostgreSQL's types have (full text, arrays, ranges):
#: ``query.postgres_ops``; 400 ``PGRST127`` on another database.
UNSUPPORTED = frozenset(POSTGRES_OPERATORS)
#: Operators that take ``(any)`` / ``(all)``.
QUANTIFIABLE = frozenset({"eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
#: The keys that are not filters: their last dot-separated part.
RESERVED_LAST = frozenset({"order", "limit", "offset", "and", "or"})
RESERVED = frozenset({"select", "columns", "on_conflict"})
_OPERATION = re.compile(r"(not\.)?([a-z]+)(?:\((any|all|[A-Za-z0-9_]+)\))?\.(.*)\Z", re.S)
_NAME_CHARS = re.compile(r"[A-Za-z0-9_$ ]|-(?!>)")
#: Embeds nest at most this deep in one ``select`` (as ``include`` paths do).
MAX_SELECT_DEPTH = MAX_INCLUDE_DEPTH


# -- select ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What ``select`` asks of one level: ``columns`` as (output key, field name), in order,
    and the embedded relations."""

    columns: tuple[tuple[str, str], ...]
    embeds: tuple[Embed, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for _, name in self.columns))


@dataclass(frozen=True)
class Embed:
    """One embedded relation: the served relation's name, its output key (None for
    ``rel()``, which emits nothing), and its own shape; ``spread`` merges a to-one's
    columns into the parent (``...rel(cols)``).

    ``label`` is the name filters on it use (its alias, else its name as written); ``slot``
    the key its rows are read into. The embedded parameters (``rel.col=``, ``rel.or=``,
    ``rel.order=``, ``rel.limit=``, ``rel.offset=``) give ``where``, ``sort``, ``limit``
    and ``offset``; ``inner`` (``!inner``, ``rel=not.is.null``) keeps only the parents
    with a related row, ``anti`` (``rel=is.null``) only those without one.
    """

    key: str | None
    relation: str
    shape: Shape
    spread: bool = False
    inner: bool = False
    label: str = ""
    slot: str = ""
    where: Node | None = None
    sort: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int | None = None
    anti: bool = False


@dataclass
class _Item:
    """A ``select`` item as written, before its names are resolved."""

    name: str
    alias: str | None = None
    star: bool = False
    hints: list[str] = field(default_factory=list)
    children: list[_Item] | None = None
    spread: bool = False


class _Text:
    """A cursor over one parameter's text, for the recursive parsers below."""

    def __init__(self, text: str, what: str) -> None:
        self.text, self.pos, self.what = text, 0, what

    def peek(self, count: int = 1) -> str:
        return self.text[self.pos:self.pos + count]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def fail(self, expecting: str) -> PostgrestError:
        found = self.peek()
        shown = f'unexpected "{found}"' if found else "unexpected end of input"
        return parse_error(f'"failed to parse {self.what} ({self.text})" (line 1, column '
                           f"{self.pos + 1})", f"{shown} expecting {expecting}")

    def expect(self, token: str) -> None:
        if self.peek(len(token)) != token:
            raise self.fail(repr(token))
        self.pos += len(token)

    def spaces(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def name(self) -> str:
        """A field name: ``[A-Za-z0-9_$ ]`` and ``-`` not followed by ``>``, or quoted."""
        self.spaces()
        if self.peek() == '"':
            return self.quoted()
        start = self.pos
        while not self.at_end() and _NAME_CHARS.match(self.text, self.pos):
            self.pos += 1
        found = self.text[start:self.pos].strip()
        if not found:
            raise self.fail("a name")
        return found

    def quoted(self) -> str:
        """``"..."`` with backslash escapes."""
        self.expect('"')
        chars: list[str] = []
        while True:
            if self.at_end():
                raise self.fail('a closing \'"\'')
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and not self.at_end():
                chars.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                return "".join(chars)
            else:
                chars.append(char)


def _select_items(text: _Text, depth: int) -> list[_Item]:
    if depth - 1 > MAX_SELECT_DEPTH:  # the top list is depth 1, the first embed's 2
        raise parse_error(f"The select parameter nests embeds more than {MAX_SELECT_DEPTH} "
                          "levels deep.")
    items: list[_Item] = []
    while True:
        items.append(_select_item(text, depth))
        text.spaces()
        if text.peek() != ",":
            return items
        text.pos += 1


def _select_item(text: _Text, depth: int) -> _Item:
    text.spaces()
    if text.peek() == "*":
        text.pos += 1
        return _Item("*", star=True)
    spread = text.peek(3) == "..."
    if spread:
        text.pos += 3
    first = text.name()
    alias = None
    if text.peek() == ":" and text.peek(2) != "::":
        text.pos += 1
        alias, first = first, text.name()
    item = _Item(first, alias, spread=spread)
    if text.peek(2) == "->":
        raise not_implemented(f"JSON paths in select ({first}->...) are not supported.")
    if text.peek(2) == "::":
        raise not_implemented(f"Casts in select ({first}::...) are not supported.")
    while text.peek() == "!":
        text.pos += 1
        item.hints.append(text.name())
    if text.peek(2) == "()" and first == "count" and not item.hints:
        raise _aggregates()
    if text.peek() == ".":
        raise _aggregates()
    if text.peek() == "(":
        text.pos += 1
        text.spaces()
        item.children = [] if text.peek() == ")" else _select_items(text, depth + 1)
        text.expect(")")
    elif item.hints or spread:
        raise text.fail("'('")
    return item


def _aggregates() -> PostgrestError:
    return PostgrestError(400, "PGRST123", "Use of aggregate functions is not allowed")


def parse_select(raw: str | None, served: Served,
                 args: Sequence[tuple[str, str]] | None = None) -> Shape:
    """``select`` (None or empty: every visible column) resolved against ``served``; with
    the request's ``args``, each embed gains its embedded parameters (see ``Embed``)."""
    if raw is None or not raw.strip():
        shape = Shape(tuple((name, name) for name in served.visible_names))
    else:
        text = _Text(raw, "select parameter")
        items = _select_items(text, 1)
        if not text.at_end():
            raise text.fail("',' or the end of the select parameter")
        shape = _resolve(items, served)
    return shape if args is None else _embedded(shape, served, args)


def _resolve(items: Sequence[_Item], served: Served) -> Shape:
    columns: list[tuple[str, str]] = []
    embeds: list[Embed] = []
    for item in items:
        if item.star:
            columns += [(name, name) for name in served.visible_names]
        elif item.children is None:
            if item.name not in served.vocabulary.fields:
                raise column_missing(served.name, item.name)
            columns.append((item.alias or item.name, item.name))
        else:
            name, inner = resolve_embed(served, item.name, item.hints)
            target = served.relations[name][1]
            relation = served.relations[name][0]
            shape = _resolve(item.children, target) if item.children else Shape(())
            if item.spread and relation.kind != "to_one":
                raise not_implemented(f"Spreading a to-many relation ({item.name}) is not "
                                      "supported.")
            key = None if not item.children and not item.spread else (item.alias or item.name)
            embeds.append(Embed(key, name, shape, item.spread, inner,
                                label=item.alias or item.name, slot=f"\x00{len(embeds)}"))
    return Shape(tuple(columns), tuple(embeds))


def resolve_embed(served: Served, name: str, hints: Sequence[str]) -> tuple[str, bool]:
    """The served relation an embed names (a relation, a table, or a to-one's foreign key
    column), narrowed by its ``!hint``; and whether it is ``!inner``."""
    inner = "inner" in hints
    hint = next((each for each in hints if each not in ("inner", "left")), None)
    exact = [name] if name in served.relations else []
    candidates = exact or [
        relation_name for relation_name, (relation, target) in served.relations.items()
        if target.name == name or (relation.kind == "to_one"
                                   and [local.name for local, _ in relation.pairs] == [name])]
    if hint is not None:
        candidates = [each for each in candidates if _matches_hint(served, each, hint)]
    if not candidates:
        shown = f"{name}!{hint}" if hint else name
        raise PostgrestError(
            400, "PGRST200",
            f"Could not find a relationship between '{served.name}' and '{shown}' in the "
            "schema cache",
            f"Searched for a foreign key relationship between '{served.name}' and '{shown}' "
            "in the schema 'public', but no matches were found.",
            "Embed one of: " + ", ".join(f"'{each}'" for each in served.relations) + "."
            if served.relations else None)
    if len(candidates) > 1:
        options = ", ".join(f"'{name}!{each}'" for each in candidates)
        raise PostgrestError(
            300, "PGRST201",
            f"Could not embed because more than one relationship was found for "
            f"'{served.name}' and '{name}'",
            "Relationships: " + ", ".join(candidates),
            f"Try changing '{name}' to one of the following: {options}. Find the desired "
            "relationship in the 'details' key.")
    return candidates[0], inner


def _matches_hint(served: Served, relation_name: str, hint: str) -> bool:
    relation = served.relations[relation_name][0]
    names = {relation_name}
    for local, remote in relation.pairs:
        names.update((local.name, remote.name))
    if relation.secondary is not None:
        names.add(relation.secondary.name)
    return hint in names


# -- filters -----------------------------------------------------------------------------------


class _Budget:
    """How many conditions and values one request's filters may hold."""

    def __init__(self) -> None:
        self.conditions = 0

    def spend(self) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise parse_error(f"A request holds at most {MAX_CONDITIONS} filter conditions.")


def _condition(served: Served, name: str, op: str, raw: Any, parameter: str) -> Node:
    """One ``name op raw`` condition; values are coerced to the field's type."""
    if name not in served.vocabulary.fields:
        raise column_missing(served.name, name)
    if op == "in" and raw == []:
        # in.() matches nothing: a condition no row meets, NULL or not.
        info = served.vocabulary.fields[name]
        return And((Condition(info, OPERATORS["is"], "null"),
                    Condition(info, OPERATORS["is"], "not_null")))
    try:
        return make_condition(served.vocabulary, [name], op, raw, parameter,
                              from_text=not isinstance(raw, list))
    except BadRequest as exc:
        reason = exc.errors[0].message if exc.errors else exc.detail
        raise PostgrestError(400, "22P02", f"invalid input for {served.name}.{name}: "
                                           f"{reason}", f"the filter {parameter!r}") from None


def _filter_node(served: Served, name: str, operation: str, parameter: str,
                 budget: _Budget, value_list: list[str] | None = None) -> Node:
    """``name`` and ``[not.]op[(any|all)].value`` (or, from a tree, its parsed list)."""
    if "->" in name:
        raise not_implemented(f"JSON paths in filters ({name}) are not supported.")
    match = _OPERATION.match(operation)
    if match is None:
        raise parse_error(f'"failed to parse filter ({operation})" (line 1, column 1)',
                          f"the filter {parameter!r} must read [not.]operator.value")
    negated, op, modifier, value = match.groups()
    if op in UNSUPPORTED:
        budget.spend()
        found = _postgres_only(served, name, op, modifier, value, parameter)
        return Not(found) if negated else found
    if op not in OPERATOR_NAMES:
        raise parse_error(f'"failed to parse filter ({operation})" (line 1, column 1)',
                          f"unknown operator {op!r}")
    ours = OPERATOR_NAMES[op]
    node: Node
    if modifier in ("any", "all"):
        if op not in QUANTIFIABLE:
            raise parse_error(f'"failed to parse filter ({operation})"',
                              f"{op} takes no (any)/(all)")
        items = value_list if value_list is not None else _whole_list(value, "{", "}", "the list")
        if not items:
            raise parse_error(f'"failed to parse filter ({operation})"',
                              "(any)/(all) need at least one value")
        conditions = tuple(_single(served, name, ours, item, parameter, budget)
                           for item in items)
        node = conditions[0] if len(conditions) == 1 else (
            Or(conditions) if modifier == "any" else And(conditions))
    elif modifier is not None:
        raise not_implemented(f"A text search configuration ({modifier}) is not supported.")
    elif op == "in":
        items = value_list if value_list is not None else _whole_list(value, "(", ")",
                                                                        "the in list")
        budget.spend()
        node = _condition(served, name, "in", items, parameter)
    else:
        node = _single(served, name, ours, value, parameter, budget)
    return Not(node) if negated else node


def _postgres_only(served: Served, name: str, op: str, modifier: str | None, value: str,
                   parameter: str) -> Node:
    """A full text, array or range condition: PostgreSQL only (``query.postgres_ops``)."""
    if name not in served.vocabulary.fields:
        raise column_missing(served.name, name)
    if modifier in ("any", "all"):
        raise parse_error(f'"failed to parse filter ({parameter})"',
                          f"{op} takes no ({modifier})")
    try:
        return postgres_condition(served.engine.dialect.name, served.vocabulary.fields[name],
                                  op, modifier, value)
    except PostgresOnly as exc:
        raise not_implemented(str(exc), "Full-text, array and range operators need "
                                        "PostgreSQL's types.") from None
    except WrongType as exc:  # PostgreSQL's error, with PostgREST's status for it
        raise PostgrestError(404, "42883", f"operator does not exist: {exc}") from None
    except ValueError as exc:
        raise parse_error(f'"failed to parse filter ({parameter})"', str(exc)) from None


def _single(served: Served, name: str, op: str, value: str, parameter: str,
            budget: _Budget) -> Node:
    budget.spend()
    if op in ("like", "ilike"):
        value = value.replace("*", "%")
    return _condition(served, name, op, value, parameter)


def _whole_list(value: str, opening: str, closing: str, what: str) -> list[str]:
    """``value`` that is one list and nothing after it: ``(a,b)`` for ``in``, ``{a,b}``."""
    text = _Text(value, "filter")
    items = _list(text, opening, closing)
    if not text.at_end():
        raise text.fail(f"the end of {what}")
    return items


def _list(text: _Text, opening: str, closing: str) -> list[str]:
    """``(a,b,"c,d")``: unquoted items are trimmed; ``()`` is the empty list."""
    text.expect(opening)
    items: list[str] = []
    if text.peek() == closing:
        text.pos += 1
        return items
    while True:
        text.spaces()
        if text.peek() == '"':
            items.append(text.quoted())
            text.spaces()
        else:
            start = text.pos
            while not text.at_end() and text.peek() not in (",", closing):
                text.pos += 1
            items.append(text.text[start:text.pos].strip())
        if len(items) > MAX_LIST_VALUES:
            raise parse_error(f"A list holds at most {MAX_LIST_VALUES} values.")
        if text.peek() == ",":
            text.pos += 1
            continue
        text.expect(closing)
        return items


@dataclass(frozen=True)
class _Level:
    """Where a logic tree's names are looked up: a resource, the embeds ``select`` gives
    it (None: none), and whether a name may reach across a relation (``rel.col.op.v``)."""

    served: Served
    shape: Shape | None
    across: bool = True


def _tree(level: _Level, text: _Text, kind: str, negated: bool, depth: int,
          parameter: str, budget: _Budget) -> Node:
    """``(item,item,...)`` of an ``and``/``or``; items are filters or nested trees."""
    if depth > MAX_DEPTH:
        raise parse_error(f"Logic trees nest at most {MAX_DEPTH} levels deep.")
    text.expect("(")
    items: list[Node] = []
    while True:
        items.append(_tree_item(level, text, depth, parameter, budget))
        if text.peek() == ",":
            text.pos += 1
            continue
        text.expect(")")
        break
    node: Node = items[0] if len(items) == 1 else (
        And(tuple(items)) if kind == "and" else Or(tuple(items)))
    return Not(node) if negated else node


#: The words that end a tree item's path (``rel.col.eq.1``): an operator, or ``not``.
_PATH_END = frozenset(OPERATOR_NAMES) | UNSUPPORTED | {"not"}


def _tree_path(text: _Text, level: _Level) -> list[str]:
    """``name`` or ``rel.name`` (any depth): names up to the operator's dot; a first name
    that is a column of the level is the whole path."""
    path = [text.name()]
    if path[0] in level.served.vocabulary.fields:
        return path
    while text.peek() == ".":
        start = text.pos + 1
        end = start
        while end < len(text.text) and text.text[end].isalpha():
            end += 1
        if text.text[start:end] in _PATH_END and text.text[end:end + 1] in (".", "("):
            break
        text.pos += 1
        path.append(text.name())
    return path


def _tree_item(level: _Level, text: _Text, depth: int, parameter: str,
               budget: _Budget) -> Node:
    text.spaces()
    negated = text.peek(4) == "not."
    start = text.pos
    if negated:
        text.pos += 4
    for kind in ("and", "or"):
        if text.peek(len(kind) + 1) == kind + "(":
            text.pos += len(kind)
            return _tree(level, text, kind, negated, depth + 1, parameter, budget)
    text.pos = start
    path = _tree_path(text, level)
    served, wrap = _across(level, path[:-1], parameter)
    name = path[-1]
    text.expect(".")
    negated = text.peek(4) == "not."
    if negated:
        text.pos += 4
    op_start = text.pos
    while not text.at_end() and text.peek().isalpha():
        text.pos += 1
    op = text.text[op_start:text.pos]
    modifier = ""
    if text.peek() == "(":
        end = text.text.find(")", text.pos)
        if end < 0:
            raise text.fail("')'")
        modifier = text.text[text.pos:end + 1]
        text.pos = end + 1
    text.expect(".")
    prefix = ("not." if negated else "") + op + modifier + "."
    if op == "in":
        items = _list(text, "(", ")")
        return wrap(_filter_node(served, name, prefix, parameter, budget, items))
    if modifier in ("(any)", "(all)"):
        items = _list(text, "{", "}")
        return wrap(_filter_node(served, name, prefix, parameter, budget, items))
    text.spaces()
    if text.peek() == '"':
        value = text.quoted()
    else:
        start = text.pos
        while not text.at_end() and text.peek() not in (",", ")"):
            text.pos += 1
        value = text.text[start:text.pos]
    return wrap(_filter_node(served, name, prefix + value, parameter, budget))


def _across(level: _Level, path: Sequence[str], parameter: str,
            ) -> tuple[Served, Callable[[Node], Node]]:
    """The resource a tree item's ``rel.rel2.`` path leads to, and how its condition is
    wrapped: an ``Exists`` per relation (some related row the caller may see meets it).
    A name is an embed's label in ``select`` at that level, else a relation's name."""
    relations: list[str] = []
    served, shape = level.served, level.shape
    for name in path:
        if not level.across:
            raise not_implemented(f"Conditions across a relation ({parameter}) are not "
                                  "supported on writes.")
        found = [embed for embed in (shape.embeds if shape is not None else ())
                 if embed.label == name]
        if found:
            relation, shape = found[0].relation, found[0].shape
        else:
            relation, _ = resolve_embed(served, name, ())
            shape = None
        relations.append(relation)
        served = served.relations[relation][1]

    def wrap(node: Node) -> Node:
        for relation in reversed(relations):
            node = Exists(relation, node)
        return node

    return served, wrap


def _logic_tree(level: _Level, key: str, kind: str, negated: bool, value: str,
                budget: _Budget) -> Node:
    text = _Text(value, "logic tree")
    node = _tree(level, text, kind, negated, 1, key, budget)
    if not text.at_end():
        raise text.fail("the end of the logic tree")
    return node


def _embed_label(shape: Shape | None, name: str) -> bool:
    return shape is not None and any(embed.label == name for embed in shape.embeds)


def parse_filters(args: Sequence[tuple[str, str]], served: Served,
                  shape: Shape | None = None) -> Node | None:
    """The filters and logic trees of the query string on ``served``'s own rows, ANDed in
    order. With the request's ``shape`` (a read), the embedded parameters are left to
    ``parse_select``, and a tree may reach across a relation; without it (a write), they
    are refused."""
    budget = _Budget()
    level = _Level(served, shape, across=shape is not None)
    nodes: list[Node] = []
    for key, value in args:
        if not key or key in RESERVED:
            continue
        fields = served.vocabulary.fields
        last = key.rsplit(".", 1)[-1]
        if last in ("and", "or") and key not in fields:
            path = key.split(".")
            negated = path[:-1] == ["not"]
            if path[:-1] and not negated:
                if shape is None:
                    raise not_implemented(f"Logic trees on embedded resources ({key}) are "
                                          "not supported on writes.")
                continue
            nodes.append(_logic_tree(level, key, last, negated, value, budget))
            continue
        if last in RESERVED_LAST and key not in fields:
            if "." in key and shape is None:
                raise not_implemented(f"order, limit and offset on embedded resources ({key}) "
                                      "are not supported on writes.")
            continue
        if key not in fields and ("." in key or _embed_label(shape, key)):
            if shape is None:
                raise not_implemented(f"Filters on embedded resources ({key}) are not "
                                      "supported on writes.")
            continue
        nodes.append(_filter_node(served, key, value, key, budget))
    return all_of(nodes)


def all_of(nodes: Sequence[Node | None]) -> Node | None:
    kept = [node for node in nodes if node is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(tuple(kept))


# -- embedded parameters -----------------------------------------------------------------------


@dataclass
class _Draft:
    """What the embedded parameters give one embed, gathered before the shape is rebuilt."""

    where: list[Node] = field(default_factory=list)
    sort: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int | None = None
    inner: bool = False
    anti: bool = False


def _embedded(shape: Shape, served: Served, args: Sequence[tuple[str, str]]) -> Shape:
    """``shape`` with each embed's parameters: ``rel.col=op.v`` (any depth), ``rel.or=``,
    ``rel.and=``, ``rel.order=``, ``rel.limit=``, ``rel.offset=``, and ``rel=is.null`` /
    ``rel=not.is.null`` (at the top or inside an embed: ``rel.sub=is.null``)."""
    drafts: dict[tuple[int, ...], _Draft] = {}
    budget = _Budget()
    for key, value in args:
        if not key or key in RESERVED or key in served.vocabulary.fields:
            continue
        parts = key.split(".")
        last = parts[-1]
        if last in RESERVED_LAST:
            path = parts[:-1]
            negated = bool(path) and path[-1] == "not" and last in ("and", "or")
            if negated:
                path = path[:-1]
            if not path:
                continue
            for place in _find(shape, served, path, key):
                embed, target = _at(shape, served, place)
                draft = drafts.setdefault(place, _Draft())
                if last in ("and", "or"):
                    draft.where.append(_logic_tree(_Level(target, embed.shape), key, last,
                                                   negated, value, budget))
                elif last == "order":
                    draft.sort = parse_order(value, target)
                elif last == "limit":
                    draft.limit = parse_count(value, "limit")
                else:
                    draft.offset = parse_count(value, "offset")
            continue
        if len(parts) == 1 and not _embed_label(shape, key):
            continue  # a filter on the resource's own rows (or an unknown column)
        places = [()] if len(parts) == 1 else _find(shape, served, parts[:-1], key)
        for place in places:
            _embedded_filter(shape, served, place, last, key, value, drafts, budget)
    return _rebuilt(shape, drafts, ())


def _embedded_filter(shape: Shape, served: Served, place: tuple[int, ...], name: str,
                     key: str, value: str, drafts: dict[tuple[int, ...], _Draft],
                     budget: _Budget) -> None:
    """``name=value`` at the embed ``place`` (``()``: the top): a column's filter, or
    ``is.null`` / ``not.is.null`` on one of its embeds."""
    level_shape, target = (shape, served) if not place else _level_of(shape, served, place)
    if name in target.vocabulary.fields or not _embed_label(level_shape, name):
        if not place:
            return
        drafts.setdefault(place, _Draft()).where.append(
            _filter_node(target, name, value, key, budget))
        return
    word = value.strip().lower()
    if word not in ("is.null", "not.is.null"):
        raise PostgrestError(400, "PGRST120", f"Bad operator on the '{name}' embedded "
                                              "resource",
                             "Only is null or not is null filters are allowed on embedded "
                             "resources")
    for index, embed in enumerate(level_shape.embeds):
        if embed.label == name:
            draft = drafts.setdefault((*place, index), _Draft())
            if word == "is.null":
                draft.anti = True
            else:
                draft.inner = True


def _level_of(shape: Shape, served: Served, place: tuple[int, ...]) -> tuple[Shape, Served]:
    embed, target = _at(shape, served, place)
    return embed.shape, target


def _at(shape: Shape, served: Served, place: tuple[int, ...]) -> tuple[Embed, Served]:
    """The embed at ``place`` (indices from the top) and the resource it reads."""
    embed = shape.embeds[place[0]]
    target = served.relations[embed.relation][1]
    for index in place[1:]:
        embed = embed.shape.embeds[index]
        target = target.relations[embed.relation][1]
    return embed, target


def _find(shape: Shape, served: Served, path: Sequence[str], key: str,
          ) -> list[tuple[int, ...]]:
    """Every embed ``path`` names (labels, one per level); 400 ``PGRST108`` when none."""
    places: list[tuple[int, ...]] = [()]
    for depth, name in enumerate(path):
        found: list[tuple[int, ...]] = []
        for place in places:
            level = shape if not place else _level_of(shape, served, place)[0]
            found += [(*place, index) for index, embed in enumerate(level.embeds)
                      if embed.label == name]
        if not found:
            shown = ".".join(path[:depth + 1])
            raise PostgrestError(400, "PGRST108", f"'{shown}' is not an embedded resource "
                                                  "in this request",
                                 f"the parameter {key!r}",
                                 f"Verify that '{shown}' is included in the 'select' query "
                                 "parameter.")
        places = found
    return places


def _rebuilt(shape: Shape, drafts: dict[tuple[int, ...], _Draft],
             place: tuple[int, ...]) -> Shape:
    embeds = []
    for index, embed in enumerate(shape.embeds):
        here = (*place, index)
        draft = drafts.get(here, _Draft())
        embeds.append(replace(
            embed, shape=_rebuilt(embed.shape, drafts, here), where=all_of(draft.where),
            sort=draft.sort, limit=draft.limit, offset=draft.offset,
            inner=embed.inner or draft.inner, anti=draft.anti))
    return replace(shape, embeds=tuple(embeds))


# -- order and page ----------------------------------------------------------------------------


def parse_order(raw: str | None, served: Served) -> tuple[SortKey, ...]:
    """``a.desc.nullslast,b``: NULLs by default as PostgreSQL puts them (last ascending,
    first descending), on every database."""
    if raw is None or not raw.strip():
        return ()
    keys: list[SortKey] = []
    text = _Text(raw, "order")
    while True:
        name = text.name()
        if text.peek() == "(" or text.peek(2) == "->":
            raise not_implemented(f"Ordering by an embedded resource or a JSON path ({name}) "
                                  "is not supported.")
        words: list[str] = []
        while text.peek() == ".":
            text.pos += 1
            start = text.pos
            while not text.at_end() and text.peek().isalpha():
                text.pos += 1
            words.append(text.text[start:text.pos])
        if not set(words) <= {"asc", "desc", "nullsfirst", "nullslast"} or len(words) > 2:
            raise text.fail("asc, desc, nullsfirst or nullslast")
        info = served.vocabulary.fields.get(name)
        if info is None:
            raise column_missing(served.name, name)
        descending = "desc" in words
        nulls: NullsOrder = "first" if "nullsfirst" in words else \
            "last" if "nullslast" in words else ("first" if descending else "last")
        if all(key.field is not info for key in keys):
            keys.append(SortKey(info, descending, nulls))
        text.spaces()
        if text.at_end():
            return tuple(keys)
        text.expect(",")


def parse_count(raw: str | None, name: str) -> int | None:
    """``limit`` / ``offset``: a non-negative integer."""
    if raw is None:
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise parse_error(f'"failed to parse {name} parameter ({raw})" (line 1, column 1)',
                          f"{name} must be a non-negative integer")
    return int(text)


def parse_columns(raw: str | None, served: Served) -> list[str] | None:
    """``columns="a","b"`` (or ``a,b``): the keys of a write's body to use."""
    if raw is None:
        return None
    text = _Text(raw, "columns parameter")
    names: list[str] = []
    while True:
        name = text.name()
        if name not in served.info.fields:
            raise PostgrestError(400, "PGRST204", f"Could not find the '{name}' column of "
                                                  f"'{served.name}' in the schema cache")
        names.append(name)
        text.spaces()
        if text.at_end():
            return names
        text.expect(",")

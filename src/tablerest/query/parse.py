"""Surface syntaxes -> ``Query``: URL parameters here; the QUERY body joins them later.

Every name is looked up in the resource's ``Vocabulary``; anything unknown is a 400 that
says which parameter and why. Nothing from the request reaches SQL or ``getattr``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..coerce import coerce, parse_bool
from ..errors import BadRequest, FieldError
from ..schema import FieldInfo, RelationInfo
from .model import OPERATORS, And, Condition, Node, Query, SortKey, Vocabulary

RESERVED = frozenset({"sort", "limit", "offset", "count", "fields", "include", "cursor"})
MAX_LIST_VALUES = 1000


def _bad(parameter: str, message: str) -> BadRequest:
    return BadRequest(
        f"The query parameter {parameter!r} is invalid: {message}.",
        [FieldError(parameter, message)],
    )


def split_list(values: Sequence[str]) -> list[str]:
    """``a,b`` and repeated parameters alike -> ``["a", "b"]``; blanks dropped."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def resolve_field(
    vocabulary: Vocabulary, path: Sequence[str], parameter: str
) -> tuple[FieldInfo, RelationInfo | None]:
    """``["name"]`` or ``["author", "name"]`` -> the field (and relation) it names."""
    if len(path) == 1:
        info = vocabulary.fields.get(path[0])
        if info is None:
            raise _bad(parameter, f"there is no field {path[0]!r} to filter on")
        return info, None
    if len(path) == 2:
        relation = vocabulary.relations.get(path[0])
        if relation is None and path[0] in vocabulary.fields:
            known = ", ".join(sorted(OPERATORS))
            raise _bad(parameter, f"unknown operator {path[1]!r}; use one of {known}")
        if relation is None:
            raise _bad(parameter, f"there is no field or relation {path[0]!r}")
        info = relation[1].get(path[1])
        if info is None:
            raise _bad(parameter, f"the relation {path[0]!r} has no field {path[1]!r}")
        return info, relation[0]
    raise _bad(parameter, "filters follow at most one relation (relation__field__op)")


def make_condition(
    vocabulary: Vocabulary, path: Sequence[str], op_name: str, raw: Any, parameter: str,
    from_text: bool,
) -> Condition:
    """One filter; ``from_text`` says ``raw`` is URL text (lists are comma-separated)."""
    info, relation = resolve_field(vocabulary, path, parameter)
    op = OPERATORS.get(op_name)
    if op is None:
        known = ", ".join(sorted(OPERATORS))
        raise _bad(parameter, f"unknown operator {op_name!r}; use one of {known}")
    try:
        if op.kind == "bool":
            value: Any = parse_bool(raw)
        elif op.kind == "list":
            items = split_list([raw]) if from_text and isinstance(raw, str) else raw
            if not isinstance(items, list) or not items:
                raise ValueError("expected a non-empty list of values")
            if len(items) > MAX_LIST_VALUES:
                raise ValueError(f"at most {MAX_LIST_VALUES} values are allowed")
            value = [coerce(info, item) for item in items]
        elif op.kind == "pattern":
            if info.python_type is not str:
                raise ValueError(f"{op_name} applies to text fields only")
            if not isinstance(raw, str):
                raise ValueError("expected a string pattern")
            value = raw
        else:
            value = None if raw is None else coerce(info, raw)
    except ValueError as exc:
        raise _bad(parameter, str(exc)) from None
    return Condition(info, op, value, relation)


def parse_sort(vocabulary: Vocabulary, keys: Sequence[str], parameter: str) -> tuple[SortKey, ...]:
    sort: list[SortKey] = []
    for key in keys:
        descending = key.startswith("-")
        name = key[1:] if descending or key.startswith("+") else key
        info = vocabulary.fields.get(name)
        if info is None:
            raise _bad(parameter, f"there is no field {name!r} to sort by")
        if any(existing.field is info for existing in sort):
            raise _bad(parameter, f"the field {name!r} appears twice")
        sort.append(SortKey(info, descending))
    return tuple(sort)


def parse_fields(vocabulary: Vocabulary, names: Sequence[str], parameter: str) -> tuple[str, ...]:
    for name in names:
        if name not in vocabulary.fields:
            raise _bad(parameter, f"there is no field {name!r}")
    return tuple(dict.fromkeys(names))


def parse_limit(vocabulary: Vocabulary, raw: Any, parameter: str) -> int:
    if raw is None:
        return vocabulary.default_limit
    try:
        limit = int(raw) if not isinstance(raw, bool) else -1
    except (TypeError, ValueError):
        raise _bad(parameter, f"expected a positive integer, got {raw!r}") from None
    if limit < 1:
        raise _bad(parameter, f"expected a positive integer, got {raw!r}")
    return min(limit, vocabulary.max_limit)


def parse_offset(raw: Any, parameter: str) -> int | None:
    if raw is None:
        return None
    try:
        offset = int(raw) if not isinstance(raw, bool) else -1
    except (TypeError, ValueError):
        raise _bad(parameter, f"expected an integer of 0 or more, got {raw!r}") from None
    if offset < 0 or offset > 2**62:
        raise _bad(parameter, f"expected an integer of 0 or more, got {raw!r}")
    return offset


def parse_url(args: Mapping[str, list[str]], vocabulary: Vocabulary) -> Query:
    """Parse URL parameters (each name -> its values, in order) into a ``Query``."""

    def single(name: str) -> str | None:
        values = args.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise _bad(name, "give it once")
        return values[0]

    conditions: list[Node] = []
    for name, values in args.items():
        if name in RESERVED:
            continue
        parts = name.split("__")
        op_name = "eq"
        if len(parts) > 1 and parts[-1] in OPERATORS:
            op_name = parts.pop()
        conditions.extend(
            make_condition(vocabulary, parts, op_name, value, name, from_text=True)
            for value in values
        )
    where: Node | None = None
    if len(conditions) == 1:
        where = conditions[0]
    elif conditions:
        where = And(tuple(conditions))
    count = single("count")
    try:
        want_count = True if count is None else parse_bool(count)
    except ValueError as exc:
        raise _bad("count", str(exc)) from None
    fields = args.get("fields")
    return Query(
        where=where,
        sort=parse_sort(vocabulary, split_list(args.get("sort", [])), "sort"),
        limit=parse_limit(vocabulary, single("limit"), "limit"),
        offset=parse_offset(single("offset"), "offset"),
        cursor=single("cursor"),
        fields=parse_fields(vocabulary, split_list(fields), "fields") if fields else None,
        include=tuple(split_list(args.get("include", []))),
        count=want_count,
    )

"""Surface syntaxes -> ``Query``: URL parameters, and the JSON body of ``QUERY /things``.

Every name is looked up in the resource's ``Vocabulary``; anything unknown is a 400 that
says which parameter (or which place in the body) and why. Nothing from the request reaches
SQL or ``getattr``.

The body (SPEC section 2)::

    {"where": W, "order_by": ["-email", "name"], "limit": 20, "offset": 0, "cursor": "...",
     "fields": ["id", "name"], "include": ["author", "messages.author"], "count": "exact"}

W is an object whose keys are ANDed: a field name (``"name"``, or ``"author.name"`` one
relation away) whose value is a literal (equality; ``null`` means IS NULL) or an object of
operators (``{"age": {"gte": 18, "lt": 65}}``, ``"in"`` taking a JSON list), or ``"and"`` /
``"or"`` (a non-empty list of W), or ``"not"`` (one W). ``"orderby": "email desc, name"`` (the
Tiddly seed's form) is accepted for ``order_by``. W nests at most ``MAX_DEPTH`` levels and
holds at most ``MAX_CONDITIONS`` conditions.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from ..coerce import coerce, parse_bool
from ..errors import BadRequest, FieldError
from ..schema import FieldInfo, RelationInfo
from .model import (
    IS_VALUES,
    MAX_INCLUDE_DEPTH,
    OPERATORS,
    And,
    Condition,
    Include,
    Node,
    Not,
    Or,
    Query,
    SortKey,
    Vocabulary,
)

RESERVED = frozenset({"sort", "limit", "offset", "count", "fields", "include", "cursor"})
MAX_LIST_VALUES = 1000
#: How deep ``and`` / ``or`` / ``not`` may nest in a body's ``where`` (the top object is 1).
MAX_DEPTH = 8
#: How many field conditions one body's ``where`` may hold.
MAX_CONDITIONS = 100
#: How many values (``in`` lists included) one body's ``where`` may bind.
MAX_VALUES = 5000
BODY_KEYS = ("where", "order_by", "orderby", "limit", "offset", "cursor", "fields", "include",
             "count")
#: Operators whose value is a regular expression, and how long one may be.
REGEX_OPERATORS = frozenset({"match", "imatch"})
MAX_REGEX_LENGTH = 200
_PORTABLE_REGEX = re.compile(r"\(\?P|\(\?<[A-Za-z]|\{,|\[:")
_NESTED_QUANTIFIER = re.compile(r"[*+?}]\)*\)[*+?{]")
#: The URL parameters a body query takes: the page, so that ``next`` can be a URL.
BODY_URL_PARAMETERS = frozenset({"cursor", "offset"})
CountStrategy = Literal["exact", "estimated", "none"]


def _bad(parameter: str, message: str) -> BadRequest:
    return BadRequest(
        f"The query parameter {parameter!r} is invalid: {message}.",
        [FieldError(parameter, message)],
    )


_COUNTS: dict[str, CountStrategy] = {"exact": "exact", "estimated": "estimated",
                                     "none": "none"}
_COUNT_WORDS = "exact, estimated, none"


def parse_count(raw: str | bool) -> CountStrategy:
    """``exact``, ``estimated`` or ``none``; true and false (the older spelling) are
    ``exact`` and ``none``."""
    if isinstance(raw, str) and raw.strip().lower() in _COUNTS:
        return _COUNTS[raw.strip().lower()]
    try:
        return "exact" if parse_bool(raw) else "none"
    except ValueError:
        raise ValueError(f"expected one of {_COUNT_WORDS} (or true or false), got "
                         f"{raw!r}") from None


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
    raise _bad(parameter, "filters follow at most one relation (relation__field__op, or "
                          "\"relation.field\" in a body)")


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
        elif op.kind == "is":
            value = _is_word(info, raw)
        elif op.kind == "list":
            items = split_list([raw]) if from_text and isinstance(raw, str) else raw
            if not isinstance(items, list) or not items:
                raise ValueError("expected a non-empty list of values")
            if len(items) > MAX_LIST_VALUES:
                raise ValueError(f"at most {MAX_LIST_VALUES} values are allowed")
            if any(item is None for item in items):
                raise ValueError("null is not a value to match; use isnull")
            value = [coerce(info, item) for item in items]
        elif op.kind == "pattern":
            if info.python_type is not str:
                raise ValueError(f"{op_name} applies to text fields only")
            if not isinstance(raw, str):
                raise ValueError("expected a string pattern")
            value = coerce(info, raw)
            if op.name in REGEX_OPERATORS:
                check_regex(value)
        elif raw is None:
            if op_name not in ("eq", "ne"):
                raise ValueError(f"{op_name} needs a value, not null")
            value = None
        else:
            value = coerce(info, raw)
    except ValueError as exc:
        raise _bad(parameter, str(exc)) from None
    return Condition(info, op, value, relation)


def check_regex(pattern: str) -> None:
    """``ValueError`` unless ``pattern`` is a regular expression both engines read alike:
    Python's ``re`` (SQLite's REGEXP) compiles it, it uses no construct only one of them
    has, and it nests no quantifier (``(a+)+``), whose backtracking could hold a worker:
    SQLite cannot interrupt a function it calls."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(f"a regular expression has at most {MAX_REGEX_LENGTH} characters")
    if _PORTABLE_REGEX.search(pattern):
        raise ValueError("named groups, {,n} and [[:class:]] are not available on every "
                         "database; write the pattern without them")
    if _NESTED_QUANTIFIER.search(pattern):
        raise ValueError("a quantified group may not hold a quantifier, as in (a+)+")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            re.compile(pattern)
        except (re.error, Warning) as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None


def _is_word(info: FieldInfo, raw: Any) -> str:
    """The ``is`` word ``raw`` names (any case; JSON null, true and false too)."""
    if raw is None or isinstance(raw, bool):
        word = "null" if raw is None else str(raw).lower()
    elif isinstance(raw, str):
        word = raw.lower()
    else:
        word = ""
    if word not in IS_VALUES:
        raise ValueError(f"expected one of {', '.join(IS_VALUES)}, got {raw!r}")
    if word in ("true", "false", "unknown") and info.python_type is not bool:
        raise ValueError(f"{word} applies to true/false fields only; use null or not_null")
    return word


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


def parse_include(vocabulary: Vocabulary, names: Sequence[str], parameter: str,
                  ) -> tuple[Include, ...]:
    """Relations to embed: ``author``, and dotted paths (``messages.author``) that embed the
    relations of embedded items, at most ``MAX_INCLUDE_DEPTH`` relations deep. Paths that
    share a start share its include: ``messages.author,messages.tags`` reads messages once.
    """
    tree: dict[str, Any] = {}
    for name in names:
        path = name.split(".")
        if len(path) > MAX_INCLUDE_DEPTH:
            raise _bad(parameter, f"{name!r} is nested {len(path)} relations deep; includes "
                                  f"nest at most {MAX_INCLUDE_DEPTH} deep")
        here: Vocabulary | None = vocabulary
        branch = tree
        for depth, part in enumerate(path):
            if here is None:
                raise _bad(parameter, f"{name!r} cannot be followed past "
                                      f"{'.'.join(path[:depth])!r}")
            _check_relation(here, part, name, ".".join(path[:depth]), parameter)
            branch = branch.setdefault(part, {})
            here = here.related(part) if here.related is not None and \
                depth + 1 < len(path) else None
    return _includes(tree)


def _check_relation(vocabulary: Vocabulary, part: str, name: str, parent: str,
                    parameter: str) -> None:
    if part in vocabulary.relations:
        return
    where = f" of {parent!r}" if parent else ""
    if not part:
        raise _bad(parameter, f"{name!r} has an empty relation name")
    if part in vocabulary.fields:
        raise _bad(parameter, f"{part!r}{where} is a field, not a relation")
    known = ", ".join(sorted(vocabulary.relations)) or "none"
    raise _bad(parameter, f"there is no relation {part!r}{where} to include in {name!r} "
                          f"(relations: {known})")


def _includes(tree: Mapping[str, Any]) -> tuple[Include, ...]:
    return tuple(Include(name, include=_includes(children))
                 for name, children in tree.items())


def parse_limit(vocabulary: Vocabulary, raw: Any, parameter: str) -> int:
    requested = parse_requested_limit(raw, parameter)
    return vocabulary.default_limit if requested is None else min(requested,
                                                                   vocabulary.max_limit)


def parse_requested_limit(raw: Any, parameter: str) -> int | None:
    if raw is None:
        return None
    try:
        limit = int(raw) if not isinstance(raw, bool | float) else -1
    except (TypeError, ValueError):
        raise _bad(parameter, f"expected a positive integer, got {raw!r}") from None
    if limit < 1:
        raise _bad(parameter, f"expected a positive integer, got {raw!r}")
    return min(limit, 2**62)  # JSON lists clamp it further, to the resource's maximum


def parse_offset(raw: Any, parameter: str) -> int | None:
    if raw is None:
        return None
    try:
        offset = int(raw) if not isinstance(raw, bool | float) else -1
    except (TypeError, ValueError):
        raise _bad(parameter, f"expected an integer of 0 or more, got {raw!r}") from None
    if offset < 0 or offset > 2**62:
        raise _bad(parameter, f"expected an integer of 0 or more, got {raw!r}")
    return offset


def _check_page(cursor: str | None, offset: int | None, parameter: str = "cursor") -> None:
    if cursor is not None and offset is not None:
        raise _bad(parameter, "give either a cursor or an offset, not both (a cursor already "
                              "says where the page starts)")


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
        if OPERATORS[op_name].kind == "list" and len(values) > 1:
            values = [",".join(values)]  # in=a&in=b is in=a,b, as OpenAPI clients send it
        conditions.extend(
            make_condition(vocabulary, parts, op_name, value, name, from_text=True)
            for value in values
        )
    where: Node | None = None
    if len(conditions) == 1:
        where = conditions[0]
    elif conditions:
        where = And(tuple(conditions))
    raw_count = single("count")
    try:
        want_count = None if raw_count is None else parse_count(raw_count)
    except ValueError as exc:
        raise _bad("count", str(exc)) from None
    fields = args.get("fields")
    cursor, offset = single("cursor"), parse_offset(single("offset"), "offset")
    _check_page(cursor, offset)
    raw_limit = single("limit")
    return Query(
        where=where,
        sort=parse_sort(vocabulary, split_list(args.get("sort", [])), "sort"),
        limit=parse_limit(vocabulary, raw_limit, "limit"),
        offset=offset,
        cursor=cursor,
        fields=parse_fields(vocabulary, split_list(fields), "fields") if fields else None,
        include=parse_include(vocabulary, split_list(args.get("include", [])), "include"),
        count=want_count,
        requested_limit=parse_requested_limit(raw_limit, "limit"),
    )


# -- the QUERY body --------------------------------------------------------------------------


def _body_bad(place: str, message: str) -> BadRequest:
    return BadRequest(f"The query body is invalid at {place!r}: {message}.",
                      [FieldError(place, message)])


class _Budget:
    """Counts what a body's ``where`` asks for, against the limits above."""

    def __init__(self) -> None:
        self.conditions = 0
        self.values = 0

    def spend(self, condition: Condition, place: str) -> None:
        self.conditions += 1
        self.values += len(condition.value) if isinstance(condition.value, list) else 1
        if self.conditions > MAX_CONDITIONS:
            raise _body_bad(place, f"a where holds at most {MAX_CONDITIONS} conditions")
        if self.values > MAX_VALUES:
            raise _body_bad(place, f"a where binds at most {MAX_VALUES} values")


def _rewrap(place: str, exc: BadRequest) -> BadRequest:
    """A URL-worded error from a shared helper, reworded for the place in the body."""
    message = exc.errors[0].message if exc.errors else exc.detail
    return _body_bad(place, message)


def _field_path(vocabulary: Vocabulary, key: str, place: str) -> list[str]:
    if key in vocabulary.fields or "." not in key:
        return [key]
    parts = key.split(".")
    if len(parts) == 2 and parts[0] in vocabulary.fields and parts[0] not in \
            vocabulary.relations:
        raise _body_bad(place, f"{parts[0]!r} is a field, not a relation: only relations "
                               "have fields of their own")
    return parts


def _field_conditions(vocabulary: Vocabulary, key: str, value: Any, place: str,
                      budget: _Budget) -> list[Node]:
    path = _field_path(vocabulary, key, place)
    if isinstance(value, list):
        raise _body_bad(place, 'a list is not a value to compare with: use {"in": [...]}')
    operators = value if isinstance(value, dict) else {"eq": value}
    if not operators:
        raise _body_bad(place, "expected a value, or an object of operators such as "
                               '{"gte": 18}')
    found: list[Node] = []
    for op_name, raw in operators.items():
        here = place if operators is not value else f"{place}.{op_name}"
        if isinstance(raw, dict):
            raise _body_bad(here, f"expected a value for {op_name!r}, got an object")
        try:
            condition = make_condition(vocabulary, path, op_name, raw, here, from_text=False)
        except BadRequest as exc:
            raise _rewrap(here, exc) from None
        budget.spend(condition, here)
        found.append(condition)
    return found


def _where(vocabulary: Vocabulary, node: Any, place: str, depth: int, budget: _Budget) -> Node:
    if depth > MAX_DEPTH:
        raise _body_bad(place, f"conditions nest at most {MAX_DEPTH} levels deep")
    if not isinstance(node, dict):
        raise _body_bad(place, f"expected an object of conditions, got {_json_type(node)}")
    if not node:
        raise _body_bad(place, "expected at least one condition")
    items: list[Node] = []
    for key, value in node.items():
        here = f"{place}.{key}"
        if key in ("and", "or"):
            if not isinstance(value, list) or not value:
                raise _body_bad(here, "expected a non-empty list of conditions")
            children = tuple(_where(vocabulary, item, f"{here}[{index}]", depth + 1, budget)
                             for index, item in enumerate(value))
            if len(children) == 1:
                items.append(children[0])
            else:
                items.append(And(children) if key == "and" else Or(children))
        elif key == "not":
            items.append(Not(_where(vocabulary, value, here, depth + 1, budget)))
        else:
            items.extend(_field_conditions(vocabulary, key, value, here, budget))
    return items[0] if len(items) == 1 else And(tuple(items))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _sort_keys(raw: Any, place: str) -> list[str]:
    """``["-email", "name"]``, ``"-email,name"`` or ``"email desc, name"`` -> sort keys."""
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        items = raw
    else:
        raise _body_bad(place, f'expected a list of field names such as ["-email", "name"], '
                               f"got {_json_type(raw)}")
    keys: list[str] = []
    for item in items:
        words = item.split()
        if not words:
            continue
        name, direction = words[0], words[1].lower() if len(words) == 2 else None
        if len(words) > 2 or direction not in (None, "asc", "desc") or (
                direction is not None and name.startswith(("-", "+"))):
            raise _body_bad(place, f"cannot read {item.strip()!r}: write 'name', '-name', "
                                   "'name asc' or 'name desc'")
        keys.append(f"-{name}" if direction == "desc" else name)
    return keys


def _names(raw: Any, place: str) -> list[str]:
    if isinstance(raw, str):
        return split_list([raw])
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return [item.strip() for item in raw if item.strip()]
    raise _body_bad(place, f"expected a list of names, got {_json_type(raw)}")


def _integer(raw: Any, place: str) -> Any:
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int)):
        raise _body_bad(place, f"expected an integer, got {_json_type(raw)}")
    return raw


def parse_body(body: Any, vocabulary: Vocabulary,
               args: Mapping[str, list[str]] | None = None) -> Query:
    """Parse a QUERY body into a ``Query``; ``cursor`` or ``offset`` in the URL (``args``),
    as a body query's ``next`` carries them, replace the body's page."""
    if not isinstance(body, dict):
        raise BadRequest(f"The query body must be a JSON object, got {_json_type(body)}.")
    unknown = [key for key in body if key not in BODY_KEYS]
    if unknown:
        raise _body_bad(unknown[0], f"unknown key; a query body takes {', '.join(BODY_KEYS)}")
    if "order_by" in body and "orderby" in body:
        raise _body_bad("orderby", "give order_by or orderby, not both")
    raw_where = body.get("where")
    where = None if raw_where is None or raw_where == {} else \
        _where(vocabulary, raw_where, "where", 1, _Budget())
    sort_place = "orderby" if "orderby" in body else "order_by"
    raw_sort = body.get(sort_place)
    try:
        sort = () if raw_sort is None else parse_sort(
            vocabulary, _sort_keys(raw_sort, sort_place), sort_place)
        raw_limit = _integer(body.get("limit"), "limit")
        limit = parse_limit(vocabulary, raw_limit, "limit")
        offset = parse_offset(_integer(body.get("offset"), "offset"), "offset")
        fields = body.get("fields")
        shown = None if fields is None else parse_fields(vocabulary, _names(fields, "fields"),
                                                         "fields")
        include = () if body.get("include") is None else parse_include(
            vocabulary, _names(body["include"], "include"), "include")
    except BadRequest as exc:
        place = exc.errors[0].field if exc.errors else "body"
        raise _rewrap(place, exc) from None
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise _body_bad("cursor", f"expected a string, got {_json_type(cursor)}")
    if cursor is not None and offset is not None:
        raise _body_bad("cursor", "give either a cursor or an offset, not both (a cursor "
                                  "already says where the page starts)")
    raw_count = body.get("count")
    if raw_count is not None and not isinstance(raw_count, bool) and not (
            isinstance(raw_count, str) and raw_count in _COUNTS):
        shown_count = repr(raw_count) if isinstance(raw_count, str) else _json_type(raw_count)
        raise _body_bad("count", f"expected one of {_COUNT_WORDS} (or true or false), got "
                                 f"{shown_count}")
    count = None if raw_count is None else parse_count(raw_count)
    query = Query(where=where, sort=sort, limit=limit, offset=offset, cursor=cursor,
                  fields=shown or None, include=include, count=count,
                  requested_limit=parse_requested_limit(raw_limit, "limit"))
    return _with_url_page(query, args or {})


def _with_url_page(query: Query, args: Mapping[str, list[str]]) -> Query:
    extra = sorted(name for name in args if name not in BODY_URL_PARAMETERS)
    if extra:
        raise _bad(extra[0], "a query with a body takes its parameters in the body; the URL "
                             "may only carry cursor or offset")
    for name, values in args.items():
        if len(values) > 1:
            raise _bad(name, "give it once")
    if not args:
        return query
    cursor = args["cursor"][0] if "cursor" in args else None
    offset = parse_offset(args["offset"][0], "offset") if "offset" in args else None
    _check_page(cursor, offset)
    return replace(query, cursor=cursor, offset=offset)

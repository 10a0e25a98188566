"""Filter operators only PostgreSQL has: full text search and array, range and JSONB
containment (PostgREST's ``fts plfts phfts wfts`` and ``cs cd ov sl sr nxr nxl adj``).

They are ``model.Operator`` values that the one compiler (``compile.py``) turns into SQL like
any other, but they live in a registry of their own, ``POSTGRES_OPERATORS``, not in
``model.OPERATORS``: that one is the vocabulary of every database (tablerest's own filters,
the OpenAPI document, the HTML filter form), and these have no meaning on SQLite. A dialect
parser that offers them asks ``condition`` for one, with the served engine's dialect name:
on any other database it raises ``PostgresOnly``, which the dialect answers as it answers a
feature it lacks.

Values are bound parameters, never SQL text: the search text is ``to_tsquery(:v)``, a text
search configuration is bound too and cast to ``regconfig`` (and must first read as a plain
identifier), and an array, range or JSON value is bound as text and cast to the column's own
type, as PostgreSQL reads an untyped literal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.ranges import AbstractMultiRange, AbstractRange

from ..schema import FieldInfo, RelationInfo
from .model import Condition, Operator

#: The dialects (SQLAlchemy names) these operators run on.
DIALECTS = frozenset({"postgresql"})
#: A text search configuration name, as ``fts(english)`` writes it.
CONFIG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
#: The longest value one of these operators takes.
MAX_VALUE_LENGTH = 10_000

POSTGRES_OPERATORS: dict[str, Operator] = {}
#: What each operator applies to: "text" (text and tsvector columns), "contain" (arrays,
#: ranges and JSONB), "overlap" (arrays and ranges), "range" (ranges only).
_APPLIES: dict[str, str] = {}

Build = Callable[[ColumnElement[Any], Any], ColumnElement[bool]]


class PostgresOnly(Exception):
    """The operator exists, but not on this database."""


class WrongType(ValueError):
    """The column's type has no such operator (PostgreSQL's ``operator does not exist``)."""


def postgres_operator(name: str, applies: str) -> Callable[[Build], Build]:
    """Register a PostgreSQL-only operator. Its value is a list of bound parameters
    (``kind="list"``): ``[text]``, or ``[config, text]`` for full text search."""

    def register(build: Build) -> Build:
        if name in POSTGRES_OPERATORS:
            raise ValueError(f"The filter operator {name!r} is already registered.")
        POSTGRES_OPERATORS[name] = Operator(name, "list", build)
        _APPLIES[name] = applies
        return build

    return register


# -- full text search --------------------------------------------------------------------------


def _text(param: Any) -> ColumnElement[Any]:
    """A bound parameter read as text, whatever the column's type (it was bound as one)."""
    return sa.type_coerce(param, sa.Text())


def _search(function: str) -> Build:
    def build(column: ColumnElement[Any], params: Any) -> ColumnElement[bool]:
        *config, text = params
        arguments = [sa.cast(_text(config[0]), postgresql.REGCONFIG)] if config else []
        query = getattr(sa.func, function)(*arguments, _text(text))
        document = column
        if not isinstance(column.type, postgresql.TSVECTOR):
            document = sa.func.to_tsvector(*arguments, column)
        result: ColumnElement[bool] = document.op("@@", is_comparison=True)(query)
        return result

    return build


for _name, _function in (("fts", "to_tsquery"), ("plfts", "plainto_tsquery"),
                         ("phfts", "phraseto_tsquery"), ("wfts", "websearch_to_tsquery")):
    postgres_operator(_name, "text")(_search(_function))


# -- arrays, ranges, JSONB -----------------------------------------------------------------------


def _compare(sql_operator: str) -> Build:
    def build(column: ColumnElement[Any], params: Any) -> ColumnElement[bool]:
        value = sa.cast(_text(params[0]), column.type)
        result: ColumnElement[bool] = column.op(sql_operator, is_comparison=True)(value)
        return result

    return build


for _name, _sql, _applies in (("cs", "@>", "contain"), ("cd", "<@", "contain"),
                              ("ov", "&&", "overlap"), ("sl", "<<", "range"),
                              ("sr", ">>", "range"), ("nxr", "&<", "range"),
                              ("nxl", "&>", "range"), ("adj", "-|-", "range")):
    postgres_operator(_name, _applies)(_compare(_sql))


# -- conditions --------------------------------------------------------------------------------


def _kinds(info: FieldInfo) -> set[str]:
    """What the operators can do with ``info``'s column type."""
    column_type = info.column.type
    if isinstance(column_type, postgresql.TSVECTOR) or info.python_type is str:
        return {"text"}
    if isinstance(column_type, sa.ARRAY):
        return {"contain", "overlap"}
    if isinstance(column_type, AbstractRange | AbstractMultiRange):
        return {"contain", "overlap", "range"}
    if isinstance(column_type, postgresql.JSONB):
        return {"contain"}
    return set()


def _applies_to(name: str) -> str:
    return {"text": "text and tsvector columns", "contain": "arrays, ranges and jsonb",
            "overlap": "arrays and ranges", "range": "ranges"}[_APPLIES[name]]


def condition(dialect: str, info: FieldInfo, name: str, config: str | None, value: str,
              relation: RelationInfo | None = None) -> Condition:
    """``info name value`` (``config``: ``fts(config)``) on a database of ``dialect``.

    :raises PostgresOnly: the database is not PostgreSQL.
    :raises WrongType: the column's type has no such operator.
    :raises ValueError: the configuration is not a plain name, or the value is too long.
    """
    op = POSTGRES_OPERATORS[name]
    if dialect not in DIALECTS:
        raise PostgresOnly(f"The operator {name!r} needs PostgreSQL; this database is "
                           f"{dialect}.")
    if _APPLIES[name] not in _kinds(info):
        raise WrongType(f"{name} applies to {_applies_to(name)}; {info.name!r} is "
                        f"{info.column.type}")
    if config is not None and _APPLIES[name] != "text":
        raise ValueError(f"{name} takes no text search configuration")
    if config is not None and not CONFIG_NAME.match(config):
        raise ValueError(f"{config!r} is not a text search configuration name")
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(f"a value has at most {MAX_VALUE_LENGTH} characters")
    values = (value,) if config is None else (config, value)
    return Condition(info, op, values, relation)

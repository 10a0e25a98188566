"""Models (or plain tables) -> field and relationship descriptions. Pure: no Flask here.

Everything a request may name — a field to filter on, a key to sort by, a relation to
follow — is looked up in these descriptions, never on the model itself.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Mapper, RelationshipDirection
from sqlalchemy.sql.schema import Column, Table

RelationKind = Literal["to_one", "to_many", "many_to_many"]

TIMESTAMP_NAMES = frozenset({"created_at", "updated_at"})


@dataclass(frozen=True)
class FieldInfo:
    """One column as the API sees it."""

    name: str
    column: Column[Any]
    python_type: type
    nullable: bool
    has_default: bool
    primary_key: bool
    max_length: int | None = None
    format: str | None = None  # "email", "uuid", "date", "date-time" ...
    is_timestamp: bool = False
    is_password: bool = False
    #: Integers: the range the column holds (see ``for_dialect``). Decimals: digits allowed
    #: before and after the point.
    int_range: tuple[int, int] | None = None
    integer_digits: int | None = None
    decimal_places: int | None = None
    #: Text: the fewest characters a value may have (``Password(min_length=8)``).
    min_length: int | None = None
    #: Text: the one spelling a value is stored in (``Email``, ``Name``); ``ValueError``
    #: when the value cannot be stored.
    normalize: Callable[[str], str] | None = None

    @property
    def required_on_create(self) -> bool:
        return not self.nullable and not self.has_default


@dataclass(frozen=True)
class RelationInfo:
    """A relationship: which columns join this table to the target table."""

    name: str
    kind: RelationKind
    target: Table
    # (column of this table, column of the target or of the secondary table)
    pairs: tuple[tuple[Column[Any], Column[Any]], ...]
    secondary: Table | None = None
    # many-to-many only: (column of the target table, column of the secondary table)
    secondary_pairs: tuple[tuple[Column[Any], Column[Any]], ...] = ()
    # the newest link first, for many-to-many lists through a table with timestamps
    secondary_order: tuple[Column[Any], ...] = ()


@dataclass
class TableInfo:
    """A table or view: its fields in column order, its key, its relations."""

    name: str
    table: Table
    fields: dict[str, FieldInfo]
    primary_key: tuple[str, ...]
    relations: dict[str, RelationInfo] = field(default_factory=dict)
    model: type | None = None
    writable_table: bool = True

    def field_for_column(self, column: Column[Any]) -> FieldInfo | None:
        for info in self.fields.values():
            if info.column is column:
                return info
        return None

    def for_dialect(self, dialect: str) -> TableInfo:
        """This description as served from a ``dialect`` database: integer ranges are what
        its columns hold there (every SQLite integer is 64-bit). ``self`` when none changes."""
        ranges = {name: int_range(info.column, dialect) for name, info in self.fields.items()
                  if info.int_range is not None}
        changed = {name: replace(self.fields[name], int_range=found)
                   for name, found in ranges.items() if found != self.fields[name].int_range}
        if not changed:
            return self
        return replace(self, fields={**self.fields, **changed})


def python_type_of(column: Column[Any]) -> type:
    """The Python type a column's values have; ``object`` when SQLAlchemy cannot say."""
    column_type = column.type
    try:
        found = column_type.python_type
    except NotImplementedError:
        impl = getattr(column_type, "impl_instance", None)
        try:
            found = impl.python_type if impl is not None else object
        except NotImplementedError:
            found = object
    return found if isinstance(found, type) else object


def _format_of(column: Column[Any], python_type: type) -> str | None:
    declared = column.info.get("format")
    if isinstance(declared, str):
        return declared
    declared = getattr(column.type, "tablerest_format", None)
    if isinstance(declared, str):
        return declared
    if python_type is uuid.UUID:
        return "uuid"
    if python_type is dt.datetime:
        return "date-time"
    if python_type is dt.date:
        return "date"
    return None


def _type_impl(column: Column[Any]) -> sa.types.TypeEngine[Any]:
    impl = getattr(column.type, "impl_instance", None)
    return impl if isinstance(impl, sa.types.TypeEngine) else column.type


def int_range(column: Column[Any], dialect: str | None = None) -> tuple[int, int] | None:
    """The range of values ``column`` holds on ``dialect``; None: not an integer column.

    SQLite stores every integer in up to 8 bytes, whatever type the column declares; other
    engines (and an unknown one) hold what the declared type says: PostgreSQL's
    ``smallint`` 16 bits, ``integer`` 32, ``bigint`` 64.
    """
    impl = _type_impl(column)
    if not isinstance(impl, sa.Integer):
        return None
    if dialect == "sqlite":
        bits = 64
    elif isinstance(impl, sa.SmallInteger):
        bits = 16
    elif isinstance(impl, sa.BigInteger):
        bits = 64
    else:
        bits = 32
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _integer_digits(column: Column[Any]) -> int | None:
    impl = _type_impl(column)
    if isinstance(impl, sa.Numeric) and not isinstance(impl, sa.Float):
        precision, scale = impl.precision, impl.scale
        if isinstance(precision, int):
            return precision - (scale if isinstance(scale, int) else 0)
    return None


def _decimal_places(column: Column[Any]) -> int | None:
    impl = _type_impl(column)
    if isinstance(impl, sa.Numeric) and not isinstance(impl, sa.Float):
        scale = impl.scale
        return scale if isinstance(scale, int) else None
    return None


def _min_length(column: Column[Any]) -> int | None:
    declared = column.info.get("min_length", getattr(column.type, "min_length", None))
    return declared if isinstance(declared, int) else None


def _normalizer(column: Column[Any]) -> Callable[[str], str] | None:
    if not getattr(column.type, "tablerest_normalized", False):
        return None
    found = getattr(column.type, "normalize", None)
    return found if callable(found) else None


def describe_column(name: str, column: Column[Any]) -> FieldInfo:
    python_type = python_type_of(column)
    length = getattr(column.type, "length", None)
    autoincrement = (
        column.primary_key
        and python_type is int
        and column.autoincrement in (True, "auto")
        and len(column.table.primary_key.columns) == 1
    )
    has_default = bool(
        column.default is not None or column.server_default is not None or autoincrement
    )
    return FieldInfo(
        name=name,
        column=column,
        python_type=python_type,
        nullable=bool(column.nullable) and not column.primary_key,
        has_default=has_default,
        primary_key=bool(column.primary_key),
        max_length=length if isinstance(length, int) else None,
        format=_format_of(column, python_type),
        is_timestamp=name in TIMESTAMP_NAMES and python_type is dt.datetime,
        is_password=bool(getattr(column.type, "tablerest_password", False)),
        int_range=int_range(column) if python_type is int else None,
        integer_digits=_integer_digits(column),
        decimal_places=_decimal_places(column),
        min_length=_min_length(column),
        normalize=_normalizer(column),
    )


def _pairs(pairs: Any) -> tuple[tuple[Column[Any], Column[Any]], ...]:
    return tuple((left, right) for left, right in pairs)


def _timestamp_columns(table: Table) -> tuple[Column[Any], ...]:
    return tuple(table.c[name] for name in ("created_at",) if name in table.c)


def describe_model(model: type) -> TableInfo:
    """Describe a mapped class: its column attributes and its relationships."""
    mapper: Mapper[Any] = sa.inspect(model)
    table = mapper.local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a single table.")
    fields: dict[str, FieldInfo] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if isinstance(column, Column) and column.table is table:
            fields[prop.key] = describe_column(prop.key, column)
    primary_key = tuple(
        info.name for column in table.primary_key.columns
        for info in fields.values() if info.column is column
    )
    relations: dict[str, RelationInfo] = {}
    for rel in mapper.relationships:
        target = rel.mapper.local_table
        if not isinstance(target, Table):
            continue
        if rel.direction is RelationshipDirection.MANYTOONE:
            kind: RelationKind = "to_one"
        elif rel.direction is RelationshipDirection.ONETOMANY:
            kind = "to_many"
        else:
            kind = "many_to_many"
        secondary = rel.secondary if isinstance(rel.secondary, Table) else None
        if kind == "many_to_many" and secondary is None:
            continue
        relations[rel.key] = RelationInfo(
            name=rel.key,
            kind=kind,
            target=target,
            pairs=_pairs(rel.synchronize_pairs if kind == "many_to_many"
                         else rel.local_remote_pairs),
            secondary=secondary,
            secondary_pairs=_pairs(rel.secondary_synchronize_pairs or ()),
            secondary_order=_timestamp_columns(secondary) if secondary is not None else (),
        )
    return TableInfo(
        name=table.name, table=table, fields=fields, primary_key=primary_key,
        relations=relations, model=model,
    )


def describe_table(table: Table, relations: Mapping[str, RelationInfo] | None = None,
                   ) -> TableInfo:
    """Describe a plain (e.g. reflected) table; field names are the column names, as plain
    ``str`` (reflected names are ``quoted_name``, which orjson refuses as dict keys)."""
    fields = {str(c.name): describe_column(str(c.name), c) for c in table.columns}
    primary_key = tuple(str(c.name) for c in table.primary_key.columns)
    return TableInfo(
        name=str(table.name), table=table, fields=fields, primary_key=primary_key,
        relations=dict(relations or {}), writable_table=bool(primary_key),
    )


JSON_SAFE_TYPES: tuple[type, ...] = (
    int, float, str, bool, dt.datetime, dt.date, dt.time, uuid.UUID, decimal.Decimal,
)

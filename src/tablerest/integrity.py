"""Database constraint errors -> 409 or 422 naming the field. The one place that reads them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import visitors

from .errors import Conflict, FieldError, ProblemError, ValidationFailed
from .schema import TableInfo

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_INDEX = re.compile(r"UNIQUE constraint failed: index '(.+)'")
_WORD = re.compile(r'"((?:[^"]|"")+)"|(\w+)')
_SQLITE_NOT_NULL = re.compile(r"NOT NULL constraint failed: \S+\.(\S+)")
_PG_KEY = re.compile(r"Key \((.+?)\)=")


def _field_names(info: TableInfo, columns: list[str]) -> list[str]:
    by_column = {field.column.name: name for name, field in info.fields.items()}
    return [by_column.get(column, column) for column in columns]


def _index_columns(info: TableInfo, name: str | None) -> list[str]:
    """The columns under the unique index or constraint ``name`` of the table, also those
    inside expressions (``lower(name)``): the fields a conflict on it is about."""
    if not name:
        return []
    for item in (*info.table.indexes, *info.table.constraints):
        if getattr(item, "name", None) != name:
            continue
        parts = item.expressions if isinstance(item, sa.Index) else list(
            getattr(item, "columns", ()))
        found: list[str] = []
        for part in parts:
            if isinstance(part, sa.ClauseElement):
                found += [str(element.name) for element in visitors.iterate(part)
                          if isinstance(element, sa.Column) and element.table is info.table
                          and element.name not in found]
        return found
    return []


def _key_columns(info: TableInfo, detail: str) -> list[str]:
    """The columns PostgreSQL names in ``Key (a, b)=`` or, for an expression such as
    ``lower(name::text)``, the column names inside it."""
    match = _PG_KEY.search(detail)
    if match is None:
        return []
    names = {str(column.name) for column in info.table.columns}
    columns: list[str] = []
    for part in match.group(1).split(","):
        part = part.strip()
        if part.strip('"') in names:
            columns.append(part.strip('"'))
            continue
        for quoted, word in _WORD.findall(part):
            found = quoted.replace('""', '"') or word
            if found in names and found not in columns:
                columns.append(found)
    return columns


def _unique_columns(info: TableInfo, text: str, diag: Any) -> list[str]:
    """The columns of a unique violation: by the index's or constraint's name when the
    table declares it (PostgreSQL gives the name, SQLite names indexes on expressions),
    else from the message."""
    index = _SQLITE_INDEX.search(text)
    columns = _index_columns(info, index.group(1) if index else
                             getattr(diag, "constraint_name", None))
    if columns:
        return columns
    if diag is not None and diag.message_detail:
        return _key_columns(info, diag.message_detail)
    match = _SQLITE_UNIQUE.search(text)
    return [part.strip().rsplit(".", 1)[-1] for part in match.group(1).split(",")
            ] if match else []


def _unique(info: TableInfo, columns: list[str]) -> Conflict:
    names = _field_names(info, columns)
    shown = ", ".join(repr(name) for name in names)
    message = "This value is already taken." if len(names) == 1 else (
        "This combination of values is already taken.")
    return Conflict(f"Another row already has the same {shown}.",
                    [FieldError(name, message) for name in names])


def _foreign_key(info: TableInfo, names: list[str]) -> Conflict:
    shown = ", ".join(repr(name) for name in names) or "a foreign key"
    return Conflict(
        f"The value of {shown} does not refer to an existing row, or other rows still refer "
        "to this one.",
        [FieldError(name, "No such related row, or the row is still referred to.")
         for name in names],
    )


def missing_references(
    engine: Engine, info: TableInfo, values: Mapping[str, Any]
) -> list[str]:
    """The fields of ``values`` whose foreign key points at no row (SQLite names none)."""
    missing: list[str] = []
    with engine.connect() as connection:
        for name, field in info.fields.items():
            value = values.get(name)
            if value is None:
                continue
            for key in field.column.foreign_keys:
                target = key.column
                found = connection.execute(
                    sa.select(sa.literal(1)).select_from(target.table).where(target == value)
                ).first()
                if found is None:
                    missing.append(name)
    return missing


def still_referenced(engine: Engine, info: TableInfo, row: Mapping[str, Any],
                     ) -> list[tuple[str, int]]:
    """What still refers to ``row`` (a row of ``info``'s table, by field): for each table of
    the metadata with a foreign key to it, the relation's name (the table's name when no
    relation reaches it) and how many of its rows refer to ``row``."""
    by_column = {field.column.name: name for name, field in info.fields.items()}
    names = {tuple((local.name, remote.name) for local, remote in relation.pairs): name
             for name, relation in info.relations.items() if relation.kind == "to_many"}
    found: list[tuple[str, int]] = []
    with engine.connect() as connection:
        for table in info.table.metadata.tables.values():
            for constraint in table.foreign_key_constraints:
                if constraint.referred_table is not info.table:
                    continue
                pairs = [(element.column, element.parent) for element in constraint.elements]
                values = [row.get(by_column.get(local.name, "")) for local, _ in pairs]
                if any(value is None for value in values):
                    continue
                count = connection.execute(
                    sa.select(sa.func.count()).select_from(table).where(*(
                        remote == value for (_, remote), value in zip(pairs, values,
                                                                      strict=True)))
                ).scalar_one()
                if count:
                    key = tuple((local.name, remote.name) for local, remote in pairs)
                    found.append((names.get(key, table.name), int(count)))
    return found


def delete_conflict(exc: DBAPIError, info: TableInfo, engine: Engine,
                    row: Mapping[str, Any]) -> ProblemError | None:
    """The 409 of a delete that foreign keys forbid, naming what still refers to the row."""
    original = exc.orig
    if getattr(original, "sqlstate", None) != "23503" and \
            "FOREIGN KEY constraint failed" not in str(original):
        return translate(exc, info, engine)
    referring = still_referenced(engine, info, row)
    if not referring:
        diag = getattr(original, "diag", None)
        table = getattr(diag, "table_name", None) or "another table"
        referring = [(table, 1)]
    shown = ", ".join(f"{name!r}" for name, _ in referring)
    return Conflict(
        f"Other rows still refer to this item ({shown}); delete or change them first, or "
        "let the schema cascade the delete.",
        [FieldError(name, f"{count} row{'s' if count != 1 else ''} still refer"
                          f"{'s' if count == 1 else ''} to this item.")
         for name, count in referring],
    )


def translate(
    exc: DBAPIError, info: TableInfo, engine: Engine, values: Mapping[str, Any] | None = None
) -> ProblemError | None:
    """The problem a constraint error means, or None when it is not a constraint error."""
    original = exc.orig
    diag = getattr(original, "diag", None)
    sqlstate = getattr(original, "sqlstate", None)
    text = str(original)
    if sqlstate == "23505" or "UNIQUE constraint failed" in text:
        return _unique(info, _unique_columns(info, text, diag))
    if sqlstate == "23503" or "FOREIGN KEY constraint failed" in text:
        if diag is not None and diag.message_detail:
            match = _PG_KEY.search(diag.message_detail)
            columns = [c.strip().strip('"') for c in match.group(1).split(",")] if match else []
            return _foreign_key(info, _field_names(info, columns))
        return _foreign_key(info, missing_references(engine, info, values or {}))
    if sqlstate == "23502" or "NOT NULL constraint failed" in text:
        column = getattr(diag, "column_name", None)
        if column is None:
            match = _SQLITE_NOT_NULL.search(text)
            column = match.group(1) if match else "body"
        name = _field_names(info, [column])[0]
        return ValidationFailed(f"The field {name!r} is required.",
                                [FieldError(name, "This field is required.")])
    if sqlstate == "23514" or "CHECK constraint failed" in text:
        return ValidationFailed("The row breaks a check constraint of the table.",
                                [FieldError("body", text.splitlines()[0])])
    if sqlstate in {"22001", "22003", "22P02", "22007", "22008"}:
        return ValidationFailed("A value does not fit its column.",
                                [FieldError("body", text.splitlines()[0])])
    return None

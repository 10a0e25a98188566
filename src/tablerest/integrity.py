"""Database constraint errors -> 409 or 422 naming the field. The one place that reads them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from .errors import Conflict, FieldError, ProblemError, ValidationFailed
from .schema import TableInfo

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_NOT_NULL = re.compile(r"NOT NULL constraint failed: \S+\.(\S+)")
_PG_KEY = re.compile(r"Key \((.+?)\)=")


def _field_names(info: TableInfo, columns: list[str]) -> list[str]:
    by_column = {field.column.name: name for name, field in info.fields.items()}
    return [by_column.get(column, column) for column in columns]


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


def translate(
    exc: DBAPIError, info: TableInfo, engine: Engine, values: Mapping[str, Any] | None = None
) -> ProblemError | None:
    """The problem a constraint error means, or None when it is not a constraint error."""
    original = exc.orig
    diag = getattr(original, "diag", None)
    sqlstate = getattr(original, "sqlstate", None)
    text = str(original)
    if sqlstate == "23505" or "UNIQUE constraint failed" in text:
        if diag is not None and diag.message_detail:
            match = _PG_KEY.search(diag.message_detail)
            columns = [c.strip().strip('"') for c in match.group(1).split(",")] if match else []
        else:
            match = _SQLITE_UNIQUE.search(text)
            columns = [part.strip().rsplit(".", 1)[-1] for part in match.group(1).split(",")
                       ] if match else []
        return _unique(info, columns)
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

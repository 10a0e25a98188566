"""Text and JSON values -> the Python type of a column, or a ``ValueError`` that says why."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from sqlalchemy import Column

from .errors import NotFound
from .schema import FieldInfo, describe_column

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
        return raw.lower() in _TRUE
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_datetime(raw: str) -> dt.datetime:
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


_URL_FIELDS: dict[Column[Any], FieldInfo] = {}


def url_key(column: Any, raw: str) -> Any:
    """``raw``, a key from a URL, as a value of ``column`` (a ``Column`` or a mapped
    attribute such as ``User.id``); 404 when it cannot be one (not a number, or past the
    range of the column's integer type): no row has that key, and the database is not asked.

    For ``list_route`` scopes, which receive the URL's key as text.
    """
    if not isinstance(column, Column):
        column = column.property.columns[0]
    info = _URL_FIELDS.get(column)
    if info is None:
        info = _URL_FIELDS[column] = describe_column(column.name, column)
    try:
        return coerce(info, raw)
    except ValueError:
        raise NotFound(f"No {column.table.name} row has the key {raw!r}.") from None


def coerce(info: FieldInfo, raw: Any) -> Any:
    """Read ``raw`` (URL text or a JSON value) as a value of ``info``'s column."""
    kind = info.python_type
    try:
        if kind is bool:
            return parse_bool(raw)
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            if isinstance(raw, str):
                number = int(raw.strip(), 10)
            elif isinstance(raw, int | float):
                number = int(raw)
            else:
                raise ValueError
            low, high = info.int_range or (_INT64_MIN, _INT64_MAX)
            if not low <= number <= high:
                raise ValueError(f"expected an integer from {low} to {high}, got {raw!r}")
            return number
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, int | float | str):
                return float(raw)
            raise ValueError
        if kind is decimal.Decimal:
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError
            value = decimal.Decimal(str(raw))
            if not value.is_finite():
                raise ValueError
            digits = info.integer_digits
            if digits is not None and value != 0 and value.adjusted() + 1 > digits:
                raise ValueError(f"expected at most {digits} digits before the point, "
                                 f"got {raw!r}")
            return value
        if kind is uuid.UUID:
            if not isinstance(raw, str):
                raise ValueError
            return uuid.UUID(raw)
        if kind is dt.datetime:
            if not isinstance(raw, str):
                raise ValueError
            return _parse_datetime(raw)
        if kind is dt.date:
            if not isinstance(raw, str):
                raise ValueError
            return dt.date.fromisoformat(raw)
        if kind is dt.time:
            if not isinstance(raw, str):
                raise ValueError
            return dt.time.fromisoformat(raw)
        if kind is str:
            if not isinstance(raw, str):
                raise ValueError
            if "\x00" in raw:
                raise ValueError("text cannot contain NUL characters")
            return raw
    except (ValueError, decimal.InvalidOperation, OverflowError) as exc:
        if exc.args and isinstance(exc.args[0], str) and exc.args[0].startswith(("expected",
                                                                                "text")):
            raise ValueError(exc.args[0]) from None
        raise ValueError(f"expected {type_label(info)}, got {raw!r}") from None
    if isinstance(raw, str | int | float | bool):
        return raw
    raise ValueError(f"expected {type_label(info)}, got {raw!r}")


def type_label(info: FieldInfo) -> str:
    labels: dict[type, str] = {
        bool: "true or false", int: "an integer", float: "a number",
        decimal.Decimal: "a decimal number", uuid.UUID: "a UUID",
        dt.datetime: "an ISO 8601 date-time", dt.date: "an ISO 8601 date (YYYY-MM-DD)",
        dt.time: "an ISO 8601 time", str: "a string",
    }
    return labels.get(info.python_type, "a value")

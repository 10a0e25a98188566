"""Text and JSON values -> the Python type of a column, or a ``ValueError`` that says why."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import Column

from .errors import NotFound
from .schema import FieldInfo, describe_column, int_range

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


_URL_FIELDS: dict[tuple[Column[Any], str | None], FieldInfo] = {}


def url_key(column: Any, raw: str, dialect: str | None = None) -> Any:
    """``raw``, a key from a URL, as a value of ``column`` (a ``Column`` or a mapped
    attribute such as ``User.id``); 404 when it cannot be one: not the canonical form of a
    value (see ``coerce_key``), or past the range the column holds. No row has that key,
    and the database is not asked.

    For ``list_route`` scopes, which receive the URL's key as text. ``dialect`` (e.g.
    ``ctx.connection.dialect.name``) bounds integers by what the column holds on that engine
    (64 bits for any SQLite integer); without it, by the declared type.
    """
    if not isinstance(column, Column):
        column = column.property.columns[0]
    info = _URL_FIELDS.get((column, dialect))
    if info is None:
        info = describe_column(column.name, column)
        if dialect is not None and info.int_range is not None:
            info = replace(info, int_range=int_range(column, dialect))
        _URL_FIELDS[(column, dialect)] = info
    try:
        return coerce_key(info, raw)
    except ValueError:
        raise NotFound(f"No {column.table.name} item has the key {raw!r}.") from None


def coerce_key(info: FieldInfo, raw: str) -> Any:
    """``raw``, one key value from a URL path, as a value of ``info``'s column; a
    ``ValueError`` unless ``raw`` is the value's canonical form, so that an item has one URL.

    The canonical form is how the item's ``Location`` writes the value: integers in ASCII
    digits, without ``+``, leading zeros, separators or spaces (``-5`` for minus five, never
    ``-0``); UUIDs in lower case with hyphens; decimals in plain ASCII notation, with exactly
    as many places as the column's scale; dates as YYYY-MM-DD; floats as Python writes them;
    text as the column stores it (``Name`` and ``Email`` normalize). Booleans, times and
    date-times are read as in a filter.
    """
    value = coerce(info, raw)
    if not _is_canonical(info, value, raw):
        raise ValueError(f"expected the canonical form of the value, got {raw!r}")
    return value


def _is_canonical(info: FieldInfo, value: Any, raw: str) -> bool:
    if isinstance(value, bool | dt.datetime):
        return True
    if isinstance(value, int | float | uuid.UUID):
        return str(value) == raw
    if isinstance(value, decimal.Decimal):
        return _is_canonical_decimal(value, info.decimal_places, raw)
    if isinstance(value, dt.date):
        return value.isoformat() == raw
    if isinstance(value, str):
        return value == raw  # text a column stores normalized has one spelling
    return True


def _is_canonical_decimal(value: decimal.Decimal, places: int | None, raw: str) -> bool:
    """Plain notation (no exponent), ``-`` only before a non-zero value, and exactly
    ``places`` digits after the point when the column has a scale; without one, the places
    the value was written with (a column without a scale keeps them: 1.5 and 1.50 differ)."""
    exponent = value.as_tuple().exponent
    # The canonical form writes every digit before and after the point: one longer than
    # ``raw`` is not ``raw``, and is not worth computing (1E+999999999).
    if not isinstance(exponent, int) or value.adjusted() + 1 > len(raw) or -exponent > len(raw):
        return False
    if value.is_zero():
        value = abs(value)  # 0.00, never -0.00
    if places is not None:
        precision = len(value.as_tuple().digits) + len(raw) + places
        step = decimal.Decimal(1).scaleb(-places)
        value = value.quantize(step, context=decimal.Context(prec=precision))
    return format(value, "f") == raw


def decimal_places(value: decimal.Decimal) -> int:
    """How many digits after the point ``value`` needs: ``1.230`` needs 2."""
    exponent = value.as_tuple().exponent
    if value.is_zero() or not isinstance(exponent, int) or exponent >= 0:
        return 0
    text = "".join(map(str, value.as_tuple().digits))
    return max(0, -exponent - (len(text) - len(text.rstrip("0"))))


def check_places(info: FieldInfo, value: Any) -> None:
    """A ``ValueError`` when ``value`` has more places than ``info``'s column keeps: the
    database would round it silently. For written values; a filter value may have any."""
    places = info.decimal_places
    if places is None or isinstance(value, bool) or not isinstance(
            value, int | float | decimal.Decimal):
        return
    number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    if number.is_finite() and decimal_places(number) > places:
        raise ValueError(f"expected at most {places} digits after the point, got {value!r}")


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
            if info.normalize is not None:  # stored normalized: compared normalized
                try:
                    return info.normalize(raw)
                except ValueError as exc:
                    raise ValueError(f"text {exc}") from None
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

"""Rows -> JSON bytes with orjson: UTC ISO 8601 datetimes, UUIDs and decimals as strings."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Sequence
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NAIVE_UTC


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """Serialize; naive datetimes are UTC (that is how tablerest stores them)."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def row_to_dict(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    # PostgreSQL sessions run with timezone=UTC, so aware values are already in UTC.
    return dict(zip(names, row, strict=True))

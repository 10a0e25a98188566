"""The current time in UTC, shaped for the column it goes into."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.sql.schema import Column

from .schema import FieldInfo


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def utcnow_for(target: FieldInfo | Column[Any] | None) -> dt.datetime:
    """Aware for ``timezone=True`` columns, naive UTC otherwise (how SQLite stores it)."""
    column = target.column if isinstance(target, FieldInfo) else target
    now = utcnow()
    if column is not None and getattr(column.type, "timezone", False):
        return now
    return now.replace(tzinfo=None)

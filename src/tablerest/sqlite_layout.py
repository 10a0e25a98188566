"""What a reflected SQLite file stores, read as it is stored.

Values
    Datetimes stored without a zone are UTC. SQLite keeps datetimes as text: new values are
    written in the layout the column already uses (``2021-01-01 00:00:00``, or with a ``T``,
    or with microseconds), so comparisons and sorting stay right; a SQLite datetime column
    that holds numbers (epoch seconds) is served as numbers. Foreign keys are enforced,
    SQLite included. A SQLite file keeps its journal mode: reflection never switches it to WAL
    (which would change the file), and serving only reads it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.schema import Column

_WITHOUT_ROWID = re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)


class TextDateTime(sqlite.DATETIME):
    """A SQLite datetime written in the layout the column already uses.

    ``sep`` is the date/time separator; ``micro`` writes microseconds always (SQLAlchemy's
    own layout) instead of only when they are not zero (SQLite's ``datetime()`` layout).
    """

    def __init__(self, sep: str = " ", micro: bool = False, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.sep, self.micro = sep, micro

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        sep, micro = self.sep, self.micro

        def process(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                if value.tzinfo is not None:
                    value = value.astimezone(dt.UTC).replace(tzinfo=None)
                spec = "microseconds" if micro or value.microsecond else "seconds"
                return value.isoformat(sep=sep, timespec=spec)
            if isinstance(value, dt.date):
                return f"{value.isoformat()}{sep}00:00:00{'.000000' if micro else ''}"
            return value

        return process


def settle_sqlite(connection: Connection, tables: Iterable[Table]) -> None:
    """Rowid-alias keys are assigned by SQLite; datetimes keep the column's text layout."""
    declared: dict[str, list[str]] = {}
    without_rowid: set[str] = set()
    rows = connection.exec_driver_sql(
        "SELECT m.name, m.sql, p.type FROM sqlite_master AS m "
        "JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table' AND p.pk > 0"
    )
    for table_name, sql, column_type in rows:
        declared.setdefault(table_name, []).append(str(column_type or ""))
        if sql and _WITHOUT_ROWID.search(sql):
            without_rowid.add(table_name)
    for table in tables:
        types = declared.get(table.name, [])
        rowid = (len(types) == 1 and types[0].strip().upper() == "INTEGER"
                 and table.name not in without_rowid)
        for column in table.primary_key.columns:
            column.autoincrement = rowid
        for column in table.columns:
            if isinstance(column.type, sa.DateTime) and not isinstance(column.type, TextDateTime):
                column.type = _datetime_layout(connection, column)


def _datetime_layout(connection: Connection, column: Column[Any]) -> sa.types.TypeEngine[Any]:
    row = connection.execute(
        sa.select(sa.func.typeof(column), sa.type_coerce(column, sa.Text))
        .where(column.is_not(None)).limit(1)
    ).first()
    if row is None:
        return TextDateTime()
    kind, sample = row
    # Epoch seconds or Julian days: served as the numbers they are, not parsed into a 500.
    if kind == "integer":
        return sa.Integer()
    if kind == "real":
        return sa.Float()
    if not isinstance(sample, str) or len(sample) < 19:
        return TextDateTime()
    return TextDateTime(sep="T" if sample[10] in "Tt" else " ", micro="." in sample[19:])

"""The statements of one table — item, parent, insert, update, delete — by shape.

Keys are bound as ``k0, k1, ...`` and written columns as ``c0, c1, ...``, so each statement is
compiled once per set of columns and reused (see ``statements.py``). Python-side column
defaults (``default=`` / ``onupdate=``) are evaluated here, since the prepared statements do
not go through SQLAlchemy's execution context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, Table
from sqlalchemy.sql.schema import Column, ColumnDefault

from .reading import Built, Hook, Reader
from .schema import TableInfo


def _python_default(default: Any) -> tuple[bool, Any]:
    """(True, value) for a scalar or plain callable default; (False, None) otherwise."""
    if not isinstance(default, ColumnDefault):
        return False, None
    if default.is_scalar:
        return True, default.arg
    if default.is_callable:
        return True, default.arg(None)
    return False, None


class TableSql:
    """Statements of one table, for one resource's visible columns."""

    def __init__(self, name: str, info: TableInfo, visible_names: Sequence[str],
                 visible_columns: Sequence[Column[Any]]) -> None:
        self.name = name
        self.info = info
        self.table: Table = info.table
        self.visible_names = list(visible_names)
        self.visible_columns = list(visible_columns)
        self.key_columns = [info.fields[name].column for name in info.primary_key]
        self.all_names = list(info.fields)
        self.all_columns = [field.column for field in info.fields.values()]

    # -- keys ----------------------------------------------------------------------------

    def key_params(self, key: Sequence[Any]) -> dict[str, Any]:
        return {f"k{index}": value for index, value in enumerate(key)}

    def key_where(self) -> list[ColumnElement[bool]]:
        return [column == sa.bindparam(f"k{index}", type_=column.type)
                for index, column in enumerate(self.key_columns)]

    # -- reads ---------------------------------------------------------------------------

    def item(self, reader: Reader, key: Sequence[Any], where: Sequence[ColumnElement[bool]],
             hook: Hook | None, lock: bool = False, cacheable: bool = True,
             ) -> dict[str, Any] | None:
        """The visible columns of the row with ``key``; ``lock`` adds FOR UPDATE (PostgreSQL)."""

        def build() -> Built:
            statement: Select[Any] = sa.select(*self.visible_columns).where(
                *self.key_where(), *where)
            if lock:
                statement = statement.with_for_update(of=self.table)
            return statement, [column.type for column in self.visible_columns]

        cache_key = (self.name, "lock" if lock else "item") if cacheable else None
        rows = reader.rows(cache_key, build, self.key_params(key), hook)
        return dict(zip(self.visible_names, rows[0], strict=True)) if rows else None

    def whole_row(self, reader: Reader, key: Sequence[Any],
                  where: Sequence[ColumnElement[bool]], hook: Hook | None,
                  cacheable: bool = True) -> dict[str, Any] | None:
        """Every column of the row with ``key`` (hidden ones too), for joins and policies."""

        def build() -> Built:
            statement = sa.select(*self.all_columns).where(*self.key_where(), *where)
            return statement, [column.type for column in self.all_columns]

        cache_key = (self.name, "whole") if cacheable else None
        rows = reader.rows(cache_key, build, self.key_params(key), hook)
        return dict(zip(self.all_names, rows[0], strict=True)) if rows else None

    # -- writes --------------------------------------------------------------------------

    def _column_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {self.info.fields[name].column.name: value for name, value in values.items()}

    def _with_defaults(self, values: Mapping[str, Any], update: bool) -> dict[str, Any]:
        """``values`` by column name, plus the Python ``default`` (or ``onupdate``) of every
        column they leave out."""
        row = self._column_values(values)
        for column in self.table.columns:
            default = column.onupdate if update else column.default
            if column.name not in row and default is not None:
                known, value = _python_default(default)
                if known:
                    row[column.name] = value
        return row

    def insert(self, reader: Reader, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one row; returns its visible columns."""
        row = self._with_defaults(values, update=False)
        names = tuple(sorted(row))
        params = {f"c{index}": row[name] for index, name in enumerate(names)}

        def build() -> Built:
            statement = sa.insert(self.table).values({
                name: sa.bindparam(f"c{index}", type_=self.table.c[name].type)
                for index, name in enumerate(names)
            }).returning(*self.visible_columns)
            return statement, [column.type for column in self.visible_columns]

        rows = reader.rows((self.name, "insert", names), build, params)
        return dict(zip(self.visible_names, rows[0], strict=True))

    def update(self, reader: Reader, key: Sequence[Any], values: Mapping[str, Any],
               ) -> dict[str, Any] | None:
        """Update the row with ``key``; returns its visible columns, None when it is gone."""
        row = self._with_defaults(values, update=True)
        names = tuple(sorted(row))
        params = {f"c{index}": row[name] for index, name in enumerate(names)}
        params.update(self.key_params(key))

        def build() -> Built:
            statement = sa.update(self.table).where(*self.key_where()).values({
                name: sa.bindparam(f"c{index}", type_=self.table.c[name].type)
                for index, name in enumerate(names)
            }).returning(*self.visible_columns)
            return statement, [column.type for column in self.visible_columns]

        rows = reader.rows((self.name, "update", names), build, params)
        return dict(zip(self.visible_names, rows[0], strict=True)) if rows else None

    def delete(self, reader: Reader, key: Sequence[Any]) -> None:
        def build() -> Built:
            return sa.delete(self.table).where(*self.key_where()), []

        reader.rows((self.name, "delete"), build, self.key_params(key))

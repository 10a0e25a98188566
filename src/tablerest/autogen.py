"""Autogenerate hooks: what a diff of models and database found, and how types are written.

:func:`describe` turns Alembic's operations into :class:`Change` rows (``add_table``,
``add_column``, ``add_index``, ``add_unique``, ``add_fk``, ``modify_type``, ``modify_nullable``,
their ``remove_`` forms...), and names constraints the models left unnamed, since SQLite's batch
mode cannot create an unnamed one on an existing table. :func:`render_item` writes tablerest's
column types (``Password``, ``Email``) as the plain SQL types they store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from alembic.operations import ops
from sqlalchemy import TypeDecorator
from sqlalchemy.sql.schema import Column

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext

_POSTGRES_NAME_LIMIT = 63


@dataclass(frozen=True)
class Change:
    """One difference autogenerate found: ``kind`` is e.g. ``add_table``, ``modify_type``."""

    kind: str
    table: str
    description: str


def render_item(kind: str, obj: Any, context: AutogenContext) -> str | Literal[False]:
    """Alembic's ``render_item`` hook."""
    # tablerest's column types (Password, Email) are stored as their plain SQL type, so a
    # migration does not import them and keeps working when they change.
    if kind == "type" and isinstance(obj, TypeDecorator) and \
            type(obj).__module__.startswith("tablerest."):
        return f"sa.{obj.impl_instance!r}"
    return False


def describe(operations: Iterable[ops.MigrateOperation], table: str = "") -> Iterator[Change]:
    """The changes in autogenerate's operations; unnamed new constraints get a name."""
    for op in operations:
        if isinstance(op, ops.ModifyTableOps):
            yield from describe(op.ops, op.table_name)
        elif isinstance(op, ops.CreateTableOp):
            yield Change("add_table", op.table_name, f"new table {op.table_name!r}")
        elif isinstance(op, ops.DropTableOp):
            yield Change("remove_table", op.table_name, f"table {op.table_name!r} removed")
        elif isinstance(op, ops.AddColumnOp):
            yield Change("add_column", op.table_name,
                         f"new column {op.table_name}.{op.column.name}")
        elif isinstance(op, ops.DropColumnOp):
            yield Change("remove_column", op.table_name,
                         f"column {op.table_name}.{op.column_name} removed")
        elif isinstance(op, ops.AlterColumnOp):
            yield from _describe_alter(op)
        elif isinstance(op, ops.CreateIndexOp):
            columns = ", ".join(str(getattr(c, "name", c)) for c in op.columns)
            noun = "unique index" if op.kw.get("unique") else "index"
            yield Change("add_index", op.table_name,
                         f"new {noun} {op.index_name!r} on {op.table_name}({columns})")
        elif isinstance(op, ops.DropIndexOp):
            yield Change("remove_index", op.table_name or table,
                         f"index {op.index_name!r} removed")
        elif isinstance(op, ops.CreateUniqueConstraintOp):
            op.constraint_name = op.constraint_name or _name("uq", op.table_name, op.columns)
            yield Change("add_unique", op.table_name,
                         f"new unique constraint {op.constraint_name!r} on "
                         f"{op.table_name}({', '.join(op.columns)})")
        elif isinstance(op, ops.CreateForeignKeyOp):
            op.constraint_name = op.constraint_name or _name(
                "fk", op.source_table, [*op.local_cols, op.referent_table])
            yield Change("add_fk", op.source_table,
                         f"new foreign key {op.source_table}({', '.join(op.local_cols)}) -> "
                         f"{op.referent_table}({', '.join(op.remote_cols)})")
        elif isinstance(op, ops.DropConstraintOp):
            what = {"foreignkey": "fk"}.get(op.constraint_type or "", op.constraint_type)
            yield Change(f"remove_{what or 'constraint'}", op.table_name,
                         f"constraint {op.constraint_name!r} removed from {op.table_name}")
        else:
            yield Change(type(op).__name__, table, type(op).__name__)


def _describe_alter(op: ops.AlterColumnOp) -> Iterator[Change]:
    where = f"{op.table_name}.{op.column_name}"
    if op.modify_type is not None:
        yield Change("modify_type", op.table_name,
                     f"type of {where}: {op.existing_type} -> {op.modify_type}")
    if op.modify_nullable is not None:
        yield Change("modify_nullable", op.table_name,
                     f"{where} is now {'nullable' if op.modify_nullable else 'NOT NULL'}")
    if op.modify_server_default is not False:
        yield Change("modify_default", op.table_name, f"server default of {where} changed")
    if op.modify_comment is not False:
        yield Change("modify_comment", op.table_name, f"comment of {where} changed")


def _name(prefix: str, table: str, parts: Sequence[str | Column[Any]]) -> str:
    words = [str(getattr(part, "name", part)) for part in parts]
    name = re.sub(r"\W", "_", "_".join([prefix, table, *words]))
    return name[:_POSTGRES_NAME_LIMIT]

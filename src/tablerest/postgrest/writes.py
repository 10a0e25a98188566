"""PostgREST's writes on tablerest's one write path.

Every row goes through the resource as tablerest's own routes take it: the body is checked
by ``Served.validate_body`` (writable, read-only and hidden fields, the validators), rows are
created by ``Served.insert`` (policy ``can_create``, hooks), changed and deleted with the
policy's ``can_update``/``can_delete`` and the hooks around ``TableSql``; all of one request
in one transaction (``write_transaction``). A PATCH or DELETE by filter selects the matching
rows the caller may see (``read_scope``, ``base_query``; locked on PostgreSQL) and touches
only those the policy lets the caller change: a row it refuses with ``Forbidden`` is left
as it is, as PostgreSQL's row security leaves rows its policies do not let through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from ..coerce import coerce
from ..errors import Conflict, Forbidden
from ..query.compile import Binder, collect, compile_where
from ..query.model import Node
from ..resource import RequestContext
from ..served import Served
from .errors import PostgrestError

#: Marks a key of ``columns=`` that a row leaves out, with ``Prefer: missing=default``.
_DEFAULT = object()


def body_rows(body: Any, served: Served, columns: Sequence[str] | None,
              missing_default: bool) -> list[dict[str, Any]]:
    """The objects of a POST body (an object or an array of them), limited to ``columns``
    when given: a key it names and a row leaves out is NULL, or the column's default with
    ``missing=default``; keys it does not name are ignored."""
    if isinstance(body, dict):
        rows = [body]
    elif isinstance(body, list) and body and all(isinstance(row, dict) for row in body):
        rows = body
    else:
        raise PostgrestError(400, "PGRST102", "Empty or invalid json",
                             "The body must be a JSON object or a non-empty array of objects.")
    if columns is not None:
        writable = served.resource.writable_fields
        shaped = []
        for row in rows:
            values = {}
            for name in columns:
                if name in row:
                    values[name] = row[name]
                elif not missing_default and name in writable:
                    values[name] = None
            shaped.append(values)
        return shaped
    first = set(rows[0])
    if any(set(row) != first for row in rows[1:]):
        raise PostgrestError(400, "PGRST102", "All object keys must match")
    for name in rows[0]:
        if name not in served.info.fields:
            raise PostgrestError(400, "PGRST204", f"Could not find the '{name}' column of "
                                                  f"'{served.name}' in the schema cache")
    return rows


def check_conflict_target(served: Served, names: Sequence[str]) -> None:
    """``on_conflict`` must name the primary key or a unique constraint or index."""
    wanted = {served.info.fields[name].column.name for name in names}
    table = served.table
    candidates = [{column.name for column in table.primary_key.columns}]
    candidates += [{column.name for column in constraint.columns}
                   for constraint in table.constraints if isinstance(constraint,
                                                                     sa.UniqueConstraint)]
    candidates += [{column.name for column in index.columns}
                   for index in table.indexes if index.unique]
    candidates += [{column.name} for column in table.columns if column.unique]
    if wanted not in candidates:
        raise PostgrestError(
            400, "42P10", "there is no unique or exclusion constraint matching the ON "
                          "CONFLICT specification",
            hint="Name the primary key or the columns of a unique constraint in on_conflict.")


def insert(ctx: RequestContext, served: Served, raw: Mapping[str, Any]) -> dict[str, Any]:
    values = served.validate_body(dict(raw), "create", served.resource.writable_fields)
    return served.insert(ctx, values)


def find(ctx: RequestContext, served: Served, match: Mapping[str, Any],
         ) -> dict[str, Any] | None:
    """The visible row whose ``match`` columns hold these values (locked on PostgreSQL)."""
    table = served.table
    statement = sa.select(*served.visible_columns).where(
        *(table.c[served.info.fields[name].column.name] == value
          for name, value in match.items()),
        *served.read_scope(ctx))
    rows = _locked(ctx, served, statement)
    return rows[0] if rows else None


def matching(ctx: RequestContext, served: Served, where: Node | None) -> list[dict[str, Any]]:
    """The visible rows ``where`` matches, in key order (locked on PostgreSQL)."""
    values: dict[str, Any] = {}
    collect(where, values)
    statement = sa.select(*served.visible_columns).where(*served.read_scope(ctx))
    if where is not None:
        statement = statement.where(compile_where(where, served.table, Binder()))
    statement = statement.order_by(*served.key_columns)
    return _locked(ctx, served, statement, values)


def _locked(ctx: RequestContext, served: Served, statement: sa.Select[Any],
            params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    statement = served.resource.base_query(statement, ctx)
    if ctx.connection.dialect.name == "postgresql":
        statement = statement.with_for_update(of=served.table)
    result = ctx.connection.execute(statement, dict(params or {}))
    return [dict(zip(served.visible_names, row, strict=True)) for row in result]


def update(ctx: RequestContext, served: Served, current: dict[str, Any],
           values: dict[str, Any]) -> dict[str, Any]:
    """Change one row under the policy and hooks, as ``PATCH /things/<key>`` does."""
    key = [current[info.name] for info in served.key_fields]
    item = served.update(ctx, key, current, values)
    return item if item is not None else current


def delete(ctx: RequestContext, served: Served, current: dict[str, Any]) -> None:
    """Delete one row under the policy and hooks, as ``DELETE /things/<key>`` does."""
    resource = served.resource
    resource.policy_.can_delete(ctx, current)
    resource.before_delete(current, ctx)
    key = [current[info.name] for info in served.key_fields]
    try:
        served.sql.delete(served.writer(ctx), key)
    except DBAPIError as exc:
        raise served.delete_errors(exc, current) from exc
    resource.after_delete(current, ctx)


def update_matching(ctx: RequestContext, served: Served, rows: Sequence[dict[str, Any]],
                    values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Update each row the policy lets the caller change; the changed rows."""
    changed = []
    for current in rows:
        try:
            changed.append(update(ctx, served, current, dict(values)))
        except Forbidden:
            continue
    return changed


def delete_matching(ctx: RequestContext, served: Served, rows: Sequence[dict[str, Any]],
                    ) -> list[dict[str, Any]]:
    """Delete each row the policy lets the caller delete; the deleted rows."""
    deleted = []
    for current in rows:
        try:
            delete(ctx, served, current)
        except Forbidden:
            continue
        deleted.append(current)
    return deleted


def _find_or_insert(ctx: RequestContext, served: Served, match: Mapping[str, Any],
                    raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The visible row holding ``match`` (to update), else ``raw`` inserted: (the row found,
    None) or ({}, the row inserted). The insert runs in a savepoint: when another
    transaction inserts the same key first, it fails on the unique index (after waiting for
    that one to commit), and the row the other wrote is found instead, as PostgREST's
    ``INSERT ... ON CONFLICT`` would."""
    current = find(ctx, served, match)
    if current is not None:
        return current, None
    try:
        with ctx.connection.begin_nested():
            return {}, insert(ctx, served, raw)
    except Conflict:
        current = find(ctx, served, match)
        if current is None:
            raise
        return current, None


def upsert(ctx: RequestContext, served: Served, raw: Mapping[str, Any],
           conflict: Sequence[str], ignore: bool) -> tuple[dict[str, Any] | None, bool]:
    """Insert ``raw``, or when a row holds its ``conflict`` values, update that row with
    the other values (``ignore``: leave it). The row written (None when left) and whether
    it was inserted. The row is found and changed under the policy, as a PATCH would."""
    if any(name not in raw for name in conflict):
        return insert(ctx, served, raw), True
    try:
        match = {name: coerce(served.info.fields[name], raw[name]) for name in conflict}
    except ValueError as exc:
        raise PostgrestError(400, "22P02", f"invalid input for on_conflict: {exc}") from None
    current, inserted = _find_or_insert(ctx, served, match, raw)
    if inserted is not None:
        return inserted, True
    if ignore:
        return None, False
    rest = {name: value for name, value in raw.items() if name not in conflict}
    values = served.validate_body(rest, "update", served.resource.updatable_fields)
    return update(ctx, served, current, values), False


# -- PUT by full primary key -------------------------------------------------------------------


def put_key(served: Served, args: Sequence[tuple[str, str]], reserved: frozenset[str],
            reserved_last: frozenset[str]) -> dict[str, Any]:
    """The key a PUT's filters name: exactly ``eq`` on every primary key column and no other
    filter (405 ``PGRST105`` otherwise), as the key's values."""
    names = [info.name for info in served.key_fields]
    found: dict[str, str] = {}
    for name, raw in args:
        if not name or name in reserved or name.rsplit(".", 1)[-1] in reserved_last - {
                "and", "or"}:
            continue
        if name not in names or name in found or not raw.startswith("eq."):
            raise _put_filters()
        found[name] = raw[3:]
    if set(found) != set(names):
        raise _put_filters()
    try:
        return {name: coerce(served.info.fields[name], found[name]) for name in names}
    except ValueError as exc:
        raise PostgrestError(400, "22P02", f"invalid input for {served.name}: {exc}") from None


def _put_filters() -> PostgrestError:
    return PostgrestError(405, "PGRST105", "Filters must include all and only primary key "
                                           "columns with 'eq' operators")


def put_row(body: Any, served: Served, key: Mapping[str, Any]) -> dict[str, Any]:
    """The one object of a PUT's body, whose key must be the URL's (400 ``PGRST115``)."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        raise PostgrestError(400, "PGRST102", "Empty or invalid json",
                             "A PUT's body is one JSON object: the row to write.")
    row: dict[str, Any] = body_rows(body, served, None, False)[0]
    for name, value in key.items():
        try:
            same = name in row and coerce(served.info.fields[name], row[name]) == value
        except ValueError:
            same = False
        if not same:
            raise PostgrestError(400, "PGRST115", "Payload values do not match URL in primary "
                                                  "key column(s)")
    return row


def put(ctx: RequestContext, served: Served, key: Mapping[str, Any], row: Mapping[str, Any],
        ) -> tuple[dict[str, Any], bool]:
    """Insert ``row``, or replace every column of the row ``key`` names (as tablerest's own
    ``PUT /things/<key>``: a nullable column the body leaves out becomes NULL), under the
    policy and hooks. The row written and whether it was inserted."""
    current, inserted = _find_or_insert(ctx, served, key, row)
    if inserted is not None:
        return inserted, True
    rest = {name: value for name, value in row.items() if name not in key}
    updatable = served.resource.updatable_fields
    values = served.validate_body(rest, "replace", updatable)
    for name, info in updatable.items():
        if name not in values and info.nullable and not info.has_default:
            values[name] = None
    return update(ctx, served, current, values), False

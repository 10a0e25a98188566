"""Relation routes: the list of a to-many or many-to-many relation (and creating in it),
and many-to-many links: ``PUT``/``DELETE /things/<key>/<relation>/<other>``.

A link row belongs to one of its two ends: the one whose foreign key comes first in the link
table (``follows.follower_id``, ``PlaylistTrack.PlaylistId``). Whichever end the URL starts
from, the owner's policy (``can_update``) and ``before_link`` are asked, with the owner's row
and the relation as the owner names it: ``PUT /users/2/followers/3`` is user 3 following
user 2, so it is user 3's change to make.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

import sqlalchemy as sa
from flask import Response, request
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from ..database import DriverWrite, write_transaction
from ..http import json_response, wants_json
from ..representations import negotiate
from ..resource import RequestContext, Resource
from ..schema import RelationInfo
from ..serialization import dumps
from ..served import Served, Under, WriteContext
from ..timestamps import utcnow_for
from .base import Views, no_query_parameters, not_allowed
from .lists import fast_for, list_response

View = Callable[..., Response]


def owner_is_parent(relation: RelationInfo) -> bool:
    """Whether the link rows of ``relation`` belong to its parent end (see the module)."""
    secondary = relation.secondary
    assert secondary is not None
    order = {column.name: index for index, column in enumerate(secondary.columns)}
    mine = min(order[link.name] for _, link in relation.pairs)
    theirs = min(order[link.name] for _, link in relation.secondary_pairs)
    return mine < theirs


def inverse_name(relation: RelationInfo, target: Served) -> str | None:
    """The name ``target`` serves the other direction of ``relation`` under, if it does."""
    mine = {link.name for _, link in relation.pairs}
    for name, (other, _) in target.relations.items():
        if other.kind == "many_to_many" and other.secondary is relation.secondary \
                and {link.name for _, link in other.secondary_pairs} == mine:
            return name
    return None


class Relations(Views):
    """The relation lists and links of one resource."""

    def relation_view(self, name: str, body_route: bool = False) -> View:
        served = self.served

        def view(key: str) -> Response:
            relation, target = served.relations[name]
            if request.method == "POST" and not body_route:
                return self.create_child(key, relation, target)
            shown = negotiate(request)
            asked = self.list_request(target, f"/{served.name}/{key}/{name}", body_route)
            fast = served.fast and fast_for(target, asked.query)
            with ExitStack() as stack:
                reader = stack.enter_context(self.reading(fast, snapshot=not shown.streamed))
                parent = served.parent(reader, key)
                scope = served.relation_scope(reader.ctx, relation, target, parent)
                return list_response(reader, asked, scope, target, shown, stack)

        view.__name__ = f"{served.name}_{name}{'_query' if body_route else ''}"
        return view

    def create_child(self, key: str, relation: RelationInfo, target: Served) -> Response:
        """``POST`` to a to-many list: one object or an array, the URL fills the foreign key."""
        served = self.served
        body = self.write_body()
        writable, validator = served.child_validators[relation.name]
        rows = self.write_rows(body, target, writable, validator)
        folded = served.folded_parent(relation, target)
        with DriverWrite(served.engine) as write:
            ctx = WriteContext(write, request.method, self.state.principal(request))
            if folded is not None:  # the parent's check is part of each INSERT
                under = Under(served, key, served.parse_key(key)[0], alone=len(rows) == 1 and
                              type(target.resource).after_create is Resource.after_create)
                items = [target.insert(ctx, {**values, folded: under.key}, under)
                         for values in rows]
            else:
                items = self._create_under(ctx, key, relation, target, rows)
        if isinstance(body, list):
            return json_response(dumps(items), 201)
        return json_response(dumps(items[0]), 201, {"Location": target.location(items[0])})

    def _create_under(self, ctx: RequestContext, key: str, relation: RelationInfo,
                      target: Served, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows created after the parent row is read (its key fills the foreign key)."""
        served = self.served
        parent = served.parent(served.writer(ctx), key)
        filled: dict[str, Any] = {}
        for local, remote in relation.pairs:
            child_field = target.info.field_for_column(remote)
            parent_field = served.info.field_for_column(local)
            assert child_field is not None and parent_field is not None
            filled[child_field.name] = parent[parent_field.name]
        return [target.insert(ctx, {**values, **filled}) for values in rows]

    def link_view(self, name: str) -> View:
        served = self.served

        def view(key: str, other: str) -> Response:
            relation, target = served.relations[name]
            if request.method not in ("PUT", "DELETE"):
                raise not_allowed(("PUT", "DELETE"))
            wants_json(request)
            no_query_parameters(request)
            with write_transaction(served.engine) as connection:
                ctx = self.context(connection)
                parent = served.parent(served.writer(ctx), key)
                other_row = target.parent(target.writer(ctx), other)
                if owner_is_parent(relation):
                    owner, owner_row, owner_name, far = served, parent, name, other_row
                else:
                    owner, owner_row, far = target, other_row, parent
                    owner_name = inverse_name(relation, target) or name
                owner.resource.policy_.can_update(ctx, owner_row, {})
                owner.resource.before_link(owner_row, owner_name, far, ctx)
                link_values = _link_row(served, relation, target, parent, other_row)
                if request.method == "PUT":
                    self.link(ctx, relation.secondary, link_values)
                else:
                    _unlink(ctx.connection, relation.secondary, link_values)
            return Response(status=204)

        view.__name__ = f"{served.name}_{name}_link"
        return view

    def link(self, ctx: RequestContext, secondary: Table | None, row: dict[str, Any]) -> None:
        """Insert the link row unless it exists; identical concurrent links make one row."""
        assert secondary is not None
        connection = ctx.connection
        match = sa.and_(*(secondary.c[name] == value for name, value in row.items()))
        if connection.execute(sa.select(sa.literal(1)).select_from(secondary).where(match)
                              ).first() is not None:
            return
        for column in secondary.columns:
            if column.name in ("created_at", "updated_at") and column.name not in row:
                row[column.name] = utcnow_for(column)
        try:
            connection.execute(_insert_ignoring_duplicates(connection, secondary, row))
        except DBAPIError as exc:
            raise self.served.translate_errors(exc, None) from exc


def _link_row(served: Served, relation: RelationInfo, target: Served,
              parent: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """The link table's values that join ``parent`` to ``other``."""
    row: dict[str, Any] = {}
    for local, link in relation.pairs:
        info = served.info.field_for_column(local)
        assert info is not None
        row[link.name] = parent[info.name]
    for remote, link in relation.secondary_pairs:
        info = target.info.field_for_column(remote)
        assert info is not None
        row[link.name] = other[info.name]
    return row


def _unlink(connection: Connection, secondary: Table | None, row: Mapping[str, Any]) -> None:
    assert secondary is not None
    match = sa.and_(*(secondary.c[name] == value for name, value in row.items()))
    connection.execute(sa.delete(secondary).where(match))


def _insert_ignoring_duplicates(connection: Connection, table: Table,
                                row: Mapping[str, Any]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` where the database has it: a link made by a
    concurrent request in between is not an error (the link route is idempotent)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).values(row).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).values(row).on_conflict_do_nothing()
    return sa.insert(table).values(row)

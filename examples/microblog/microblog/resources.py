"""Who may see and change what: one row policy per resource, and the timeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from tablerest import (
    FieldError,
    Forbidden,
    NotFound,
    Policy,
    RequestContext,
    Resource,
    Unauthorized,
    ValidationFailed,
    url_key,
)

from .models import Message, User, follows

USER_EXISTS = sa.select(User.id).where(User.id == sa.bindparam("id"))


def require_caller(ctx: RequestContext) -> Any:
    """The caller's user id; 401 without a token. (tablerest already refused a token whose
    account is gone or whose password changed since it was issued.)"""
    if ctx.principal is None:
        raise Unauthorized("This needs a bearer token: POST /auth/token first.")
    return ctx.principal


class OwnAccount(Policy):
    """Anyone may sign up and read users; only the user themself may change their account."""

    def _require_self(self, ctx: RequestContext, current: Mapping[str, Any]) -> None:
        if require_caller(ctx) != current["id"]:
            raise Forbidden("Only the user themself may change this account.")

    def can_update(self, ctx: RequestContext, current: Mapping[str, Any],
                   values: dict[str, Any]) -> None:
        self._require_self(ctx, current)

    def can_delete(self, ctx: RequestContext, current: Mapping[str, Any]) -> None:
        self._require_self(ctx, current)


class AuthorOnly(Policy):
    """Anyone may read messages; posting is as the caller; only the author changes them."""

    def can_create(self, ctx: RequestContext, values: dict[str, Any]) -> None:
        caller = require_caller(ctx)
        if values.setdefault("user_id", caller) != caller:
            raise Forbidden("You can post messages only as yourself.")

    def can_update(self, ctx: RequestContext, current: Mapping[str, Any],
                   values: dict[str, Any]) -> None:
        if require_caller(ctx) != current["user_id"]:
            raise Forbidden("Only the author may change this message.")

    def can_delete(self, ctx: RequestContext, current: Mapping[str, Any]) -> None:
        if require_caller(ctx) != current["user_id"]:
            raise Forbidden("Only the author may delete this message.")


class Users(Resource):
    model = User
    policy = OwnAccount()
    relations = ("messages", "following", "followers")

    def before_link(self, current: Mapping[str, Any], relation: str,
                    other: Mapping[str, Any], ctx: RequestContext) -> None:
        # A follow belongs to the follower: tablerest asks the follower's policy (OwnAccount:
        # only the user themself) and calls this with the follower as ``current`` and
        # "following", from /users/<a>/following/<b> and from /users/<b>/followers/<a> alike.
        if relation == "following" and current["id"] == other["id"]:
            raise ValidationFailed("A user cannot follow themself.",
                                   [FieldError("other", "This is the user themself.")])


class Messages(Resource):
    model = Message
    policy = AuthorOnly()
    default_sort = ("-created_at",)


def timeline(ctx: RequestContext, key: str) -> sa.ColumnElement[bool]:
    """The messages of the users ``key`` follows, and their own."""
    user_id = url_key(User.id, key, ctx.connection.dialect.name)  # 404 unless canonical
    # and within what users.id can hold on this database
    if ctx.first(USER_EXISTS, id=user_id) is None:
        raise NotFound(f"No users item has the key {key!r}.")
    followed = sa.select(follows.c.followed_id).where(follows.c.follower_id == user_id)
    return sa.or_(Message.user_id == user_id, Message.user_id.in_(followed))

"""The microblog's WSGI app: ``gunicorn 'microblog.app:create_app()'``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from tablerest import TableRest
from tablerest.auth import password_login

from .models import Base, User
from .resources import Messages, Users, timeline


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Configuration comes from the environment (``DATABASE_URL``, ``TABLEREST_*``)."""
    app = Flask(__name__)
    app.config["DATABASE_URL"] = "sqlite:///microblog.db"
    app.config.update(config or {})
    api = TableRest(app, metadata=Base.metadata)
    api.add(Users)
    api.add(Messages)
    api.use_tokens(login=password_login(User, ("name", "email")))
    api.list_route("/users/<key>/timeline", "messages", timeline,
                   default_sort=("-created_at",))
    api.postgrest()  # PostgREST's clients too, at /rest/v1, under the same policies
    return app

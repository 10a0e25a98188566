"""``TableRest``: the Flask extension that serves resources. State lives per app.

::

    api = TableRest(app)              # or TableRest() then api.init_app(app)
    api.add(User, hidden=("password",))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import Session, sessionmaker

from .auth import Login, TokenSigner, bearer_principal, check_token_first, token_view
from .database import configure_engine, create_engine
from .errors import ConfigurationError, register_error_handlers
from .headers import register_headers
from .html import register_html
from .openapi import register_openapi
from .postgrest import Options as PostgrestOptions
from .postgrest import options_for as postgrest_options
from .postgrest import register as register_postgrest
from .resource import Resource
from .settings import Settings, build_settings, load_environment
from .state import Authenticator, ListRoute, State
from .views import Scope, add_scoped_list, index_view, link, register


class TableRest:
    """Serve SQLAlchemy models (or tables) as REST resources on a Flask app.

    :param app: the app to serve on; or call :meth:`init_app` later, once per app.
    :param db: a Flask-SQLAlchemy ``SQLAlchemy`` object whose engine to use.
    :param engine: an engine to use instead of one built from ``DATABASE_URL``.
    :param index: serve ``GET /`` with the list of resources.
    :param metadata: the models' ``MetaData``, for migrations; default: the first resource's.
    """

    def __init__(self, app: Flask | None = None, *, db: Any | None = None,
                 engine: Engine | None = None, index: bool = True,
                 metadata: MetaData | None = None) -> None:
        self.db = db
        self.metadata = metadata
        self.engine = engine
        self.index = index
        self.resources: list[Resource] = []
        self.authenticator: Authenticator | None = None
        self._login: Login | None = None
        self._token_rule = "/auth/token"
        self._list_routes: list[ListRoute] = []
        self._postgrest: PostgrestOptions | None = None
        self._apps: list[Flask] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if "tablerest" in app.extensions:
            raise ConfigurationError("tablerest is already initialised on this app.")
        load_environment(app.config, os.environ)  # FLASK_CONFIG_PREFIXES reach app.config
        settings = build_settings(app.config)
        engine = self._engine_for(app, settings)
        state = State(settings, engine, sessionmaker(bind=engine),
                      authenticator=self.authenticator, metadata=self.metadata,
                      flask_sqlalchemy=self.db)
        app.extensions["tablerest"] = state
        if self.db is not None:
            self._flask_sqlalchemy_binds(app, state, self.db)
        app.config.setdefault("MAX_CONTENT_LENGTH", settings.max_body_bytes)
        register_error_handlers(app)
        register_headers(app)
        register_html(app, state)  # its cookie hook runs before check_token_first
        register_openapi(app)
        app.teardown_appcontext(_close_session)
        if self.index:
            app.add_url_rule("/", "tablerest.index", index_view(lambda: list(state.served)),
                             methods=["GET"])
        self._apps.append(app)
        for resource in self.resources:
            self._register(app, state, resource)
        if self._login is not None:
            self._enable_tokens(app, state)
        for route in self._list_routes:
            self._add_list_route(app, state, route)
        if self._postgrest is not None:
            register_postgrest(app, self._postgrest)

    def _engine_for(self, app: Flask, settings: Settings) -> Engine:
        if self.engine is not None:
            configure_engine(self.engine, settings)
            return self.engine
        if self.db is not None:
            with app.app_context():
                engine: Engine = self.db.engine
            configure_engine(engine, settings)
            return engine
        return create_engine(settings.database_url, settings)

    @staticmethod
    def _flask_sqlalchemy_binds(app: Flask, state: State, db: Any) -> None:
        """Flask-SQLAlchemy's extra engines (``SQLALCHEMY_BINDS``) serve those binds."""
        with app.app_context():
            engines: dict[str | None, Engine] = dict(db.engines)
        for bind, engine in engines.items():
            if bind is not None:
                configure_engine(engine, state.settings)
                state.bind_engines[bind] = engine

    def add(self, model_or_resource: type | Resource, **options: Any) -> Resource:
        """Expose a model (with ``options``), a ``Resource`` subclass, or a ``Resource``."""
        if isinstance(model_or_resource, Resource):
            resource = model_or_resource
        elif isinstance(model_or_resource, type) and issubclass(model_or_resource, Resource):
            resource = model_or_resource(**options)
        else:
            resource = Resource(model_or_resource, **options)
        if any(existing.name_ == resource.name_ for existing in self.resources):
            raise ConfigurationError(f"A resource named {resource.name_!r} is already added.")
        self.resources.append(resource)
        for app in self._apps:
            self._register(app, app.extensions["tablerest"], resource)
        return resource

    def _register(self, app: Flask, state: State, resource: Resource) -> None:
        served = register(app, state, resource)
        state.served[resource.name_] = served
        state.by_table.setdefault(resource.info.table, served)
        if state.metadata is None:
            state.metadata = resource.info.table.metadata
        for each in state.served.values():
            link(app, state, each)

    def use_tokens(self, login: Login, rule: str = "/auth/token") -> None:
        """Accept bearer tokens, issued at ``POST rule`` to callers that ``login`` accepts.

        ``login(credentials, connection)`` returns the caller's id or None; see
        :func:`tablerest.auth.password_login` for the usual name-or-email + password.
        """
        self._login, self._token_rule = login, rule
        self.authenticator = bearer_principal
        for app in self._apps:
            self._enable_tokens(app, state_of(app))

    def _enable_tokens(self, app: Flask, state: State) -> None:
        assert self._login is not None
        state.token_signer = TokenSigner(state.settings.secret_key, state.settings.token_ttl)
        state.authenticator = bearer_principal
        state.login = self._login
        app.before_request(check_token_first(state))
        app.add_url_rule(self._token_rule, "tablerest.auth_token",
                         token_view(state, self._login), methods=["POST"])
        state.routes.append((self._token_rule, ("POST",), "auth"))

    def list_route(self, rule: str, resource: str, scope: Scope,
                   default_sort: tuple[str, ...] = ()) -> None:
        """A list of ``resource`` rows narrowed by ``scope(ctx, **url_values)``.

        It takes the same query parameters and gives the same envelope as the resource's
        own list, under the resource's row policy.
        """
        route = ListRoute(rule, resource, scope, default_sort)
        self._list_routes.append(route)
        for app in self._apps:
            self._add_list_route(app, state_of(app), route)

    def _add_list_route(self, app: Flask, state: State, route: ListRoute) -> None:
        served = state.served.get(route.resource)
        if served is None:
            raise ConfigurationError(
                f"list_route {route.rule!r} names the resource {route.resource!r}, which is "
                "not added; add it first."
            )
        add_scoped_list(app, state, served, route.rule, route.scope, route.default_sort)

    def postgrest(self, prefix: str = "/rest/v1", *, unfiltered_writes: Iterable[str] = (),
                  max_affected: Mapping[str, int] | None = None) -> None:
        """Serve every resource under ``prefix`` in the PostgREST dialect too, so that
        PostgREST's clients work unchanged (see ``tablerest.postgrest``).

        :param unfiltered_writes: resources a PATCH or DELETE without any filter may change
            whole; on the others it is refused (400).
        :param max_affected: the most rows one PATCH or DELETE may change, by resource name.
        """
        if self._postgrest is not None:
            raise ConfigurationError("postgrest() is already called on this TableRest.")
        self._postgrest = postgrest_options(prefix, unfiltered_writes, max_affected)
        for app in self._apps:
            register_postgrest(app, self._postgrest)

    def engine_of(self, app: Flask | None = None) -> Engine:
        """The engine serving ``app`` (default: the current app)."""
        return state_of(app).engine

    def set_authenticator(self, authenticator: Authenticator) -> None:
        """Who is calling: ``authenticator(request, state)`` returns a user id or None."""
        self.authenticator = authenticator
        for app in self._apps:
            app.extensions["tablerest"].authenticator = authenticator


def state_of(app: Flask | None = None) -> State:
    """The tablerest state of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    try:
        state: State = target.extensions["tablerest"]
    except KeyError:
        raise ConfigurationError("tablerest is not initialised on this app.") from None
    return state


def current_session() -> Session:
    """The ORM session of the current app context: Flask-SQLAlchemy's ``db.session`` when
    tablerest was given ``db``, else one of tablerest's own, created on first use."""
    state = state_of()
    if state.flask_sqlalchemy is not None:
        flask_session: Session = state.flask_sqlalchemy.session
        return flask_session
    session: Session | None = g.get("_tablerest_session")
    if session is None:
        session = state.session_factory()
        g._tablerest_session = session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("_tablerest_session", None)
    if session is not None:
        session.close()

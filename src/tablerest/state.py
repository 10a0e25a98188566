"""What one app's tablerest holds, in ``app.extensions["tablerest"]``: settings, engines,
the served resources and their routes. Every layer reads it; it imports none of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Request
from sqlalchemy import Engine, MetaData, Table
from sqlalchemy.orm import Session, sessionmaker

from .database import create_engine
from .errors import ConfigurationError
from .passwords import HashGate
from .replicas import Replicas
from .served import Served
from .settings import Settings
from .statements import StatementCache, cache_for
from .throttle import LoginThrottle

if TYPE_CHECKING:
    from .auth import Login, TokenSigner
    from .views import Scope

Authenticator = Callable[[Request, "State"], Any]


@dataclass(frozen=True)
class ListRoute:
    rule: str
    resource: str
    scope: Scope
    default_sort: tuple[str, ...]


@dataclass
class State:
    """What one app's tablerest holds: settings, the engine, the resources and their routes."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    #: The served resources by name, and by table (the first resource of each table).
    served: dict[str, Served] = field(default_factory=dict)
    by_table: dict[Table, Served] = field(default_factory=dict)
    routes: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)
    authenticator: Authenticator | None = None
    metadata: MetaData | None = None
    token_signer: TokenSigner | None = None
    login: Login | None = None  # what POST /auth/token asks; its stamp_query binds tokens
    flask_sqlalchemy: Any | None = None  # the SQLAlchemy() object, when given as ``db``
    statements: StatementCache = field(init=False)
    bind_engines: dict[str, Engine] = field(default_factory=dict)
    hash_gate: HashGate = field(init=False)
    login_throttle: LoginThrottle = field(init=False)
    #: The main database's read replicas (``DATABASE_REPLICA_URLS``); None: reads on it.
    replicas: Replicas | None = field(init=False)

    def __post_init__(self) -> None:
        self.statements = cache_for(self.engine)
        settings = self.settings
        self.hash_gate = HashGate(settings.hash_concurrency, settings.hash_wait,
                                  settings.retry_after)
        self.login_throttle = LoginThrottle(settings.login_failures_per_account,
                                            settings.login_failures_per_address,
                                            settings.login_window)
        self.replicas = Replicas(self.engine, settings) if settings.replica_urls else None

    def engine_for(self, bind: str | None) -> Engine:
        """The engine of ``bind`` (None: the main one), made on first use."""
        if bind is None:
            return self.engine
        engine = self.bind_engines.get(bind)
        if engine is not None:
            return engine
        if bind not in self.settings.binds:
            known = ", ".join(sorted(self.settings.binds)) or "none"
            raise ConfigurationError(
                f"No database is bound as {bind!r}: set SQLALCHEMY_{bind.upper()} to its "
                f"URL (binds configured: {known})."
            )
        engine = self.bind_engines[bind] = create_engine(self.settings.binds[bind],
                                                         self.settings)
        return engine

    def principal(self, request: Request) -> Any:
        """The authenticated user's id, or None when the request carries no credentials."""
        if self.authenticator is None:
            return None
        return self.authenticator(request, self)



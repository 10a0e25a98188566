"""One frozen ``Settings``, built once from the app's config and the environment.

Sources, later ones winning: Flask's ``app.config``, then environment variables —
``DATABASE_URL`` and ``DATABASE_REPLICA_URLS``, every ``TABLEREST_*`` variable, and every
variable whose prefix is listed in ``FLASK_CONFIG_PREFIXES`` (``SQLALCHEMY,AWS`` copies
``SQLALCHEMY_*`` and ``AWS_*``).
``SQLALCHEMY_DEFAULT`` names the main database, ``SQLALCHEMY_<NAME>`` (a URL) binds another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///tablerest.db"

# SQLALCHEMY_* keys that are settings of Flask-SQLAlchemy, not database binds.
_NOT_BINDS = {
    "SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS", "SQLALCHEMY_ECHO", "SQLALCHEMY_RECORD_QUERIES",
    "SQLALCHEMY_TRACK_MODIFICATIONS", "SQLALCHEMY_ENGINE_OPTIONS", "SQLALCHEMY_POOL_SIZE",
    "SQLALCHEMY_DEFAULT", "SQLALCHEMY_COMMIT_ON_TEARDOWN",
}
#: Environment variables read without the TABLEREST_ prefix (the platform's usual names).
_UNPREFIXED = ("DATABASE_URL", "DATABASE_REPLICA_URLS")


@dataclass(frozen=True)
class Settings:
    """Everything tablerest reads from configuration, validated."""

    database_url: str = DEFAULT_DATABASE_URL
    binds: Mapping[str, str] = field(default_factory=dict)
    secret_key: str | None = None
    token_ttl: int = 3600
    max_body_bytes: int = 1024 * 1024
    default_limit: int = 20
    max_limit: int = 100
    sqlite_busy_timeout_ms: int = 5000
    sqlite_wal: bool = True
    echo_sql: bool = False
    #: Items one POST may create; a larger array is 413.
    max_batch: int = 1000
    #: CSV cells starting with = + - @ tab or CR get a leading ' (spreadsheet formulas).
    csv_escape_formulas: bool = True
    #: Password hashes (and verifications) one process runs at once; more wait, then 503.
    hash_concurrency: int = 2
    #: Seconds a request waits for a hashing slot before it is answered 503.
    hash_wait: float = 2.0
    #: Failed logins allowed per account, and per client address, in ``login_window``.
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    #: Seconds that failed logins are remembered for throttling.
    login_window: int = 300
    #: Seconds a 503 tells the client to wait (``Retry-After``).
    retry_after: int = 1
    #: Seconds a request waits for a free pooled connection before it is answered 503.
    pool_timeout: float = 2.0
    #: Milliseconds one statement may run before it is cancelled (503); 0: no limit.
    statement_timeout_ms: int = 30000
    #: SQLite's ``synchronous`` with WAL: NORMAL survives a process crash, FULL a power loss.
    sqlite_synchronous: str = "NORMAL"
    #: PostgreSQL read replicas of the main database (``DATABASE_REPLICA_URLS``).
    replica_urls: tuple[str, ...] = ()
    #: A replica further behind its primary than this (seconds) is skipped.
    replica_max_lag: float = 5.0
    #: Seconds between two checks of a replica's lag (and retries of a replica that was down).
    replica_check_interval: float = 1.0
    #: Seconds a read that carries a write's position waits for a replica to replay it.
    replica_wait: float = 0.1
    #: ``transaction``: PostgreSQL is reached through a transaction pooler (PgBouncer's
    #: ``pool_mode = transaction``): no prepared statements, no session settings.
    database_pooler: str = "none"
    #: How lists count their rows unless the request or the resource says otherwise:
    #: ``exact``, ``estimated`` or ``none`` (see ``tablerest.counting``).
    count: str = "estimated"
    #: Up to how many matching rows ``estimated`` still counts exactly (it never reads more).
    count_exact_up_to: int = 10000


def load_environment(config: MutableMapping[str, Any], environ: Mapping[str, str]) -> None:
    """Copy ``DATABASE_URL``, ``DATABASE_REPLICA_URLS``, ``TABLEREST_*`` and the
    ``FLASK_CONFIG_PREFIXES`` into ``config``."""
    prefixes = ["TABLEREST"]
    listed = environ.get("FLASK_CONFIG_PREFIXES", "")
    prefixes += [p.strip().upper().rstrip("_") for p in listed.split(",") if p.strip()]
    for key, value in environ.items():
        if key in _UNPREFIXED or any(key.startswith(p + "_") for p in prefixes):
            config[key] = value


def _integer(config: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    raw = config.get(key, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{key} must be an integer, got {raw!r}."
        ) from None
    if value < minimum:
        raise ConfigurationError(f"{key} must be at least {minimum}, got {value}.")
    return value


def _boolean(config: Mapping[str, Any], key: str, default: bool) -> bool:
    raw = config.get(key, default)
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{key} must be true or false, got {raw!r}.")


def _choice(config: Mapping[str, Any], key: str, default: str,
            choices: tuple[str, ...]) -> str:
    raw = str(config.get(key, default)).strip().upper()
    if raw not in choices:
        raise ConfigurationError(f"{key} must be one of {', '.join(choices)}, got "
                                 f"{config.get(key)!r}.")
    return raw


def replica_urls(config: Mapping[str, Any]) -> tuple[str, ...]:
    """``DATABASE_REPLICA_URLS``: PostgreSQL URLs separated by commas or spaces (or a list).

    A comma inside a multi-host URL (``postgresql://a:5432,b:5432/db``) stays in its URL: a
    piece without ``://`` continues the URL before it.
    """
    raw = config.get("DATABASE_REPLICA_URLS") or ()
    pieces = raw.split() if isinstance(raw, str) else [str(each) for each in raw]
    urls: list[str] = []
    for piece in (part for each in pieces for part in each.split(",")):
        if not piece.strip():
            continue
        if "://" not in piece and urls:
            urls[-1] += "," + piece.strip()
            continue
        urls.append(piece.strip())
    for url in urls:
        if not url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
            raise ConfigurationError(
                f"DATABASE_REPLICA_URLS must hold PostgreSQL URLs (postgresql://...), got "
                f"{url!r}.")
    return tuple(normalise_url(url) for url in urls)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` and ``postgres://`` URLs."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def build_settings(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Validate ``config`` (with the environment merged over it) into ``Settings``."""
    merged: dict[str, Any] = dict(config)
    load_environment(merged, os.environ if environ is None else environ)
    url = (
        merged.get("DATABASE_URL")
        or merged.get("SQLALCHEMY_DEFAULT")
        or merged.get("SQLALCHEMY_DATABASE_URI")
        or DEFAULT_DATABASE_URL
    )
    binds = {
        key[len("SQLALCHEMY_"):].lower(): normalise_url(str(value))
        for key, value in merged.items()
        if key.startswith("SQLALCHEMY_") and key not in _NOT_BINDS
        and isinstance(value, str) and "://" in value
    }
    binds.update({str(k): normalise_url(str(v)) for k, v in
                  (merged.get("SQLALCHEMY_BINDS") or {}).items()})
    secret = merged.get("TABLEREST_SECRET_KEY") or merged.get("SECRET_KEY")
    if secret is not None and len(str(secret)) < 16:
        raise ConfigurationError(
            "TABLEREST_SECRET_KEY must be at least 16 characters long; generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
        )
    default_limit = _integer(merged, "TABLEREST_DEFAULT_LIMIT", 20, 1)
    max_limit = _integer(merged, "TABLEREST_MAX_LIMIT", 100, 1)
    if default_limit > max_limit:
        raise ConfigurationError(
            f"TABLEREST_DEFAULT_LIMIT ({default_limit}) is above TABLEREST_MAX_LIMIT "
            f"({max_limit})."
        )
    return Settings(
        database_url=normalise_url(str(url)),
        binds=binds,
        secret_key=None if secret is None else str(secret),
        token_ttl=_integer(merged, "TABLEREST_TOKEN_TTL", 3600, 1),
        max_body_bytes=_integer(merged, "TABLEREST_MAX_BODY", 1024 * 1024, 1),
        default_limit=default_limit,
        max_limit=max_limit,
        sqlite_busy_timeout_ms=_integer(merged, "TABLEREST_SQLITE_BUSY_TIMEOUT", 5000, 0),
        sqlite_wal=_boolean(merged, "TABLEREST_SQLITE_WAL", True),
        echo_sql=_boolean(merged, "TABLEREST_ECHO_SQL", False),
        max_batch=_integer(merged, "TABLEREST_MAX_BATCH", 1000, 1),
        csv_escape_formulas=_boolean(merged, "TABLEREST_CSV_ESCAPE_FORMULAS", True),
        hash_concurrency=_integer(merged, "TABLEREST_HASH_CONCURRENCY", 2, 1),
        hash_wait=float(_integer(merged, "TABLEREST_HASH_WAIT_MS", 2000, 0)) / 1000,
        login_failures_per_account=_integer(merged, "TABLEREST_LOGIN_FAILURES_PER_ACCOUNT",
                                            5, 1),
        login_failures_per_address=_integer(merged, "TABLEREST_LOGIN_FAILURES_PER_ADDRESS",
                                            20, 1),
        login_window=_integer(merged, "TABLEREST_LOGIN_WINDOW", 300, 1),
        retry_after=_integer(merged, "TABLEREST_RETRY_AFTER", 1, 1),
        pool_timeout=_integer(merged, "TABLEREST_POOL_TIMEOUT_MS", 2000, 0) / 1000,
        statement_timeout_ms=_integer(merged, "TABLEREST_STATEMENT_TIMEOUT", 30000, 0),
        sqlite_synchronous=_choice(merged, "TABLEREST_SQLITE_SYNCHRONOUS", "NORMAL",
                                   ("OFF", "NORMAL", "FULL", "EXTRA")),
        replica_urls=replica_urls(merged),
        replica_max_lag=_integer(merged, "TABLEREST_REPLICA_MAX_LAG_MS", 5000, 0) / 1000,
        replica_check_interval=_integer(merged, "TABLEREST_REPLICA_CHECK_INTERVAL_MS",
                                        1000, 1) / 1000,
        replica_wait=_integer(merged, "TABLEREST_REPLICA_WAIT_MS", 100, 0) / 1000,
        database_pooler=_choice(merged, "TABLEREST_DATABASE_POOLER", "none",
                                ("NONE", "TRANSACTION")).lower(),
        count=_choice(merged, "TABLEREST_COUNT", "estimated",
                      ("EXACT", "ESTIMATED", "NONE")).lower(),
        count_exact_up_to=_integer(merged, "TABLEREST_COUNT_EXACT_UP_TO", 10000, 0),
    )

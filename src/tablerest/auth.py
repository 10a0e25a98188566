"""Signed, expiring bearer tokens, the login endpoint, and who the current caller is.

Tokens are ``itsdangerous`` timed signatures (Flask already depends on it) of the user's id,
keyed by ``TABLEREST_SECRET_KEY`` and valid for ``TABLEREST_TOKEN_TTL`` seconds. They carry no
server-side state, so any number of app processes can verify them.

A token dies with what it was issued for. When the login has a ``stamp_query`` (as
:func:`password_login` has), the token also carries a short keyed digest of the user's stored
password hash (never the hash), and every request that presents it reads that row once by
its key: a deleted account, or a changed password, makes the token 401. A plain login
function has no stamp: its tokens live until they expire.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import sqlalchemy as sa
from flask import Request, Response, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from sqlalchemy.exc import DBAPIError

from .errors import ConfigurationError, FieldError, Unauthorized, ValidationFailed
from .http import json_response, read_json, wants_json
from .orm import Email
from .passwords import PasswordHash, hash_password, verify_password
from .serialization import dumps
from .text import normalize_text

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from .state import State

SALT = "tablerest.auth"
_KNOWN = "tablerest.bearer"  # the WSGI environ key of a request's checked token
STAMP_SALT = "tablerest.auth.stamp"
#: Characters of the stamp a token carries (base64, 6 bits each: 96 bits).
STAMP_LENGTH = 16
#: Tokens whose signature a process remembers having checked (then only their age is).
VERIFIED_TOKENS = 4096

#: ``login(credentials, connection)`` -> the user's id, or None when they do not match.
Login = Callable[[Mapping[str, Any], "Connection"], Any]


@runtime_checkable
class StampedLogin(Protocol):
    """A login whose tokens die when one value of the user's row changes.

    ``stamp_query`` selects that value (one column) by ``bindparam("key")``, the id the
    login returns; no row means the account is gone.
    """

    stamp_query: sa.Select[Any]

    def __call__(self, credentials: Mapping[str, Any], connection: Connection) -> Any: ...


@runtime_checkable
class AccountLogin(Protocol):
    """A login that names the account credentials are for, so failures count per account."""

    def account(self, credentials: Mapping[str, Any]) -> str | None: ...

    def __call__(self, credentials: Mapping[str, Any], connection: Connection) -> Any: ...


class TokenSigner:
    """Issues and verifies bearer tokens for one secret and lifetime."""

    def __init__(self, secret_key: str | None, ttl: int) -> None:
        self.ttl = ttl
        # Without a secret the app still loads, for the console commands that sign nothing
        # (`routes`, `db upgrade`); `tablerest serve` refuses it, and so do issue and verify.
        self._signing = URLSafeTimedSerializer(secret_key, salt=SALT) if secret_key else None
        # A signature checked once is good for as long as the secret: a token seen again
        # (every request of a client carries the same one) has only its age checked. Each
        # entry: the claims and when the token was signed (whole seconds, as itsdangerous).
        self._verified: dict[str, tuple[dict[str, Any], int]] = {}
        self._stamp: tuple[Any, bytes] | None = None  # the stamp's signer and derived key

    @property
    def _serializer(self) -> URLSafeTimedSerializer:
        if self._signing is None:
            raise ConfigurationError(
                "Token auth needs TABLEREST_SECRET_KEY (16+ random characters); generate one "
                "with python -c 'import secrets; print(secrets.token_urlsafe(32))'."
            )
        return self._signing

    def issue(self, subject: Any, stamp: str | None = None) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": subject}
        if stamp is not None:
            claims["stp"] = stamp
        token = self._serializer.dumps(claims)
        return {"access_token": token, "token_type": "bearer", "expires_in": self.ttl}

    def verify(self, token: str) -> Any:
        return self.claims(token)["sub"]

    def claims(self, token: str) -> dict[str, Any]:
        """What a valid, unexpired token says: ``sub`` and, when stamped, ``stp``."""
        known = self._verified.get(token)
        if known is not None:
            age = int(time.time()) - known[1]
            if 0 <= age <= self.ttl:  # itsdangerous's own test of the age
                return dict(known[0])
            # expired (or signed in the future): the full check below says so
        try:
            payload, signed = self._serializer.loads(token, max_age=self.ttl,
                                                     return_timestamp=True)
        except SignatureExpired:
            raise Unauthorized("The token has expired; ask /auth/token for a new one.") from None
        except BadSignature:
            raise Unauthorized("The token is not valid.") from None
        if not isinstance(payload, dict) or "sub" not in payload:
            raise Unauthorized("The token is not valid.")
        if len(self._verified) >= VERIFIED_TOKENS:
            self._verified.clear()
        self._verified[token] = (dict(payload), int(signed.timestamp()))
        return payload

    def stamp(self, value: str | None) -> str:
        """A short digest of ``value`` keyed by the secret: it tells whether the value
        changed, and without the secret nothing can be learnt or checked from it."""
        if self._stamp is None:  # made and derived once, not per request
            made = self._serializer.make_signer(STAMP_SALT)
            self._stamp = (made, made.derive_key())
        signer, key = self._stamp
        # Signer.get_signature, with the key derived once.
        digest = base64_encode(signer.algorithm.get_signature(key, (value or "").encode()))
        return digest.decode()[:STAMP_LENGTH]


# -- who is calling ----------------------------------------------------------------------


def bearer_principal(req: Request, state: State) -> Any:
    """The id in the request's bearer token; None without one; 401 when it is bad.

    The answer (or the 401) is kept in the request's WSGI environ: a request checks its
    token once, however many times it asks.
    """
    header = req.headers.get("Authorization")
    if header is None:
        return None
    known: tuple[str, Any, Unauthorized | None] | None = req.environ.get(_KNOWN)
    if known is not None and known[0] == header:
        if known[2] is not None:
            raise known[2]
        return known[1]
    try:
        subject = _authenticate(header, state)
    except Unauthorized as error:
        req.environ[_KNOWN] = (header, None, error)
        raise
    req.environ[_KNOWN] = (header, subject, None)
    return subject


def check_token_first(state: State) -> Callable[[], None]:
    """A ``before_request`` hook: a token's row is read before the view takes a connection
    of its own (one request never holds two pooled connections); errors wait for the view,
    so routes that ignore tokens (``POST /auth/token``) still answer."""

    def check() -> None:
        if "HTTP_AUTHORIZATION" in request.environ and state.authenticator is bearer_principal:
            # A 401 is kept with the request and raised when a view asks who is calling.
            with suppress(Unauthorized):
                bearer_principal(request, state)

    return check


def _authenticate(header: str, state: State) -> Any:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.")
    signer = state.token_signer
    if signer is None:
        raise Unauthorized("This server does not accept tokens.")
    claims = signer.claims(token.strip())
    login = state.login
    # isinstance(login, StampedLogin) as the protocol check makes it, which costs tens of
    # microseconds on every request (runtime protocols are slow to check).
    if hasattr(login, "stamp_query") and callable(login):
        _check_stamp(state, signer, login.stamp_query, claims)
    return claims["sub"]


def _check_stamp(state: State, signer: TokenSigner, query: sa.Select[Any],
                 claims: Mapping[str, Any]) -> None:
    stamp = claims.get("stp")
    if not isinstance(stamp, str):  # issued before tokens were stamped
        raise Unauthorized("The token is not valid.")
    cache = state.statements
    with cache.cursor() as cursor:
        try:
            row = cache.first(cursor, query, {"key": claims["sub"]})
        except cache.driver_error as exc:  # the error SQLAlchemy would raise
            raise DBAPIError.instance(str(query), {"key": claims["sub"]}, exc,
                                      cache.driver_error) from exc
    if row is None:
        raise Unauthorized("The token's account no longer exists.")
    if not hmac.compare_digest(signer.stamp(row[0]), stamp):
        raise Unauthorized("The token is no longer valid: the password changed; sign in again.")


# -- logging in --------------------------------------------------------------------------


# Verifying against a dummy hash when the user does not exist keeps the answer time the same,
# so response times do not tell which names exist.
_DUMMY_HASH: PasswordHash | None = None


def _dummy_hash() -> PasswordHash:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password("not a real password")
    return _DUMMY_HASH


class PasswordLogin:
    """Finds a row of ``model`` by one of ``identifiers`` and checks its ``Password`` column.

    Callable as a ``Login``. Its ``stamp_query`` binds tokens to the stored password hash,
    and ``account`` names the account for login throttling.
    """

    def __init__(self, model: type, identifiers: Sequence[str] = ("name", "email"),
                 password: str = "password", key: str = "id") -> None:
        self.table: sa.Table = sa.inspect(model).local_table
        self.key_column: sa.Column[Any] = self.table.c[key]
        self.password_column: sa.Column[Any] = self.table.c[password]
        self.identifiers = tuple(identifiers)
        self.password = password
        self.stamp_query: sa.Select[Any] = sa.select(self.password_column).where(
            self.key_column == sa.bindparam("key"))
        self._finders = {name: self._finder(self.table.c[name]) for name in self.identifiers}

    def _finder(self, column: sa.Column[Any]) -> sa.Select[Any]:
        """The row an identifier names: an ``Email`` column stores addresses in lower
        case; other columns match case-insensitively, the exact spelling first."""
        given = sa.bindparam("given", type_=sa.String())
        found = sa.select(self.key_column, self.password_column)
        if isinstance(column.type, Email):
            return found.where(column == given)
        return (found.where(sa.func.lower(column) == sa.func.lower(given))
                .order_by(sa.case((column == given, 0), else_=1), self.key_column).limit(1))

    def _given(self, credentials: Mapping[str, Any]) -> tuple[str, str, str]:
        """The identifier named, its value and the password; 422 when incomplete."""
        given = [(name, credentials[name]) for name in self.identifiers if name in credentials]
        errors = [FieldError(name, "Expected a string.") for name, value in given
                  if not isinstance(value, str)]
        secret = credentials.get(self.password)
        if not isinstance(secret, str):
            errors.append(FieldError(self.password, "This field is required (a string)."))
        if not given:
            errors.append(FieldError(self.identifiers[0],
                                     f"Give one of {', '.join(self.identifiers)}."))
        unknown = [name for name in credentials
                   if name != self.password and name not in self.identifiers]
        errors += [FieldError(name, "This field is unknown.") for name in unknown]
        if errors:
            raise ValidationFailed("The credentials are incomplete.", errors)
        name, value = given[0]
        return name, cast(str, value), cast(str, secret)  # both checked above

    def _normalized(self, name: str, value: str) -> str:
        """``value`` as sign-up stores it; ``ValueError`` for invisible characters."""
        text = normalize_text(value)
        return text.lower() if isinstance(self.table.c[name].type, Email) else text

    def account(self, credentials: Mapping[str, Any]) -> str | None:
        """The key failed logins are counted under: the identifier, normalised."""
        for name in self.identifiers:
            value = credentials.get(name)
            if isinstance(value, str):
                try:
                    return f"{name}:{self._normalized(name, value).casefold()}"
                except ValueError:
                    return None
        return None

    def __call__(self, credentials: Mapping[str, Any], connection: Connection) -> Any:
        name, value, secret = self._given(credentials)
        try:
            wanted = self._normalized(name, value)
        except ValueError:
            return None  # no stored name or email holds invisible characters
        row = connection.execute(self._finders[name], {"given": wanted}).first()
        stored = row[1] if row is not None else _dummy_hash()
        matches = verify_password(str(stored or ""), secret)
        return row[0] if row is not None and matches else None


def password_login(
    model: type, identifiers: Sequence[str] = ("name", "email"), password: str = "password",
    key: str = "id",
) -> PasswordLogin:
    """A ``login`` that finds a row of ``model`` by one of ``identifiers`` and checks its
    ``Password`` column. The body names one identifier and the password. Names compare
    normalised (NFKC, trimmed) and case-insensitively; emails in lower case."""
    return PasswordLogin(model, identifiers, password, key)


def issue_token(state: State, subject: Any) -> dict[str, Any]:
    """What ``POST /auth/token`` answers for ``subject``, without asking for a password
    (tests, admin tools): stamped with the user's current password hash."""
    signer = state.token_signer
    if signer is None:
        raise ConfigurationError("Tokens are off on this app: call api.use_tokens() first.")
    with state.engine.connect() as connection:
        return signer.issue(subject, _current_stamp(state.login, signer, connection, subject))


def _current_stamp(login: Login | None, signer: TokenSigner, connection: Connection,
                   subject: Any) -> str | None:
    if not isinstance(login, StampedLogin):
        return None
    row = connection.execute(login.stamp_query, {"key": subject}).first()
    return signer.stamp(None if row is None else row[0])


def token_view(state: State, login: Login) -> Callable[[], Response]:
    """``POST /auth/token``: credentials in, a bearer token out (see :func:`log_in`)."""

    def post_token() -> Response:
        wants_json(request)
        body = read_json(request, state.settings.max_body_bytes)
        if not isinstance(body, dict):
            raise ValidationFailed("The body must be a JSON object with credentials.",
                                   [FieldError("body", "Expected an object.")])
        return json_response(dumps(log_in(state, login, body, request.remote_addr)),
                             headers={"Cache-Control": "no-store"})

    return post_token


def log_in(state: State, login: Login, credentials: Mapping[str, Any],
           address: str | None) -> dict[str, Any]:
    """A token for ``credentials``, or 401; failed logins throttled per account and per
    client address (``request.remote_addr``: behind a proxy, use werkzeug's ``ProxyFix`` so
    that it is the client's). The sign-in page calls it too."""
    account = login.account(credentials) if isinstance(login, AccountLogin) else None
    throttle = state.login_throttle
    throttle.check(account, address)  # before any hashing: refusals cost nothing
    signer = state.token_signer
    assert signer is not None
    # The hashing slot first: logins waiting for one hold no database connection.
    with state.hash_gate.slot(), state.engine.connect() as connection:
        subject = login(credentials, connection)
        if subject is None:
            throttle.failed(account, address)
            raise Unauthorized("The name, email or password is wrong.")
        throttle.succeeded(account)
        stamp = _current_stamp(login, signer, connection, subject)
    return signer.issue(subject, stamp)

"""Signed, expiring bearer tokens, the login endpoint, and who the current caller is.

Tokens are ``itsdangerous`` timed signatures (Flask already depends on it) of the user's id,
keyed by ``TABLEREST_SECRET_KEY`` and valid for ``TABLEREST_TOKEN_TTL`` seconds. They carry no
server-side state, so any number of app processes can verify them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Request, Response, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import ConfigurationError, FieldError, Unauthorized, ValidationFailed
from .http import json_response, read_json, wants_json
from .orm import PasswordHash, hash_password
from .serialization import dumps

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from .state import State

SALT = "tablerest.auth"

#: ``login(credentials, connection)`` -> the user's id, or None when they do not match.
Login = Callable[[Mapping[str, Any], "Connection"], Any]


class TokenSigner:
    """Issues and verifies bearer tokens for one secret and lifetime."""

    def __init__(self, secret_key: str | None, ttl: int) -> None:
        self.ttl = ttl
        # Without a secret the app still loads, for the console commands that sign nothing
        # (`routes`, `db upgrade`); `tablerest serve` refuses it, and so do issue and verify.
        self._signing = URLSafeTimedSerializer(secret_key, salt=SALT) if secret_key else None

    @property
    def _serializer(self) -> URLSafeTimedSerializer:
        if self._signing is None:
            raise ConfigurationError(
                "Token auth needs TABLEREST_SECRET_KEY (16+ random characters); generate one "
                "with python -c 'import secrets; print(secrets.token_urlsafe(32))'."
            )
        return self._signing

    def issue(self, subject: Any) -> dict[str, Any]:
        token = self._serializer.dumps({"sub": subject})
        return {"access_token": token, "token_type": "bearer", "expires_in": self.ttl}

    def verify(self, token: str) -> Any:
        try:
            payload = self._serializer.loads(token, max_age=self.ttl)
        except SignatureExpired:
            raise Unauthorized("The token has expired; ask /auth/token for a new one.") from None
        except BadSignature:
            raise Unauthorized("The token is not valid.") from None
        if not isinstance(payload, dict) or "sub" not in payload:
            raise Unauthorized("The token is not valid.")
        return payload["sub"]


def bearer_principal(req: Request, state: State) -> Any:
    """The id in the request's bearer token; None without one; 401 when it is bad."""
    header = req.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.")
    signer = state.token_signer
    if signer is None:
        raise Unauthorized("This server does not accept tokens.")
    return signer.verify(token.strip())


# Verifying against a dummy hash when the user does not exist keeps the answer time the same,
# so response times do not tell which names exist.
_DUMMY_HASH: PasswordHash | None = None


def _dummy_hash() -> PasswordHash:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password("not a real password")
    return _DUMMY_HASH


def password_login(
    model: type, identifiers: Sequence[str] = ("name", "email"), password: str = "password",
    key: str = "id",
) -> Login:
    """A ``login`` that finds a row of ``model`` by one of ``identifiers`` and checks its
    ``Password`` column. The body names one identifier and the password."""
    table: sa.Table = sa.inspect(model).local_table
    key_column, password_column = table.c[key], table.c[password]
    id_columns = [table.c[name] for name in identifiers]

    def login(credentials: Mapping[str, Any], connection: Connection) -> Any:
        given = [(column, credentials[column.name]) for column in id_columns
                 if column.name in credentials]
        errors = [FieldError(column.name, "Expected a string.") for column, value in given
                  if not isinstance(value, str)]
        secret = credentials.get(password)
        if not isinstance(secret, str):
            errors.append(FieldError(password, "This field is required (a string)."))
        if not given:
            errors.append(FieldError(identifiers[0],
                                     f"Give one of {', '.join(identifiers)}."))
        unknown = [name for name in credentials
                   if name != password and name not in identifiers]
        errors += [FieldError(name, "This field is unknown.") for name in unknown]
        if errors:
            raise ValidationFailed("The credentials are incomplete.", errors)
        column, value = given[0]
        row = connection.execute(
            sa.select(key_column, password_column).where(column == value)
        ).first()
        stored = row[1] if row is not None else _dummy_hash()
        matches = PasswordHash(stored) == secret
        return row[0] if row is not None and matches else None

    return login


def token_view(state: State, login: Login) -> Callable[[], Response]:
    """``POST /auth/token``: credentials in, a bearer token out."""

    def issue_token() -> Response:
        wants_json(request)
        body = read_json(request, state.settings.max_body_bytes)
        if not isinstance(body, dict):
            raise ValidationFailed("The body must be a JSON object with credentials.",
                                   [FieldError("body", "Expected an object.")])
        with state.engine.connect() as connection:
            subject = login(body, connection)
        if subject is None:
            raise Unauthorized("The name, email or password is wrong.")
        assert state.token_signer is not None
        return json_response(dumps(state.token_signer.issue(subject)),
                             headers={"Cache-Control": "no-store"})

    return issue_token

"""Reflection mode hides columns named like secrets: the naming rule, ``show``/``hide``, the
start-up log, and that hidden values never leave the server (items, lists, CSV and NDJSON,
includes, relation lists, OpenAPI) while filters, sorts and fields naming them are 400."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from conftest import rows
from tablerest.errors import ConfigurationError
from tablerest.extension import state_of
from tablerest.reflection import create_app
from tablerest.secret_columns import is_secret_name, name_words

# Every column of ``accounts`` but these is named like a secret.
PLAIN = ("id", "login", "Shipping", "opinion")
SECRETS = ("user-password", "PASSWORD_HASH2", "private_key", "secret_key", "client_secret",
           "otp_secret", "auth_token", "session_id", "salt", "hash", "pin", "apiKey")


def _create(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    engine.dispose()


def _secret(column: str, row: int = 1) -> str:
    return f"SECRET-{row}-{column}"


@pytest.fixture
def accounts(db_url: str) -> str:
    """``accounts`` (plain and secret columns), ``posts`` to it, ``sessions`` keyed by a
    secret; every secret value starts with SECRET."""
    columns = ", ".join(f'"{name}" VARCHAR(40)' for name in SECRETS)
    values = ", ".join(f"'{_secret(name)}'" for name in SECRETS)
    _create(db_url,
            f'CREATE TABLE accounts (id INTEGER PRIMARY KEY, login VARCHAR(40) NOT NULL, '
            f'"Shipping" VARCHAR(40), opinion VARCHAR(40), {columns})',
            'CREATE TABLE posts (id INTEGER PRIMARY KEY, '
            'account_id INTEGER NOT NULL REFERENCES accounts (id), title VARCHAR(40))',
            "CREATE TABLE sessions (session_id VARCHAR(40) PRIMARY KEY, "
            "account_id INTEGER REFERENCES accounts (id))",
            f"INSERT INTO accounts VALUES (1, 'ann', 'by sea', 'fine', {values})",
            "INSERT INTO posts VALUES (1, 1, 'hello')",
            f"INSERT INTO sessions VALUES ('{_secret('session')}', 1)")
    return db_url


Serve = Callable[..., Flask]


@pytest.fixture
def serve(accounts: str) -> Iterator[Serve]:
    """``create_app(accounts, **options)``; every app's engine is closed at the end."""
    made: list[Flask] = []

    def serve(**options: Any) -> Flask:
        app = create_app(accounts, **options)
        app.testing = True
        made.append(app)
        return app

    yield serve
    for app in made:
        state_of(app).engine.dispose()


@pytest.fixture
def served(serve: Serve) -> Flask:
    return serve()


@pytest.fixture
def client(served: Flask) -> FlaskClient:
    return served.test_client()


# -- the naming rule -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "password", "passwd", "pwd", "Password", "user-password", "user password",
    "PASSWORD_HASH2", "PasswordHash", "hashed_password", "pwdhash", "private_key",
    "PrivateKey", "PRIVATEKEY", "secret", "secret_key", "client_secret", "clientsecret",
    "otp_secret", "OTPSecret", "token", "auth_token", "accessToken", "refreshtoken", "apiKey",
    "API_KEY", "APIKey", "api-key", "session_id", "SessionKey", "sessionid", "user_session",
    "salt", "hash", "pin", "PIN", "pin_code", "user_pin", "userPIN", "PINCode", "otp",
    "totp", "file_hash", "prompt_tokens",
], ids=repr)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "Shipping", "shipping_address", "spinner", "opinion", "hashtag", "pinned", "ping",
    "secretary", "secretary_name", "possession", "api", "key", "private", "is_private",
    "email", "name", "description", "Composer", "Milliseconds", "BillingPostalCode",
    "SupportRepId", "UnitPrice", "Bytes", "PostalCode", "Title", "ReportsTo",
], ids=repr)
def test_plain_names(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(("name", "words"), [
    ("PASSWORD_HASH2", ["password", "hash", "2"]), ("apiKey", ["api", "key"]),
    ("APIKey", ["api", "key"]), ("userPIN", ["user", "pin"]), ("user-password", ["user",
                                                                                  "password"]),
    ("Order Id", ["order", "id"]), ("naïveHash", ["naïve", "hash"]),
], ids=repr)
def test_name_words(name: str, words: list[str]) -> None:
    assert name_words(name) == words


# -- hidden values never leave the server ----------------------------------------------------


def _bodies(client: FlaskClient) -> dict[str, str]:
    """Every answer that shows accounts, as text."""
    answers = {
        "list": client.get("/accounts"),
        "item": client.get("/accounts/1"),
        "csv": client.get("/accounts", headers={"Accept": "text/csv"}),
        "ndjson": client.get("/accounts", headers={"Accept": "application/x-ndjson"}),
        "query": client.open("/accounts", method="QUERY", json={}),
        "include": client.get("/posts?include=account"),
        "children": client.get("/accounts/1/posts"),
        "openapi": client.get("/openapi.json"),
        "index": client.get("/"),
    }
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.get_data(as_text=True))
    return {name: response.get_data(as_text=True) for name, response in answers.items()}


def test_secret_values_never_leave_the_server(client: FlaskClient) -> None:
    bodies = _bodies(client)

    for name, body in bodies.items():
        assert "SECRET" not in body, name
    assert client.get("/accounts/1").json == {"id": 1, "login": "ann", "Shipping": "by sea",
                                              "opinion": "fine"}
    assert bodies["csv"].splitlines()[0] == "id,login,Shipping,opinion"
    assert json.loads(bodies["ndjson"].splitlines()[0]) == client.get("/accounts/1").json
    assert client.get("/posts?include=account").json["items"][0]["account"] == {
        "id": 1, "login": "ann", "Shipping": "by sea", "opinion": "fine"}
    document = json.loads(bodies["openapi"])
    schemas = document["components"]["schemas"]
    assert set(schemas["accounts"]["properties"]) == set(PLAIN)
    # Only the bodies a client writes name them (write-only fields); nothing read does.
    for name, each in [*schemas.items(), *document["paths"].items()]:
        if name not in ("accounts.create", "accounts.update", "accounts.replace"):
            text = json.dumps(each)
            assert not [column for column in SECRETS if f'"{column}"' in text], name


@pytest.mark.parametrize("column", ["salt", "user-password", "apiKey", "session_id"])
def test_filters_sorts_and_fields_on_secrets_are_400(client: FlaskClient, column: str) -> None:
    value = _secret(column)
    for params in ({column: value}, {f"{column}__eq": value}, {f"{column}__like": "SECRET%"},
                   {"sort": column}, {"sort": f"-{column}"}, {"fields": f"id,{column}"}):
        response = client.get("/accounts", query_string=params)
        assert response.status_code == 400, params
    related = client.get("/posts", query_string={f"account__{column}": value})
    assert related.status_code == 400
    for body in ({"where": {column: value}}, {"order_by": [column]}, {"fields": [column]},
                 {"where": {"account." + column: value}}):
        path = "/posts" if "where" in body and "account." + column in body["where"] \
            else "/accounts"
        response = client.open(path, method="QUERY", json=body)
        assert response.status_code == 400, body


def test_secrets_stay_writable(client: FlaskClient, accounts: str, served: Flask) -> None:
    body: dict[str, Any] = {"login": "bob", "salt": "pepper", "apiKey": "k2"}
    if not accounts.startswith("sqlite"):
        body["id"] = 2  # a plain INTEGER key on PostgreSQL: the client gives it

    created = client.post("/accounts", json=body)
    changed = client.patch("/accounts/2", json={"salt": "more pepper"})

    assert created.status_code == 201, created.json
    assert created.json == {"id": 2, "login": "bob", "Shipping": None, "opinion": None}
    assert changed.status_code == 200 and "salt" not in changed.json
    assert rows(state_of(served).engine, 'SELECT login, salt, "apiKey" FROM accounts '
                                         "WHERE id = 2") == [
        {"login": "bob", "salt": "more pepper", "apiKey": "k2"}]


# -- a key named like a secret ---------------------------------------------------------------


def test_a_table_keyed_by_a_secret_is_not_served(client: FlaskClient) -> None:
    listed = {item["name"] for item in client.get("/").json["resources"]}

    assert listed == {"accounts", "posts"}
    assert client.get("/sessions").status_code == 404
    assert "SECRET" not in client.get("/openapi.json").get_data(as_text=True)
    assert "sessions" not in client.get("/openapi.json").json["paths"]


def test_showing_the_key_serves_the_table(serve: Serve) -> None:
    app = serve(show=["sessions.session_id"])

    items = app.test_client().get("/sessions").json["items"]

    assert items == [{"session_id": _secret("session"), "account_id": 1}]


# -- show and hide ---------------------------------------------------------------------------


def test_show_and_hide(serve: Serve) -> None:
    client = serve(show=["accounts.salt", "pin"], hide=["Shipping", "posts.title"]).test_client()

    item = client.get("/accounts/1").json
    post = client.get("/posts/1").json

    assert item == {"id": 1, "login": "ann", "opinion": "fine", "salt": _secret("salt"),
                    "pin": _secret("pin")}
    assert post == {"id": 1, "account_id": 1}
    assert client.get("/accounts?sort=salt").status_code == 200
    assert client.get("/accounts?Shipping=by%20sea").status_code == 400


def test_table_column_wins_over_column(serve: Serve) -> None:
    client = serve(show=["hash", "salt"], hide=["accounts.hash"]).test_client()

    item = client.get("/accounts/1").json

    assert "hash" not in item and item["salt"] == _secret("salt")


@pytest.mark.parametrize(("options", "message"), [
    ({"show": ["nope"]}, "The show option names 'nope', but no served table or view has such "
                         "a column"),
    ({"hide": ["accounts.nope", "posts.salt"]}, "The hide option names 'accounts.nope', "
                                                "'posts.salt'"),
    ({"show": ["salt"], "hide": ["salt"]}, "'salt' is given to both --show and --hide"),
    ({"tables": ["posts"], "show": ["salt"]}, "The show option names 'salt'"),
], ids=["unknown", "unknown-qualified", "both", "not-served"])
def test_show_and_hide_refuse_what_is_not_there(serve: Serve, options: dict[str, Any],
                                                message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        serve(**options)
    assert message in str(raised.value)


def test_a_view_renaming_a_secret_is_not_caught_by_name(accounts: str, serve: Serve) -> None:
    _create(accounts, 'CREATE VIEW account_keys AS SELECT id, "apiKey" AS key_alias, '
                      "secret_key FROM accounts")

    served = serve().test_client().get("/account_keys").json["items"]
    fixed = serve(hide=["account_keys.key_alias"]).test_client().get("/account_keys").json

    assert served == [{"id": 1, "key_alias": _secret("apiKey")}]  # as documented
    assert fixed["items"] == [{"id": 1}]


# -- the start-up log ------------------------------------------------------------------------


def test_hidden_columns_are_logged_at_start_up(serve: Serve,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tablerest")

    serve()

    lines = [(record.name, record.levelname, record.getMessage()) for record in caplog.records]
    secrets = ", ".join(repr(name) for name in SECRETS)
    assert lines == [
        ("tablerest", "INFO", f"Hiding columns of 'accounts' (write-only): {secrets}. "
                              "--show accounts.COLUMN serves one."),
        ("tablerest", "WARNING", "Not serving 'sessions': its key column 'session_id' is hidden "
                                 "(named like a secret, or by --hide), but a key is in every "
                                 "item URL, Location and cursor. --show sessions.session_id "
                                 "serves the table."),
    ]

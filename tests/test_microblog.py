"""The microblog ("twittor") over HTTP, SPEC section 7, on SQLite and on PostgreSQL.

Sign-up and login go through the API where the test is about them. Elsewhere users are
inserted with one Argon2 hash computed once, and tokens come from the app's own signer:
each hash or password check costs ~150 ms, and the file has to stay fast.

Every response any test receives is checked for the passwords and for "$argon2" (the
autouse ``sent`` fixture): hidden fields never leave the server.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, Response
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from microblog.app import create_app
from microblog.models import Message, User, follows

from conftest import SECRET, rows
from tablerest import PasswordHash, hash_password
from tablerest.auth import SALT, TokenSigner, issue_token
from tablerest.extension import state_of

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "Tr0ub4dor&3 rides again"
SECRETS = (PASSWORD, NEW_PASSWORD)
TTL = 3600
OTHER_SECRET = "not-the-microblog-secret-987654321"

USER_KEYS = {"id", "name", "email", "created_at", "updated_at"}
MESSAGE_KEYS = {"id", "content", "user_id", "created_at", "updated_at"}
PROBLEM = "application/problem+json"
MISSING = 999_999

users_table = User.__table__
messages_table = Message.__table__
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


# -- helpers ---------------------------------------------------------------------------


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


def iso(minute: int) -> str:
    """How the API shows ``at(minute)``: ISO 8601 in UTC with the offset."""
    return at(minute).isoformat()


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@functools.cache
def password_hash() -> PasswordHash:
    return hash_password(PASSWORD)


def add_users(engine: sa.Engine, *names: str) -> list[int]:
    """Insert users straight into the table, all with ``PASSWORD``; their ids, in order."""
    with engine.begin() as connection:
        return [
            connection.execute(
                sa.insert(users_table).values(name=name, email=f"{name}@example.com",
                                              password=password_hash())
                .returning(users_table.c.id)
            ).scalar_one()
            for name in names
        ]


def add_message(engine: sa.Engine, user_id: int, content: str, minute: int) -> int:
    with engine.begin() as connection:
        return int(connection.execute(
            sa.insert(messages_table).values(content=content, user_id=user_id,
                                             created_at=at(minute), updated_at=at(minute))
            .returning(messages_table.c.id)
        ).scalar_one())


def add_follow(engine: sa.Engine, follower: int, followed: int, minute: int) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(follows).values(
            follower_id=follower, followed_id=followed,
            created_at=at(minute), updated_at=at(minute)))


def follow_pairs(engine: sa.Engine) -> list[tuple[int, int]]:
    return [(row["follower_id"], row["followed_id"]) for row in rows(
        engine, "SELECT follower_id, followed_id FROM follows ORDER BY follower_id, followed_id")]


def user_row(engine: sa.Engine, user_id: int) -> list[dict[str, Any]]:
    return rows(engine, "SELECT id, name, email, password FROM users WHERE id = :id", id=user_id)


def message_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    return rows(engine, "SELECT id, content, user_id FROM messages ORDER BY id")


def token_for(app: Flask, user_id: int) -> str:
    """A token as ``POST /auth/token`` issues it, without paying for the password check."""
    token: str = issue_token(state_of(app), user_id)["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_user(app: Flask, user_id: int) -> dict[str, str]:
    return bearer(token_for(app, user_id))


def signed_token(user_id: int, age: int = 0, secret: str = SECRET) -> str:
    """A token signed the way the server signs them, ``age`` seconds ago, for a user whose
    password is ``PASSWORD`` (as ``add_users`` makes them)."""

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    serializer = URLSafeTimedSerializer(secret, salt=SALT, signer=PastSigner)
    stamp = TokenSigner(secret, TTL).stamp(password_hash())
    return serializer.dumps({"sub": user_id, "stp": stamp})


def credentials(kind: str, app: Flask, owner: int, other: int) -> dict[str, str]:
    """Request headers for a caller acting on ``owner``'s things; ``kind`` says who calls."""
    if kind == "none":
        return {}
    if kind == "other user":
        return as_user(app, other)
    if kind == "expired":
        return bearer(signed_token(owner, age=TTL + 5))
    if kind == "forged":
        return bearer(signed_token(owner, secret=OTHER_SECRET))
    if kind == "tampered":
        # The owner's payload with the signature of the other user's token.
        mine, theirs = token_for(app, owner), token_for(app, other)
        return bearer(mine.split(".")[0] + "." + theirs.split(".", 1)[1])
    if kind == "garbage":
        return bearer("not-a-token")
    if kind == "empty bearer":
        return {"Authorization": "Bearer "}
    if kind == "basic auth":
        return {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}
    raise AssertionError(f"unknown credentials kind {kind!r}")


#: Callers that may not change someone's things, and the answer they get.
REFUSED = [
    pytest.param("none", 401, id="no-token"),
    pytest.param("other user", 403, id="someone-else"),
    pytest.param("expired", 401, id="expired-token"),
    pytest.param("forged", 401, id="forged-token"),
    pytest.param("tampered", 401, id="tampered-token"),
    pytest.param("garbage", 401, id="garbage-token"),
    pytest.param("empty bearer", 401, id="empty-bearer"),
    pytest.param("basic auth", 401, id="basic-auth"),
]


def assert_problem(response: Response, status: int, *fields: str, case: str = "",
                   ) -> dict[str, Any]:
    """A problem+json answer with ``status``, naming exactly ``fields`` when given."""
    shown = f"{case}: {response.get_data(as_text=True)}"
    assert response.status_code == status, shown
    assert response.mimetype == PROBLEM, shown
    body = response.json
    assert isinstance(body, dict)
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), shown
    if fields:
        assert sorted({error["field"] for error in body["errors"]}) == sorted(fields), shown
    return body


def assert_no_secrets(sent: list[bytes]) -> None:
    for raw in sent:
        assert b"$argon2" not in raw
        for secret in SECRETS:
            assert secret.encode() not in raw


def envelope(items: list[Any], count: int, limit: int = 20, offset: int | None = None,
             next_url: str | None = None) -> dict[str, Any]:
    return {"items": items, "count": count, "count_kind": "exact", "limit": limit,
            "offset": offset, "cursor": None, "next": next_url}


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def sent(microblog: Flask) -> Iterator[list[bytes]]:
    """Every response (headers and body) the microblog sends during the test."""
    seen: list[bytes] = []

    @microblog.after_request
    def record(response: Response) -> Response:
        seen.append(str(response.headers).encode() + response.get_data())
        return response

    yield seen
    assert_no_secrets(seen)


@pytest.fixture
def engine(microblog: Flask) -> sa.Engine:
    """The microblog's engine (in this module, instead of the generic test app's)."""
    return state_of(microblog).engine


@pytest.fixture
def short_lived(db_url: str, microblog: Flask) -> Iterator[Flask]:
    """A second microblog process on the same database, whose tokens last one second."""
    app = create_app({"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET,
                      "TABLEREST_TOKEN_TTL": 1})
    app.testing = True
    yield app
    state_of(app).engine.dispose()


# -- sign-up ---------------------------------------------------------------------------


def test_sign_up_creates_a_user_and_keeps_only_a_hash(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    response = mb_client.post("/users", json={"name": "jane", "email": "jane@example.com",
                                              "password": PASSWORD})
    assert response.status_code == 201
    user = response.json
    assert set(user) == USER_KEYS
    assert user["name"] == "jane" and user["email"] == "jane@example.com"
    assert user["created_at"].endswith("+00:00")
    assert response.headers["Location"] == f"/users/{user['id']}"
    [stored] = user_row(engine, user["id"])
    assert stored["name"] == "jane"
    assert stored["password"].startswith("$argon2") and stored["password"] != PASSWORD
    assert PasswordHash(stored["password"]) == PASSWORD

    again = mb_client.get(response.headers["Location"])
    assert again.status_code == 200
    assert again.json == user


@pytest.mark.parametrize("field", ["name", "email"])
def test_sign_up_with_a_taken_name_or_email_is_409_naming_it(
        mb_client: FlaskClient, engine: sa.Engine, field: str) -> None:
    [jane] = add_users(engine, "jane")
    body = {"name": "newcomer", "email": "newcomer@example.com", "password": PASSWORD}
    body[field] = {"name": "jane", "email": "jane@example.com"}[field]

    response = mb_client.post("/users", json=body)

    assert_problem(response, 409, field)
    assert [row["id"] for row in rows(engine, "SELECT id FROM users")] == [jane]


def test_sign_up_with_missing_fields_is_422(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    cases = {
        "empty": ({}, ["name", "email", "password"]),
        "no password": ({"name": "jane", "email": "jane@example.com"}, ["password"]),
        "no email": ({"name": "jane", "password": PASSWORD}, ["email"]),
        "no name": ({"email": "jane@example.com", "password": PASSWORD}, ["name"]),
    }
    for case, (body, missing) in cases.items():
        response = mb_client.post("/users", json=body)

        problem = assert_problem(response, 422, *missing, case=case)
        assert {error["message"] for error in problem["errors"]} == {"This field is required."}
    assert rows(engine, "SELECT id FROM users") == []


def test_sign_up_refuses_fields_a_client_may_not_set_or_bad_values(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    cases = {
        "id": ({"id": 7}, "read-only"),
        "created_at": ({"created_at": "2020-01-01T00:00:00+00:00"}, "read-only"),
        "unknown field": ({"is_admin": True}, "unknown"),
        "invalid email": ({"email": "jane.example.com"}, "email"),
        "name not a string": ({"name": 42}, "string"),
    }
    for case, (change, reason) in cases.items():
        body = {"name": "jane", "email": "jane@example.com", "password": PASSWORD, **change}

        response = mb_client.post("/users", json=body)

        problem = assert_problem(response, 422, *change, case=case)
        assert reason in problem["errors"][0]["message"], case
    assert rows(engine, "SELECT id FROM users") == []


# -- tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("identifier", ["name", "email"])
def test_token_by_name_or_email_lets_the_user_act(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine, identifier: str) -> None:
    [jane] = add_users(engine, "jane")
    login = {"name": "jane", "email": "jane@example.com"}[identifier]

    response = mb_client.post("/auth/token", json={identifier: login, "password": PASSWORD})

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == TTL
    assert isinstance(body["access_token"], str) and body["access_token"]

    renamed = mb_client.patch(f"/users/{jane}", json={"name": "jane2"},
                              headers=bearer(body["access_token"]))
    assert renamed.status_code == 200
    assert renamed.json["name"] == "jane2"
    assert user_row(engine, jane)[0]["name"] == "jane2"


def test_wrong_credentials_are_401_and_do_not_tell_which_part(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    add_users(engine, "jane")
    cases = {
        "wrong password by name": {"name": "jane", "password": "wrong password"},
        "wrong password by email": {"email": "jane@example.com", "password": "nope"},
        "empty password": {"name": "jane", "password": ""},
        "unknown name": {"name": "nobody", "password": PASSWORD},
        "unknown email": {"email": "nobody@example.com", "password": PASSWORD},
        "email given as name": {"name": "jane@example.com", "password": PASSWORD},
    }
    for case, body in cases.items():
        response = mb_client.post("/auth/token", json=body)

        problem = assert_problem(response, 401, case=case)
        assert problem["detail"] == "The name, email or password is wrong.", case
        assert "access_token" not in response.get_data(as_text=True)
    assert len(rows(engine, "SELECT id FROM users")) == 1


def test_token_request_with_missing_or_bad_fields_is_422(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    add_users(engine, "jane")
    cases: dict[str, tuple[dict[str, Any], list[str]]] = {
        "empty": ({}, ["name", "password"]),
        "name only": ({"name": "jane"}, ["password"]),
        "email only": ({"email": "jane@example.com"}, ["password"]),
        "password only": ({"password": PASSWORD}, ["name"]),
        "password not a string": ({"name": "jane", "password": 12345}, ["password"]),
        "name not a string": ({"name": ["jane"], "password": PASSWORD}, ["name"]),
        "unknown field": ({"name": "jane", "password": PASSWORD, "scope": "admin"}, ["scope"]),
    }
    for case, (body, fields) in cases.items():
        assert_problem(mb_client.post("/auth/token", json=body), 422, *fields, case=case)
    assert len(rows(engine, "SELECT id FROM users")) == 1


def test_token_request_that_is_not_a_json_object_is_refused(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    add_users(engine, "jane")
    cases: dict[str, tuple[dict[str, Any], int]] = {
        "form-encoded": ({"data": "name=jane",
                          "content_type": "application/x-www-form-urlencoded"}, 415),
        "malformed JSON": ({"data": '{"name": "jane"', "content_type": "application/json"}, 400),
        "array": ({"json": ["jane", PASSWORD]}, 422),
    }
    for case, (kwargs, status) in cases.items():
        assert_problem(mb_client.post("/auth/token", **kwargs), status, case=case)
    assert len(rows(engine, "SELECT id FROM users")) == 1


def test_a_token_works_until_it_expires(mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")

    for age in (TTL + 5, 10 * TTL):
        response = mb_client.patch(f"/users/{jane}", json={"name": "renamed"},
                                   headers=bearer(signed_token(jane, age=age)))
        problem = assert_problem(response, 401, case=f"{age} s old")
        assert "expired" in problem["detail"]
        assert user_row(engine, jane)[0]["name"] == "jane"

    for age in (0, TTL - 60):
        response = mb_client.patch(f"/users/{jane}", json={"name": f"jane-{age}"},
                                   headers=bearer(signed_token(jane, age=age)))
        assert response.status_code == 200, f"{age} s old"
        assert response.json["name"] == f"jane-{age}"
        assert user_row(engine, jane)[0]["name"] == f"jane-{age}"


def test_token_lifetime_follows_the_setting(
        microblog: Flask, short_lived: Flask, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")
    short = short_lived.test_client()

    issued = short.post("/auth/token", json={"name": "jane", "password": PASSWORD})
    assert issued.status_code == 200
    assert issued.json["expires_in"] == 1
    fresh = short.patch(f"/users/{jane}", json={"name": "jane1"},
                        headers=bearer(issued.json["access_token"]))
    assert fresh.status_code == 200

    two_seconds_old = bearer(signed_token(jane, age=2))
    assert_problem(short.patch(f"/users/{jane}", json={"name": "jane2"},
                               headers=two_seconds_old), 401)
    assert user_row(engine, jane)[0]["name"] == "jane1"

    # Tokens are stateless: the process with the default lifetime still takes that token.
    default = microblog.test_client().patch(f"/users/{jane}", json={"name": "jane3"},
                                            headers=two_seconds_old)
    assert default.status_code == 200
    assert user_row(engine, jane)[0]["name"] == "jane3"


def test_the_token_of_a_deleted_user_is_refused(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")
    token = as_user(microblog, jane)
    assert mb_client.delete(f"/users/{jane}", headers=token).status_code == 204

    response = mb_client.post("/messages", json={"content": "from beyond"}, headers=token)

    assert_problem(response, 401)
    assert message_rows(engine) == []


# -- users -----------------------------------------------------------------------------


def test_list_and_get_users(mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_users(engine, "jane", "john")

    listed = mb_client.get("/users")
    assert listed.status_code == 200
    body = listed.json
    assert [user["id"] for user in body["items"]] == [jane, john]
    assert all(set(user) == USER_KEYS for user in body["items"])
    assert body == envelope(body["items"], count=2)

    one = mb_client.get(f"/users/{john}")
    assert one.status_code == 200
    assert one.json == body["items"][1]
    assert one.json["name"] == "john" and one.json["email"] == "john@example.com"
    assert one.headers["ETag"]

    assert_problem(mb_client.get(f"/users/{MISSING}"), 404)
    assert_problem(mb_client.get("/users/jane"), 404)
    assert len(rows(engine, "SELECT id FROM users")) == 2


def test_the_password_cannot_be_filtered_sorted_or_selected(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    add_users(engine, "jane")
    for query in ("password=x", "password__like=%24argon2%25", "password__isnull=false",
                  "sort=password", "fields=id,password"):
        response = mb_client.get(f"/users?{query}")

        problem = assert_problem(response, 400, case=query)
        assert "password" in problem["detail"], query


def test_a_user_patches_their_own_account(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, _john = add_users(engine, "jane", "john")
    me = as_user(microblog, jane)
    [before] = user_row(engine, jane)

    response = mb_client.patch(f"/users/{jane}", json={"email": "jane@doe.com"}, headers=me)

    assert response.status_code == 200
    assert response.json["email"] == "jane@doe.com" and response.json["name"] == "jane"
    assert set(response.json) == USER_KEYS
    assert user_row(engine, jane) == [{**before, "email": "jane@doe.com"}]

    taken = mb_client.patch(f"/users/{jane}", json={"name": "john"}, headers=me)
    assert_problem(taken, 409, "name")
    read_only = mb_client.patch(f"/users/{jane}", json={"id": 42}, headers=me)
    assert_problem(read_only, 422, "id")
    assert user_row(engine, jane) == [{**before, "email": "jane@doe.com"}]


def test_a_user_changes_their_password(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")

    response = mb_client.patch(f"/users/{jane}", json={"password": NEW_PASSWORD},
                               headers=as_user(microblog, jane))

    assert response.status_code == 200
    assert set(response.json) == USER_KEYS
    stored = PasswordHash(user_row(engine, jane)[0]["password"])
    assert stored.startswith("$argon2") and stored == NEW_PASSWORD
    old = mb_client.post("/auth/token", json={"name": "jane", "password": PASSWORD})
    assert_problem(old, 401)
    new = mb_client.post("/auth/token", json={"name": "jane", "password": NEW_PASSWORD})
    assert new.status_code == 200


def test_a_user_replaces_their_own_account_with_put(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")
    me = as_user(microblog, jane)

    incomplete = mb_client.put(f"/users/{jane}", json={"name": "janet"}, headers=me)
    assert_problem(incomplete, 422, "email", "password")
    assert user_row(engine, jane)[0]["name"] == "jane"

    response = mb_client.put(f"/users/{jane}", headers=me, json={
        "name": "janet", "email": "janet@example.com", "password": NEW_PASSWORD})

    assert response.status_code == 200
    assert response.json["id"] == jane
    assert (response.json["name"], response.json["email"]) == ("janet", "janet@example.com")
    [stored] = user_row(engine, jane)
    assert (stored["name"], stored["email"]) == ("janet", "janet@example.com")
    assert PasswordHash(stored["password"]) == NEW_PASSWORD


def test_a_user_deletes_their_own_account(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_users(engine, "jane", "john")

    response = mb_client.delete(f"/users/{jane}", headers=as_user(microblog, jane))

    assert response.status_code == 204
    assert response.get_data() == b""
    assert [row["id"] for row in rows(engine, "SELECT id FROM users")] == [john]
    assert_problem(mb_client.get(f"/users/{jane}"), 404)


@pytest.mark.parametrize(("caller", "status"), REFUSED)
def test_only_the_user_themself_changes_their_account(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine, caller: str,
        status: int) -> None:
    jane, john = add_users(engine, "jane", "john")
    before = rows(engine, "SELECT * FROM users ORDER BY id")
    attempts = [
        ("PATCH", {"name": "mallory"}),
        ("PUT", {"name": "mallory", "email": "mallory@example.com", "password": NEW_PASSWORD}),
        ("DELETE", None),
    ]

    for method, body in attempts:
        response = mb_client.open(f"/users/{jane}", method=method, json=body,
                                  headers=credentials(caller, microblog, jane, john))

        assert_problem(response, status)
        assert rows(engine, "SELECT * FROM users ORDER BY id") == before, method


def test_deleting_a_user_removes_their_messages_and_follows(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john, ann = add_users(engine, "jane", "john", "ann")
    add_message(engine, jane, "jane 1", 1)
    johns = add_message(engine, john, "john 1", 2)
    add_message(engine, jane, "jane 2", 3)
    anns = add_message(engine, ann, "ann 1", 4)
    add_follow(engine, jane, john, 1)
    add_follow(engine, ann, jane, 2)
    add_follow(engine, john, ann, 3)

    response = mb_client.delete(f"/users/{jane}", headers=as_user(microblog, jane))

    assert response.status_code == 204
    assert [row["id"] for row in rows(engine, "SELECT id FROM users ORDER BY id")] == [john, ann]
    assert [row["id"] for row in message_rows(engine)] == [johns, anns]
    assert follow_pairs(engine) == [(john, ann)]
    assert mb_client.get(f"/users/{ann}/following").json["items"] == []
    assert mb_client.get(f"/users/{john}/followers").json["items"] == []
    assert [m["id"] for m in mb_client.get("/messages").json["items"]] == [anns, johns]


# -- messages --------------------------------------------------------------------------


def test_post_a_message_under_your_own_user(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_users(engine, "jane", "john")
    add_message(engine, john, "john's", 1)

    response = mb_client.post(f"/users/{jane}/messages", json={"content": "Hello, world."},
                              headers=as_user(microblog, jane))

    assert response.status_code == 201
    message = response.json
    assert set(message) == MESSAGE_KEYS
    assert (message["content"], message["user_id"]) == ("Hello, world.", jane)
    assert response.headers["Location"] == f"/messages/{message['id']}"
    assert message_rows(engine)[-1] == {"id": message["id"], "content": "Hello, world.",
                                        "user_id": jane}
    listed = mb_client.get(f"/users/{jane}/messages")
    assert listed.status_code == 200
    assert listed.json == envelope([message], count=1)


def test_posting_under_another_user_is_refused(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_users(engine, "jane", "john")

    for caller, status in [("none", 401), ("other user", 403), ("expired", 401),
                           ("forged", 401)]:
        response = mb_client.post(f"/users/{jane}/messages", json={"content": "I am jane"},
                                  headers=credentials(caller, microblog, jane, john))

        assert_problem(response, status, case=caller)
    assert message_rows(engine) == []


def test_post_a_message_as_the_caller(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    _jane, john = add_users(engine, "jane", "john")

    response = mb_client.post("/messages", json={"content": "Posted by john."},
                              headers=as_user(microblog, john))

    assert response.status_code == 201
    message = response.json
    assert (message["content"], message["user_id"]) == ("Posted by john.", john)
    assert response.headers["Location"] == f"/messages/{message['id']}"
    assert message_rows(engine) == [{"id": message["id"], "content": "Posted by john.",
                                     "user_id": john}]


def test_post_many_messages_as_the_caller(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")

    response = mb_client.post("/messages", json=[{"content": "one"}, {"content": "two"}],
                              headers=as_user(microblog, jane))

    assert response.status_code == 201
    assert [(m["content"], m["user_id"]) for m in response.json] == [("one", jane),
                                                                     ("two", jane)]
    assert [(m["content"], m["user_id"]) for m in message_rows(engine)] == [("one", jane),
                                                                            ("two", jane)]


def test_a_message_body_cannot_set_its_author(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_users(engine, "jane", "john")

    for url in ("/messages", f"/users/{jane}/messages"):
        for author in (jane, john):
            response = mb_client.post(url, json={"content": "hi", "user_id": author},
                                      headers=as_user(microblog, jane))

            problem = assert_problem(response, 422, "user_id", case=f"{url} as {author}")
            assert problem["errors"][0]["message"] == "This field is read-only."
    assert message_rows(engine) == []


def test_posting_a_message_without_a_valid_token_is_401(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_users(engine, "jane", "john")

    for caller in ("none", "expired", "forged", "tampered", "garbage"):
        response = mb_client.post("/messages", json={"content": "anonymous"},
                                  headers=credentials(caller, microblog, jane, john))

        assert_problem(response, 401, case=caller)
    assert message_rows(engine) == []


def test_post_a_message_without_content_is_422(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")
    response = mb_client.post("/messages", json={}, headers=as_user(microblog, jane))
    assert_problem(response, 422, "content")
    assert message_rows(engine) == []


def test_anyone_reads_messages_newest_first(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_users(engine, "jane", "john")
    first = add_message(engine, jane, "first", 1)
    third = add_message(engine, jane, "third", 3)
    second = add_message(engine, john, "second", 2)

    listed = mb_client.get("/messages")
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json["items"]] == [third, second, first]
    assert listed.json == envelope(listed.json["items"], count=3)

    one = mb_client.get(f"/messages/{second}")
    assert one.status_code == 200
    assert one.json == {"id": second, "content": "second", "user_id": john,
                        "created_at": iso(2), "updated_at": iso(2)}

    janes = mb_client.get(f"/users/{jane}/messages")
    assert [m["id"] for m in janes.json["items"]] == [third, first]
    assert janes.json["count"] == 2

    assert_problem(mb_client.get(f"/messages/{MISSING}"), 404)
    assert len(message_rows(engine)) == 3


@pytest.mark.parametrize(("method", "body"), [
    pytest.param("PATCH", {"content": "edited"}, id="PATCH"),
    pytest.param("PUT", {"content": "edited"}, id="PUT"),
])
def test_the_author_changes_their_message(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine, method: str,
        body: dict[str, str]) -> None:
    [jane] = add_users(engine, "jane")
    message = add_message(engine, jane, "original", 1)

    response = mb_client.open(f"/messages/{message}", method=method, json=body,
                              headers=as_user(microblog, jane))

    assert response.status_code == 200
    assert response.json["content"] == "edited" and response.json["user_id"] == jane
    assert response.json["created_at"] == iso(1)
    assert moment(response.json["updated_at"]) > at(1)
    assert message_rows(engine) == [{"id": message, "content": "edited", "user_id": jane}]


def test_the_author_deletes_their_message(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")
    gone = add_message(engine, jane, "to delete", 1)
    kept = add_message(engine, jane, "to keep", 2)

    response = mb_client.delete(f"/messages/{gone}", headers=as_user(microblog, jane))

    assert response.status_code == 204
    assert response.get_data() == b""
    assert [m["id"] for m in message_rows(engine)] == [kept]
    assert_problem(mb_client.get(f"/messages/{gone}"), 404)
    again = mb_client.delete(f"/messages/{gone}", headers=as_user(microblog, jane))
    assert_problem(again, 404)


@pytest.mark.parametrize(("caller", "status"), REFUSED)
def test_only_the_author_changes_or_deletes_a_message(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine, caller: str,
        status: int) -> None:
    jane, john = add_users(engine, "jane", "john")
    message = add_message(engine, jane, "jane's words", 1)
    attempts = [("PATCH", {"content": "john's words"}), ("PUT", {"content": "john's words"}),
                ("DELETE", None)]

    for method, body in attempts:
        response = mb_client.open(f"/messages/{message}", method=method, json=body,
                                  headers=credentials(caller, microblog, jane, john))

        assert_problem(response, status)
        assert message_rows(engine) == [{"id": message, "content": "jane's words",
                                         "user_id": jane}], method


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_message_cannot_change_author(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine, method: str) -> None:
    jane, john = add_users(engine, "jane", "john")
    message = add_message(engine, jane, "mine", 1)

    response = mb_client.open(f"/messages/{message}", method=method,
                              json={"content": "yours", "user_id": john},
                              headers=as_user(microblog, jane))

    assert_problem(response, 422, "user_id")
    assert message_rows(engine) == [{"id": message, "content": "mine", "user_id": jane}]


def test_put_on_a_message_requires_its_content(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")
    message = add_message(engine, jane, "mine", 1)

    response = mb_client.put(f"/messages/{message}", json={}, headers=as_user(microblog, jane))

    assert_problem(response, 422, "content")
    assert message_rows(engine) == [{"id": message, "content": "mine", "user_id": jane}]


# -- follows ---------------------------------------------------------------------------


def test_following_is_idempotent(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_users(engine, "jane", "john")
    me = as_user(microblog, jane)

    first = mb_client.put(f"/users/{jane}/following/{john}", headers=me)
    assert first.status_code == 204 and first.get_data() == b""
    linked = rows(engine, "SELECT * FROM follows")
    assert [(row["follower_id"], row["followed_id"]) for row in linked] == [(jane, john)]
    assert linked[0]["created_at"] is not None and linked[0]["updated_at"] is not None

    second = mb_client.put(f"/users/{jane}/following/{john}", headers=me)
    assert second.status_code == 204
    assert rows(engine, "SELECT * FROM follows") == linked

    following = mb_client.get(f"/users/{jane}/following").json
    assert [user["id"] for user in following["items"]] == [john]
    assert all(set(user) == USER_KEYS for user in following["items"])
    followers = mb_client.get(f"/users/{john}/followers").json
    assert [user["id"] for user in followers["items"]] == [jane]


def test_unfollowing_is_idempotent(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john, ann = add_users(engine, "jane", "john", "ann")
    add_follow(engine, jane, john, 1)
    add_follow(engine, jane, ann, 2)
    me = as_user(microblog, jane)

    response = mb_client.delete(f"/users/{jane}/following/{john}", headers=me)
    assert response.status_code == 204 and response.get_data() == b""
    assert follow_pairs(engine) == [(jane, ann)]

    again = mb_client.delete(f"/users/{jane}/following/{john}", headers=me)
    assert again.status_code == 204
    assert follow_pairs(engine) == [(jane, ann)]

    never = mb_client.delete(f"/users/{ann}/following/{john}", headers=as_user(microblog, ann))
    assert never.status_code == 204
    assert follow_pairs(engine) == [(jane, ann)]
    assert [u["id"] for u in mb_client.get(f"/users/{jane}/following").json["items"]] == [ann]


def test_following_yourself_is_422(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    [jane] = add_users(engine, "jane")

    response = mb_client.put(f"/users/{jane}/following/{jane}", headers=as_user(microblog, jane))

    assert_problem(response, 422, "other")
    assert follow_pairs(engine) == []


@pytest.mark.parametrize("missing", ["follower", "followed"])
def test_following_a_missing_user_is_404(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine, missing: str) -> None:
    jane, john = add_users(engine, "jane", "john")
    add_follow(engine, jane, john, 1)
    url = (f"/users/{MISSING}/following/{jane}" if missing == "follower"
           else f"/users/{jane}/following/{MISSING}")

    for method in ("PUT", "DELETE"):
        response = mb_client.open(url, method=method, headers=as_user(microblog, jane))

        problem = assert_problem(response, 404)
        assert str(MISSING) in problem["detail"]
        assert follow_pairs(engine) == [(jane, john)], method


@pytest.mark.parametrize(("caller", "status"), REFUSED)
def test_only_the_user_themself_follows_and_unfollows(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine, caller: str,
        status: int) -> None:
    jane, john, ann = add_users(engine, "jane", "john", "ann")
    add_follow(engine, jane, ann, 1)

    # Follow someone new, and unfollow someone followed, on jane's behalf.
    for method, target in [("PUT", john), ("DELETE", ann)]:
        response = mb_client.open(f"/users/{jane}/following/{target}", method=method,
                                  headers=credentials(caller, microblog, jane, john))

        assert_problem(response, status)
        assert follow_pairs(engine) == [(jane, ann)], method


def test_following_and_followers_list_the_newest_follow_first(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john, ann, bob = add_users(engine, "jane", "john", "ann", "bob")
    me = as_user(microblog, jane)
    for other in (john, ann, bob):
        assert mb_client.put(f"/users/{jane}/following/{other}", headers=me).status_code == 204
    add_follow(engine, ann, john, 0)
    add_follow(engine, bob, john, 0)
    # Follow times neither in id nor in insertion order.
    when = {(jane, john): 2, (jane, ann): 3, (jane, bob): 1, (ann, john): 5, (bob, john): 4}
    with engine.begin() as connection:
        for (follower, followed), minute in when.items():
            connection.execute(sa.update(follows).where(
                follows.c.follower_id == follower, follows.c.followed_id == followed,
            ).values(created_at=at(minute)))

    following = mb_client.get(f"/users/{jane}/following")
    assert following.status_code == 200
    assert [user["name"] for user in following.json["items"]] == ["ann", "john", "bob"]
    assert following.json == envelope(following.json["items"], count=3)

    followers = mb_client.get(f"/users/{john}/followers")
    assert followers.status_code == 200
    assert [user["name"] for user in followers.json["items"]] == ["ann", "bob", "jane"]
    assert all(set(user) == USER_KEYS for user in followers.json["items"])

    paged = mb_client.get(f"/users/{jane}/following?limit=2&offset=0").json
    assert [user["name"] for user in paged["items"]] == ["ann", "john"]
    assert paged["next"] == f"/users/{jane}/following?limit=2&offset=2"
    rest = mb_client.get(paged["next"]).json
    assert [user["name"] for user in rest["items"]] == ["bob"] and rest["next"] is None

    assert mb_client.get(f"/users/{jane}/followers").json == envelope([], count=0)
    assert len(follow_pairs(engine)) == 5


def test_the_lists_of_a_missing_user_are_404(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    add_users(engine, "jane")
    for relation in ("following", "followers", "messages"):
        assert_problem(mb_client.get(f"/users/{MISSING}/{relation}"), 404, case=relation)
    assert len(rows(engine, "SELECT id FROM users")) == 1


# -- timeline --------------------------------------------------------------------------


@pytest.fixture
def network(engine: sa.Engine) -> dict[str, int]:
    """jane follows john and ann; bob follows jane; nobody follows bob.

    Messages m1..m6, the number giving the minute they were posted at.
    """
    jane, john, ann, bob = add_users(engine, "jane", "john", "ann", "bob")
    add_follow(engine, jane, john, 0)
    add_follow(engine, jane, ann, 0)
    add_follow(engine, bob, jane, 0)
    ids = {"jane": jane, "john": john, "ann": ann, "bob": bob}
    for minute, author in enumerate(["jane", "john", "bob", "ann", "john", "bob"], start=1):
        ids[f"m{minute}"] = add_message(engine, ids[author], f"{author} at {minute}", minute)
    return ids


def test_the_timeline_has_own_and_followed_messages_newest_first(
        microblog: Flask, mb_client: FlaskClient, engine: sa.Engine,
        network: dict[str, int]) -> None:
    def timeline(user: str) -> list[int]:
        response = mb_client.get(f"/users/{network[user]}/timeline")
        assert response.status_code == 200
        assert response.json == envelope(response.json["items"], count=len(response.json["items"]))
        return [message["id"] for message in response.json["items"]]

    m = network
    assert timeline("jane") == [m["m5"], m["m4"], m["m2"], m["m1"]]
    assert timeline("bob") == [m["m6"], m["m3"], m["m1"]]
    assert timeline("john") == [m["m5"], m["m2"]]

    first = mb_client.get(f"/users/{m['jane']}/timeline").json["items"][0]
    assert first == {"id": m["m5"], "content": "john at 5", "user_id": m["john"],
                     "created_at": iso(5), "updated_at": iso(5)}

    unfollow = mb_client.delete(f"/users/{m['jane']}/following/{m['john']}",
                                headers=as_user(microblog, m["jane"]))
    assert unfollow.status_code == 204
    assert timeline("jane") == [m["m4"], m["m1"]]
    assert len(message_rows(engine)) == 6


def test_the_timeline_pages_with_limit_and_offset(
        mb_client: FlaskClient, engine: sa.Engine, network: dict[str, int]) -> None:
    m, jane = network, network["jane"]

    page = mb_client.get(f"/users/{jane}/timeline?limit=3&offset=0")
    assert page.status_code == 200
    assert [item["id"] for item in page.json["items"]] == [m["m5"], m["m4"], m["m2"]]
    assert page.json == envelope(page.json["items"], count=4, limit=3, offset=0,
                                 next_url=f"/users/{jane}/timeline?limit=3&offset=3")

    last = mb_client.get(page.json["next"])
    assert last.status_code == 200
    assert last.json == envelope(last.json["items"], count=4, limit=3, offset=3)
    assert [item["id"] for item in last.json["items"]] == [m["m1"]]

    past_the_end = mb_client.get(f"/users/{jane}/timeline?limit=3&offset=9")
    assert past_the_end.json == envelope([], count=4, limit=3, offset=9)
    assert len(message_rows(engine)) == 6


def test_the_timeline_is_keyset_paginated(
        mb_client: FlaskClient, engine: sa.Engine, network: dict[str, int]) -> None:
    m, jane = network, network["jane"]

    page = mb_client.get(f"/users/{jane}/timeline?limit=2")
    assert page.status_code == 200
    assert [item["id"] for item in page.json["items"]] == [m["m5"], m["m4"]]
    assert isinstance(page.json["cursor"], str)
    assert "cursor=" in page.json["next"] and "offset=" not in page.json["next"]

    add_message(engine, m["john"], "posted between two pages", 10)
    rest = mb_client.get(page.json["next"])
    assert rest.status_code == 200
    assert [item["id"] for item in rest.json["items"]] == [m["m2"], m["m1"]]
    assert rest.json["next"] is None


def test_the_timeline_of_a_missing_user_is_404(
        mb_client: FlaskClient, engine: sa.Engine, network: dict[str, int]) -> None:
    # Past users.id's INTEGER range (PostgreSQL would refuse to compare), and past BIGINT's.
    for key in (str(MISSING), "jane", str(2**31), str(2**63), "-1", "1.5"):
        assert_problem(mb_client.get(f"/users/{key}/timeline"), 404, case=key)
    assert len(message_rows(engine)) == 6


# -- the tutorial, with tokens ---------------------------------------------------------


def test_the_twittor_tutorial_session(
        mb_client: FlaskClient, engine: sa.Engine, sent: list[bytes]) -> None:
    """The seed's session (users, messages, followers), signed in with tokens."""
    client = mb_client

    def sign_up(name: str, email: str) -> tuple[int, dict[str, str]]:
        created = client.post("/users", json={"name": name, "email": email,
                                              "password": PASSWORD})
        assert created.status_code == 201
        token = client.post("/auth/token", json={"email": email, "password": PASSWORD})
        assert token.status_code == 200
        return created.json["id"], bearer(token.json["access_token"])

    # Users: create, get one, list all, update.
    twittor, as_twittor = sign_up("twittor", "twittor@twittor.com")
    user = client.get(f"/users/{twittor}").json
    assert (user["name"], user["email"]) == ("twittor", "twittor@twittor.com")
    assert client.get("/users").json["items"] == [user]

    assert client.patch(f"/users/{twittor}", json={"name": "sebastien"}).status_code == 401
    patched = client.patch(f"/users/{twittor}", json={"name": "sebastien"}, headers=as_twittor)
    assert patched.status_code == 200
    assert patched.json["name"] == "sebastien"
    assert moment(patched.json["updated_at"]) > moment(user["updated_at"])
    assert user_row(engine, twittor)[0]["name"] == "sebastien"
    assert client.patch(f"/users/{twittor}", json={"name": "twittor"},
                        headers=as_twittor).status_code == 200

    # Messages: post under the user, list them, get, update, delete.
    first = client.post(f"/users/{twittor}/messages", json={"content": "This is a message."},
                        headers=as_twittor)
    assert first.status_code == 201 and first.json["user_id"] == twittor
    new = client.post(f"/users/{twittor}/messages", json={"content": "A new message"},
                      headers=as_twittor)
    assert new.status_code == 201
    listed = client.get(f"/users/{twittor}/messages").json["items"]
    assert [m["content"] for m in listed] == ["A new message", "This is a message."]
    assert client.get(f"/messages/{new.json['id']}").json == new.json
    edited = client.patch(f"/messages/{new.json['id']}", json={"content": "An edited message"},
                          headers=as_twittor)
    assert edited.status_code == 200 and edited.json["content"] == "An edited message"
    assert client.delete(f"/messages/{new.json['id']}", headers=as_twittor).status_code == 204
    assert [row["content"] for row in message_rows(engine)] == ["This is a message."]

    # Followers: john and jane join; twittor follows john, john follows jane, jane twittor.
    john, as_john = sign_up("john", "john@doe.com")
    jane, as_jane = sign_up("jane", "jane@doe.com")
    for follower, followed, headers in [(twittor, john, as_twittor), (john, jane, as_john),
                                        (jane, twittor, as_jane)]:
        response = client.put(f"/users/{follower}/following/{followed}", headers=headers)
        assert response.status_code == 204
    assert follow_pairs(engine) == sorted([(twittor, john), (john, jane), (jane, twittor)])

    def names(url: str) -> set[str]:
        response = client.get(url)
        assert response.status_code == 200
        return {user["name"] for user in response.json["items"]}

    assert names(f"/users/{twittor}/following") == {"john"}
    assert names(f"/users/{twittor}/followers") == {"jane"}

    # Follow and unfollow jane.
    assert client.put(f"/users/{twittor}/following/{jane}", headers=as_twittor).status_code == 204
    assert names(f"/users/{twittor}/following") == {"john", "jane"}
    assert client.delete(f"/users/{twittor}/following/{jane}",
                         headers=as_twittor).status_code == 204
    assert names(f"/users/{twittor}/following") == {"john"}
    assert follow_pairs(engine) == sorted([(twittor, john), (john, jane), (jane, twittor)])

    # john posts; twittor's timeline shows john's message and twittor's own.
    johns = client.post("/messages", json={"content": "John's message."}, headers=as_john)
    assert johns.status_code == 201 and johns.json["user_id"] == john
    timeline = client.get(f"/users/{twittor}/timeline").json["items"]
    assert [m["content"] for m in timeline] == ["John's message.", "This is a message."]

    # Nothing the server sent in the whole session carried a password or its hash.
    assert sent
    assert_no_secrets(sent)

"""Logins and tokens over HTTP, on SQLite and PostgreSQL: a token dies with the account or
the password it was issued for; failed logins are throttled per account and per client
address; password hashing is bounded per app; identifiers are normalised at login.

Users are inserted with plain SQL (one Argon2 hash, computed once) unless the test is about
sign-up; what a refused request would have changed is checked in the database afterwards.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask, request
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from microblog.app import create_app as create_microblog
from microblog.models import User
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.test import TestResponse

from conftest import SECRET, rows
from tablerest import Model, Password, PasswordHash, TableRest, hash_password
from tablerest.auth import SALT, PasswordLogin, password_login
from tablerest.extension import state_of
from tablerest.migrations import Migrations, upgrade

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "Tr0ub4dor&3 rides again"
WRONG = "not the password at all"
PROBLEM = "application/problem+json"
ACCOUNT_GONE = "The token's account no longer exists."
PASSWORD_CHANGED = "The token is no longer valid: the password changed; sign in again."
WRONG_CREDENTIALS = "The name, email or password is wrong."
#: What an OWASP-configured hash starts with: argon2id, 19 MiB, 2 passes, 1 lane.
OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"

users = User.__table__


# -- helpers ---------------------------------------------------------------------------


@functools.cache
def password_hash() -> PasswordHash:
    return hash_password(PASSWORD)


def add_user(engine: sa.Engine, name: str, password: str | None = None,
             user_id: int | None = None, email: str | None = None) -> int:
    """Insert a user with SQL (an explicit id when given); their id."""
    values: dict[str, Any] = {
        "name": name, "email": email or f"{name}@example.com",
        "password": password_hash() if password is None else hash_password(password),
    }
    if user_id is not None:
        values["id"] = user_id
    with engine.begin() as connection:
        return int(connection.execute(
            sa.insert(users).values(**values).returning(users.c.id)).scalar_one())


def user_row(engine: sa.Engine, user_id: int) -> dict[str, Any] | None:
    found = rows(engine, "SELECT id, name, email, password FROM users WHERE id = :id",
                 id=user_id)
    return found[0] if found else None


def name_of(engine: sa.Engine, user_id: int) -> str | None:
    found = user_row(engine, user_id)
    return None if found is None else str(found["name"])


def login(client: FlaskClient, password: str = PASSWORD, address: str = "127.0.0.1",
          **identifier: str) -> TestResponse:
    return client.post("/auth/token", json={**identifier, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def token_of(client: FlaskClient, **identifier: str) -> dict[str, str]:
    """Bearer headers from a real login with ``PASSWORD`` (or ``password=``)."""
    response = login(client, **identifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def assert_problem(response: TestResponse, status: int, detail: str | None = None,
                   ) -> dict[str, Any]:
    shown = response.get_data(as_text=True)
    assert response.status_code == status, shown
    assert response.mimetype == PROBLEM, shown
    body = response.json
    assert body["status"] == status and body["title"] and body["detail"], shown
    if detail is not None:
        assert body["detail"] == detail, shown
    return body


def retry_after(response: TestResponse) -> int:
    return int(response.headers["Retry-After"])


@pytest.fixture
def engine(microblog: Flask) -> sa.Engine:
    return state_of(microblog).engine


@pytest.fixture
def configured(db_url: str, microblog: Flask) -> Iterator[Callable[..., FlaskClient]]:
    """Clients of microblog processes with other settings, on the migrated database."""
    made: list[Flask] = []

    def make(**config: Any) -> FlaskClient:
        app = create_microblog({"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET,
                                **config})
        app.testing = True
        made.append(app)
        return app.test_client()

    yield make
    for app in made:
        state_of(app).engine.dispose()


# -- a token dies with its account and its password ------------------------------------


def test_a_token_dies_with_its_account_even_when_the_id_is_handed_out_again(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    signed_up = mb_client.post("/users", json={"name": "mallory", "email": "m@example.com",
                                               "password": PASSWORD})
    assert signed_up.status_code == 201
    mallory = signed_up.json["id"]
    old = token_of(mb_client, name="mallory")
    assert mb_client.post("/messages", json={"content": "hi"}, headers=old).status_code == 201
    assert mb_client.delete(f"/users/{mallory}", headers=old).status_code == 204

    gone = mb_client.post("/messages", json={"content": "from beyond"}, headers=old)

    assert_problem(gone, 401, ACCOUNT_GONE)
    assert rows(engine, "SELECT id FROM messages") == []

    # The next user gets the same id (SQLite did that without AUTOINCREMENT), even with
    # the same password: the new hash has its own salt, so the old token's stamp differs.
    victim = add_user(engine, "victim", user_id=mallory)
    before = user_row(engine, victim)
    takeover = mb_client.patch(f"/users/{victim}", json={"password": "owned by mallory"},
                               headers=old)

    assert_problem(takeover, 401, PASSWORD_CHANGED)
    assert user_row(engine, victim) == before
    mine = token_of(mb_client, name="victim")
    assert mb_client.patch(f"/users/{victim}", json={"name": "victim2"},
                           headers=mine).status_code == 200
    assert user_row(engine, victim) == {**before, "name": "victim2"}


def test_a_token_dies_when_its_password_changes(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane = add_user(engine, "jane")
    first = token_of(mb_client, name="jane")
    second = token_of(mb_client, email="jane@example.com")  # another device

    changed = mb_client.patch(f"/users/{jane}", json={"password": NEW_PASSWORD}, headers=first)
    assert changed.status_code == 200
    stored = user_row(engine, jane)
    assert stored is not None and PasswordHash(stored["password"]) == NEW_PASSWORD

    for old in (first, second):
        refused = mb_client.patch(f"/users/{jane}", json={"name": "hijacked"}, headers=old)
        assert_problem(refused, 401, PASSWORD_CHANGED)
    assert user_row(engine, jane) == stored

    assert_problem(login(mb_client, name="jane"), 401, WRONG_CREDENTIALS)
    new = token_of(mb_client, name="jane", password=NEW_PASSWORD)
    renamed = mb_client.patch(f"/users/{jane}", json={"name": "jane2"}, headers=new)
    assert renamed.status_code == 200
    assert user_row(engine, jane) == {**stored, "name": "jane2"}


def test_the_token_of_a_live_account_keeps_working(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_user(engine, "jane"), add_user(engine, "john")
    mine = token_of(mb_client, name="jane")
    johns = token_of(mb_client, name="john")
    # Someone else's password change, or a change to jane's other fields, keeps it valid.
    assert mb_client.patch(f"/users/{john}", json={"password": NEW_PASSWORD},
                           headers=johns).status_code == 200

    for name in ("jane2", "jane3"):
        response = mb_client.patch(f"/users/{jane}", json={"name": name}, headers=mine)
        assert response.status_code == 200
        assert response.json["name"] == name
    posted = mb_client.post("/messages", json={"content": "still me"}, headers=mine)
    assert posted.status_code == 201 and posted.json["user_id"] == jane
    assert [row["user_id"] for row in rows(engine, "SELECT user_id FROM messages")] == [jane]


def test_a_token_without_a_stamp_is_refused(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    """Tokens issued before tokens carried a stamp are signed but no longer valid."""
    jane = add_user(engine, "jane")
    unstamped = URLSafeTimedSerializer(SECRET, salt=SALT).dumps({"sub": jane})

    response = mb_client.patch(f"/users/{jane}", json={"name": "x"},
                               headers={"Authorization": f"Bearer {unstamped}"})

    assert_problem(response, 401, "The token is not valid.")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert name_of(engine, jane) == "jane"


def test_a_request_reads_its_token_row_once_and_none_without_a_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted with SQLite's statement trace: the check is the same on every database."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_microblog({"DATABASE_URL": f"sqlite:///{tmp_path / 'mb.db'}",
                            "TABLEREST_SECRET_KEY": SECRET})
    upgrade(Migrations.for_app(app))
    engine = state_of(app).engine
    client = app.test_client()
    jane = add_user(engine, "jane")
    mine = token_of(client, name="jane")
    login_ = state_of(app).login
    assert isinstance(login_, PasswordLogin)
    lookup = str(login_.stamp_query.compile(dialect=engine.dialect)).split("?")[0]
    traced: list[str] = []
    engine.dispose()
    sa.event.listen(engine, "connect",
                    lambda dbapi, _record: dbapi.set_trace_callback(traced.append))

    def lookups() -> int:
        return sum(sql.startswith(lookup) for sql in traced)

    try:
        assert client.patch(f"/users/{jane}", json={"name": "jane2"},
                            headers=mine).status_code == 200
        assert lookups() == 1
        assert client.get("/users").status_code == 200
        assert client.post("/users", json={"name": "john", "email": "john@example.com",
                                           "password": PASSWORD}).status_code == 201
        assert lookups() == 1
    finally:
        engine.dispose()


# -- a login function without stamps --------------------------------------------------


class Base(Model, DeclarativeBase):
    pass


class Member(Base):
    __tablename__ = "members"
    __hidden__ = ("password",)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)  # case-sensitive unique
    password: Mapped[str] = mapped_column(Password)


def members_app(db_url: str, login: Callable[..., Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(DATABASE_URL=db_url, TABLEREST_SECRET_KEY=SECRET)
    app.testing = True
    api = TableRest(app, metadata=Base.metadata)
    api.add(Member)
    api.use_tokens(login=login or password_login(Member, ("name",)))

    @app.get("/me")
    def me() -> dict[str, Any]:
        return {"id": state_of(app).principal(request)}

    Base.metadata.create_all(state_of(app).engine)
    return app


def add_member(engine: sa.Engine, name: str, password: str) -> int:
    with engine.begin() as connection:
        return int(connection.execute(
            sa.insert(Member.__table__).values(name=name, password=hash_password(password))
            .returning(Member.__table__.c.id)).scalar_one())


def plain_login(credentials: Mapping[str, Any], connection: sa.Connection) -> Any:
    """A login function of an app's own: no stamp, so its tokens live until they expire."""
    row = connection.execute(sa.select(Member.id, Member.password)
                             .where(Member.name == credentials.get("name"))).first()
    return row[0] if row is not None and row[1] == credentials.get("password") else None


def test_a_plain_login_function_issues_tokens_that_live_until_they_expire(
        db_url: str) -> None:
    app = members_app(db_url, plain_login)
    engine = state_of(app).engine
    client = app.test_client()
    ann = add_member(engine, "ann", PASSWORD)
    token = token_of(client, name="ann")
    assert client.get("/me", headers=token).json == {"id": ann}

    with engine.begin() as connection:
        connection.execute(sa.update(Member.__table__).values(
            password=hash_password(NEW_PASSWORD)))

    assert client.get("/me", headers=token).json == {"id": ann}
    assert_problem(login(client, name="ann"), 401, WRONG_CREDENTIALS)
    engine.dispose()


def test_login_prefers_the_exact_name_when_several_differ_only_in_case(
        db_url: str) -> None:
    app = members_app(db_url)
    engine = state_of(app).engine
    client = app.test_client()
    upper = add_member(engine, "Ann", "password of Ann")
    lower = add_member(engine, "ann", "password of ann")

    assert client.get("/me", headers=token_of(client, name="ann",
                                              password="password of ann")).json == {"id": lower}
    assert client.get("/me", headers=token_of(client, name="Ann",
                                              password="password of Ann")).json == {"id": upper}
    assert_problem(login(client, name="ann", password="password of Ann"), 401)
    engine.dispose()


# -- identifiers are normalised as sign-up stores them --------------------------------


@pytest.mark.parametrize("identifier", [
    pytest.param({"email": "john@DOE.com"}, id="email-domain-case"),
    pytest.param({"email": "  JOHN@doe.com\t"}, id="email-case-and-spaces"),
    pytest.param({"name": "JOHN"}, id="name-case"),
    pytest.param({"name": " john "}, id="name-spaces"),
    pytest.param({"name": "\uff4a\uff4f\uff48\uff4e"}, id="name-full-width"),
])
def test_login_normalises_the_identifier(
        mb_client: FlaskClient, engine: sa.Engine, identifier: dict[str, str]) -> None:
    john = add_user(engine, "john", email="john@doe.com")

    mine = token_of(mb_client, **identifier)

    renamed = mb_client.patch(f"/users/{john}", json={"name": "john2"}, headers=mine)
    assert renamed.status_code == 200
    assert name_of(engine, john) == "john2"


@pytest.mark.parametrize("identifier", [
    pytest.param({"name": "jo\u200bhn"}, id="zero-width-space"),
    pytest.param({"name": "john\u202e"}, id="right-to-left-override"),
    pytest.param({"name": "\x00john"}, id="nul"),
    pytest.param({"email": "john@doe.com\u200d"}, id="email-zero-width-joiner"),
])
def test_an_identifier_with_invisible_characters_does_not_log_in(
        mb_client: FlaskClient, engine: sa.Engine, identifier: dict[str, str]) -> None:
    add_user(engine, "john", email="john@doe.com")

    assert_problem(login(mb_client, **identifier), 401, WRONG_CREDENTIALS)


# -- Argon2 parameters ----------------------------------------------------------------


def test_sign_up_hashes_with_owasp_parameters_and_old_hashes_still_verify(
        mb_client: FlaskClient, engine: sa.Engine) -> None:
    response = mb_client.post("/users", json={"name": "jane", "email": "jane@example.com",
                                              "password": PASSWORD})
    assert response.status_code == 201
    stored = user_row(engine, response.json["id"])
    assert stored is not None and stored["password"].startswith(OWASP_PREFIX)

    legacy = PasswordHash(PasswordHasher().hash(PASSWORD))  # the default: 64 MiB, t=3, p=4
    assert "m=65536,t=3,p=4" in legacy
    with engine.begin() as connection:
        connection.execute(sa.insert(users).values(name="old", email="old@example.com",
                                                   password=legacy))
    assert login(mb_client, name="old").status_code == 200
    # Not re-hashed: that would change the stamp and sign the user out everywhere.
    assert rows(engine, "SELECT password FROM users WHERE name = 'old'") == [
        {"password": str(legacy)}]


# -- throttling failed logins ---------------------------------------------------------


def test_failed_logins_of_an_account_are_429_past_the_limit(
        configured: Callable[..., FlaskClient], engine: sa.Engine) -> None:
    client = configured(TABLEREST_LOGIN_FAILURES_PER_ACCOUNT=3, TABLEREST_LOGIN_WINDOW=120)
    add_user(engine, "jane")
    add_user(engine, "john")

    # Spellings of one account count together.
    for name in ("jane", "JANE", " jane"):
        assert_problem(login(client, name=name, password=WRONG), 401, WRONG_CREDENTIALS)

    for password in (WRONG, PASSWORD):  # past the limit even the right password waits
        throttled = login(client, name="Jane", password=password)
        problem = assert_problem(throttled, 429)
        assert "account" in problem["detail"]
        assert 1 <= retry_after(throttled) <= 120
        assert "access_token" not in throttled.get_data(as_text=True)

    assert login(client, name="john").status_code == 200  # other accounts are unaffected
    assert login(client, name="nobody", password=WRONG).status_code == 401


def test_a_throttled_login_costs_no_hashing(
        configured: Callable[..., FlaskClient], engine: sa.Engine,
        hold_slot: Callable[[FlaskClient], Any]) -> None:
    client = configured(TABLEREST_LOGIN_FAILURES_PER_ACCOUNT=1, TABLEREST_HASH_CONCURRENCY=1,
                        TABLEREST_HASH_WAIT_MS=10)
    add_user(engine, "jane")
    assert login(client, name="jane", password=WRONG).status_code == 401

    with hold_slot(client):  # every hashing slot busy: a hash would be 503
        assert_problem(login(client, name="jane"), 429)
        assert_problem(login(client, name="john"), 503)


def test_failed_logins_from_one_address_are_429_past_the_limit(
        configured: Callable[..., FlaskClient], engine: sa.Engine) -> None:
    client = configured(TABLEREST_LOGIN_FAILURES_PER_ADDRESS=3)
    add_user(engine, "jane")
    attacker = "203.0.113.7"

    for name in ("a", "b", "c"):  # a spray: one failure per name
        assert login(client, name=name, password=WRONG, address=attacker).status_code == 401

    throttled = login(client, name="jane", address=attacker)
    problem = assert_problem(throttled, 429)
    assert "address" in problem["detail"]
    assert retry_after(throttled) >= 1
    # X-Forwarded-For is not trusted without ProxyFix: it does not change the address.
    spoofed = client.post("/auth/token", json={"name": "jane", "password": PASSWORD},
                          environ_base={"REMOTE_ADDR": attacker},
                          headers={"X-Forwarded-For": "198.51.100.1"})
    assert_problem(spoofed, 429)
    assert login(client, name="jane", address="198.51.100.1").status_code == 200


def test_a_successful_login_clears_the_accounts_failures(
        configured: Callable[..., FlaskClient], engine: sa.Engine) -> None:
    client = configured(TABLEREST_LOGIN_FAILURES_PER_ACCOUNT=2)
    add_user(engine, "jane")

    for _round in range(3):
        assert login(client, name="jane", password=WRONG).status_code == 401
        assert login(client, name="jane").status_code == 200
    assert login(client, name="jane", password=WRONG).status_code == 401
    assert login(client, name="jane", password=WRONG).status_code == 401
    assert_problem(login(client, name="jane"), 429)


# -- bounded hashing -----------------------------------------------------------------


@pytest.fixture
def hold_slot() -> Iterator[Callable[[FlaskClient], Any]]:
    """``with hold_slot(client):`` another thread holds every hashing slot of its app."""
    threads: list[threading.Thread] = []

    class Held:
        def __init__(self, client: FlaskClient) -> None:
            self.gate = state_of(client.application).hash_gate
            self.taken, self.release = threading.Event(), threading.Event()

        def hold(self) -> None:
            with self.gate.slot():
                self.taken.set()
                self.release.wait(10)

        def __enter__(self) -> None:
            thread = threading.Thread(target=self.hold)
            threads.append(thread)
            thread.start()
            assert self.taken.wait(10)

        def __exit__(self, *_exc: object) -> None:
            self.release.set()

    yield Held
    for thread in threads:
        thread.join(10)


def test_hashing_beyond_the_slots_is_503_with_retry_after(
        configured: Callable[..., FlaskClient], engine: sa.Engine,
        hold_slot: Callable[[FlaskClient], Any]) -> None:
    client = configured(TABLEREST_HASH_CONCURRENCY=1, TABLEREST_HASH_WAIT_MS=20,
                        TABLEREST_RETRY_AFTER=7, TABLEREST_LOGIN_FAILURES_PER_ACCOUNT=1)
    add_user(engine, "jane")
    sign_up = {"name": "john", "email": "john@example.com", "password": PASSWORD}

    with hold_slot(client):
        busy = login(client, name="jane")
        assert_problem(busy, 503)
        assert retry_after(busy) == 7
        assert "access_token" not in busy.get_data(as_text=True)
        refused = client.post("/users", json=sign_up)
        assert_problem(refused, 503)
        assert retry_after(refused) == 7
        assert rows(engine, "SELECT name FROM users ORDER BY id") == [{"name": "jane"}]

    assert login(client, name="jane").status_code == 200  # a 503 is not a failed login
    assert client.post("/users", json=sign_up).status_code == 201
    assert rows(engine, "SELECT name FROM users ORDER BY id") == [{"name": "jane"},
                                                                   {"name": "john"}]


def test_the_token_route_documents_429_and_503_with_retry_after(
        mb_client: FlaskClient) -> None:
    document = mb_client.get("/openapi.json").json
    responses = document["paths"]["/auth/token"]["post"]["responses"]

    for status, name in (("429", "TooManyRequests"), ("503", "ServiceUnavailable")):
        assert responses[status] == {"$ref": f"#/components/responses/{name}"}
        component = document["components"]["responses"][name]
        assert component["headers"]["Retry-After"]["required"] is True
        assert PROBLEM in component["content"]

"""Read replicas (``DATABASE_REPLICA_URLS``), against a real streaming replica.

The replica is a ``pg_basebackup -R`` copy of the suite's throwaway server (``pgserver.py``).
Which server answered a read is shown by the data: with the replica's replay paused, a
write reaches only the primary, so a read that sees it came from the primary and one that
does not came from the replica.

Without replicas nothing changes: a write carries no position (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from microblog.app import create_app as create_microblog
from microblog.models import User

from conftest import SECRET, rows
from pgserver import PostgresServer, ReplicaServer
from tablerest import PasswordHash, hash_password
from tablerest.auth import issue_token
from tablerest.errors import ConfigurationError
from tablerest.extension import state_of
from tablerest.migrations import Migrations, upgrade
from tablerest.replicas import (
    POSITION_COOKIE,
    POSITION_HEADER,
    parse_position,
    replayed_at,
)
from tablerest.settings import build_settings

DATABASE = "tablerest_replicas"
PASSWORD = "correct horse battery staple"
#: Generous: the replica answers within milliseconds when it can.
CATCH_UP = 20.0
#: Seconds between the checks of a replica, where a test needs them rare.
CHECKS = 3


# -- servers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def primary(postgres: Any) -> PostgresServer:
    if not isinstance(postgres, PostgresServer):
        pytest.skip("A replica is made of the suite's own throwaway server "
                    "(TABLEREST_TEST_POSTGRES_URL names another one).")
    return postgres


@pytest.fixture(scope="module")
def primary_url(primary: PostgresServer) -> str:
    return primary.create_database(DATABASE)


@pytest.fixture(scope="module")
def replica(primary: PostgresServer, primary_url: str) -> Iterator[ReplicaServer]:
    server = ReplicaServer(primary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def engines(primary_url: str, replica: ReplicaServer) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Plain engines on the primary and on the replica, for the tests' own SQL."""
    on_primary = sa.create_engine(primary_url, poolclass=sa.NullPool)
    on_replica = sa.create_engine(replica.url(DATABASE), poolclass=sa.NullPool)
    try:
        yield on_primary, on_replica
    finally:
        on_primary.dispose()
        on_replica.dispose()


def scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.text(sql)).scalar()


def caught_up(engines: tuple[sa.Engine, sa.Engine]) -> None:
    """Wait until the replica has replayed everything the primary has written."""
    on_primary, on_replica = engines
    insert, page = tuple(rows(on_primary, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), "
                                          "'0/0')::bigint AS i, current_setting('wal_block_size')"
                                          "::int AS p")[0].values())
    target = replayed_at(int(insert), int(page))
    deadline = time.monotonic() + CATCH_UP
    while scalar(on_replica, "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')"
                             "::bigint") < target:
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.01)


@contextmanager
def replay_paused(engines: tuple[sa.Engine, sa.Engine]) -> Iterator[None]:
    """The replica replays nothing inside the block (it keeps receiving)."""
    on_replica = engines[1]
    scalar(on_replica, "SELECT pg_wal_replay_pause()")
    try:
        deadline = time.monotonic() + CATCH_UP
        while scalar(on_replica, "SELECT pg_get_wal_replay_pause_state()") != "paused":
            assert time.monotonic() < deadline, "the replica did not pause"
            time.sleep(0.01)
        yield
    finally:
        resume_replay(engines)


def resume_replay(engines: tuple[sa.Engine, sa.Engine]) -> None:
    scalar(engines[1], "SELECT pg_wal_replay_resume()")


# -- the app ---------------------------------------------------------------------------------


@functools.cache
def password_hash() -> PasswordHash:
    return hash_password(PASSWORD)


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_blog(primary_url: str, replica: ReplicaServer, engines: tuple[sa.Engine, sa.Engine],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[AppFactory]:
    """Microblogs on an empty schema, reading from the replica; ``config`` adds settings."""
    for name in ("DATABASE_URL", "DATABASE_REPLICA_URLS", "FLASK_CONFIG_PREFIXES"):
        monkeypatch.delenv(name, raising=False)
    with engines[0].begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    made: list[Flask] = []

    def make(**config: Any) -> Flask:
        app = create_microblog({"DATABASE_URL": primary_url, "TABLEREST_SECRET_KEY": SECRET,
                                "DATABASE_REPLICA_URLS": replica.url(DATABASE), **config})
        app.testing = True
        made.append(app)
        if len(made) == 1:
            upgrade(Migrations.for_app(app))
            caught_up(engines)
        return app

    try:
        yield make
    finally:
        resume_replay(engines) if replica.port is not None else None
        for app in made:
            state = state_of(app)
            state.engine.dispose()
            if state.replicas is not None:
                state.replicas.dispose()


def add_user(engine: sa.Engine, name: str) -> int:
    with engine.begin() as connection:
        return int(connection.execute(
            sa.insert(User.__table__).values(name=name, email=f"{name}@example.com",
                                             password=password_hash())
            .returning(User.__table__.c.id)).scalar_one())


def add_message(engine: sa.Engine, user_id: int, content: str) -> None:
    """A message written on the primary behind the API's back."""
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO messages (content, user_id, created_at, "
                                   "updated_at) VALUES (:c, :u, now(), now())"),
                           {"c": content, "u": user_id})


def contents(client: FlaskClient, **headers: str) -> list[str]:
    """The messages a client reads through the API's list."""
    response = client.get("/messages?sort=id&limit=100", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["content"] for item in response.get_json()["items"]]


def post(app: Flask, client: FlaskClient, user_id: int, content: str) -> str:
    """Post a message through the API as ``user_id``; the position the response carries."""
    token = issue_token(state_of(app), user_id)["access_token"]
    response = client.post("/messages", json={"content": content},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    position = response.headers[POSITION_HEADER]
    assert parse_position(position) is not None
    return position


# -- routing and read-your-writes ------------------------------------------------------------


def test_reads_come_from_the_replica_and_the_writer_reads_its_write(
        make_blog: AppFactory, engines: tuple[sa.Engine, sa.Engine]) -> None:
    app = make_blog(TABLEREST_REPLICA_MAX_LAG_MS=60000)
    on_primary, on_replica = engines
    ada = add_user(on_primary, "ada")
    add_message(on_primary, ada, "before")
    caught_up(engines)
    writer, reader = app.test_client(), app.test_client()
    assert contents(reader) == ["before"]
    with replay_paused(engines):
        position = post(app, writer, ada, "after")
        # The write is on the primary only.
        assert [r["content"] for r in rows(on_primary, "SELECT content FROM messages "
                                                       "ORDER BY id")] == ["before", "after"]
        assert [r["content"] for r in rows(on_replica, "SELECT content FROM messages "
                                                       "ORDER BY id")] == ["before"]
        cookie = writer.get_cookie(POSITION_COOKIE)
        assert cookie is not None and cookie.value == position and cookie.http_only
        # A client without the position reads the replica: every kind of read.
        assert contents(reader) == ["before"]
        assert reader.get("/messages?count=true").get_json()["count"] == 1
        assert reader.get(f"/users/{ada}/messages").get_json()["count"] == 1
        timeline = reader.get(f"/users/{ada}/timeline").get_json()["items"]  # SQLAlchemy's
        assert [message["content"] for message in timeline] == ["before"]
        embedded = reader.get("/users?include=messages").get_json()["items"][0]["messages"]
        assert [message["content"] for message in embedded] == ["before"]
        assert reader.get("/rest/v1/messages?select=content").get_json() == [
            {"content": "before"}]
        page = reader.get("/messages", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "before" in page.get_data(as_text=True)
        assert "after" not in page.get_data(as_text=True)
        exported = reader.get("/messages?fields=content", headers={"Accept": "text/csv"})
        assert exported.get_data(as_text=True).split() == ["content", "before"]
        # The writer's next read carries the position (its cookie): the primary answers.
        assert contents(writer) == ["before", "after"]
        timeline = writer.get(f"/users/{ada}/timeline").get_json()["items"]
        assert [message["content"] for message in timeline] == ["after", "before"]
        assert writer.get("/rest/v1/messages?select=content").get_json() == [
            {"content": "before"}, {"content": "after"}]
        # So does any client that sends the position in the header.
        assert contents(app.test_client(), **{POSITION_HEADER: position}) == [
            "before", "after"]
    caught_up(engines)
    assert contents(reader) == ["before", "after"]
    with replay_paused(engines):
        # The replica has replayed the position now: the writer's reads go to it again.
        add_message(on_primary, ada, "unreplayed")
        assert contents(writer) == ["before", "after"]
        assert contents(app.test_client()) == ["before", "after"]


def test_a_read_waits_briefly_for_the_replica_to_replay_the_write(
        make_blog: AppFactory, engines: tuple[sa.Engine, sa.Engine]) -> None:
    app = make_blog(TABLEREST_REPLICA_MAX_LAG_MS=60000, TABLEREST_REPLICA_WAIT_MS=5000)
    on_primary = engines[0]
    ada = add_user(on_primary, "ada")
    caught_up(engines)
    writer = app.test_client()
    assert contents(writer) == []
    with replay_paused(engines):
        post(app, writer, ada, "mine")
        resumer = threading.Timer(0.3, resume_replay, (engines,))
        resumer.start()
        started = time.monotonic()
        seen = contents(writer)
        waited = time.monotonic() - started
        resumer.join()
    assert seen == ["mine"]
    # It waited for the replay (not the 5 s after which the primary would have answered).
    assert 0.25 <= waited < 4.5


def test_a_read_that_waits_in_vain_is_answered_by_the_primary(
        make_blog: AppFactory, engines: tuple[sa.Engine, sa.Engine]) -> None:
    app = make_blog(TABLEREST_REPLICA_MAX_LAG_MS=60000, TABLEREST_REPLICA_WAIT_MS=200)
    ada = add_user(engines[0], "ada")
    caught_up(engines)
    writer = app.test_client()
    with replay_paused(engines):
        post(app, writer, ada, "mine")
        started = time.monotonic()
        assert contents(writer) == ["mine"]
        assert time.monotonic() - started >= 0.2
        assert contents(app.test_client()) == []


def test_a_changed_password_ends_tokens_even_while_the_replica_lags(
        make_blog: AppFactory, engines: tuple[sa.Engine, sa.Engine]) -> None:
    app = make_blog(TABLEREST_REPLICA_MAX_LAG_MS=60000)
    ada = add_user(engines[0], "ada")
    caught_up(engines)
    old = {"Authorization": f"Bearer {issue_token(state_of(app), ada)['access_token']}"}
    assert app.test_client().get("/messages", headers=old).status_code == 200
    with replay_paused(engines):
        changed = app.test_client().patch(f"/users/{ada}", headers=old,
                                          json={"password": "a new one, quite long"})
        assert changed.status_code == 200
        # The replica still holds the old hash; tokens are checked on the primary.
        response = app.test_client().get("/messages", headers=old)
        assert response.status_code == 401
        assert "password changed" in response.get_json()["detail"]


def test_a_malformed_position_header_is_400(make_blog: AppFactory) -> None:
    client = make_blog().test_client()
    response = client.get("/messages", headers={POSITION_HEADER: "yesterday"})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert "'yesterday'" in response.get_json()["detail"]
    # A malformed cookie is the browser's old state: ignored.
    client.set_cookie(POSITION_COOKIE, "yesterday")
    assert client.get("/messages").status_code == 200


# -- lag and outages -------------------------------------------------------------------------


def test_a_replica_too_far_behind_is_skipped_until_it_catches_up(
        make_blog: AppFactory, engines: tuple[sa.Engine, sa.Engine]) -> None:
    app = make_blog(TABLEREST_REPLICA_MAX_LAG_MS=1500, TABLEREST_REPLICA_CHECK_INTERVAL_MS=50)
    on_primary = engines[0]
    ada = add_user(on_primary, "ada")
    client = app.test_client()
    add_message(on_primary, ada, "one")
    caught_up(engines)
    with replay_paused(engines):
        add_message(on_primary, ada, "two")
        assert contents(client) == ["one"]  # behind, but within the limit: the replica
        time.sleep(2.0)
        assert contents(client) == ["one", "two"]  # too far behind: the primary
    add_message(on_primary, ada, "three")
    caught_up(engines)
    time.sleep(0.1)  # the next check finds it caught up
    with replay_paused(engines):
        add_message(on_primary, ada, "four")
        assert contents(client) == ["one", "two", "three"]  # the replica again


def test_a_replica_that_stops_is_skipped_and_used_again_when_it_is_back(
        make_blog: AppFactory, replica: ReplicaServer,
        engines: tuple[sa.Engine, sa.Engine]) -> None:
    # Checks are rare here: the first reads after the stop come before the next check.
    app = make_blog(TABLEREST_REPLICA_MAX_LAG_MS=60000,
                    TABLEREST_REPLICA_CHECK_INTERVAL_MS=CHECKS * 1000)
    on_primary = engines[0]
    ada = add_user(on_primary, "ada")
    add_message(on_primary, ada, "one")
    caught_up(engines)
    client, writer = app.test_client(), app.test_client()
    with replay_paused(engines):
        add_message(on_primary, ada, "two")
        assert contents(client) == ["one"]  # the replica answers (its pool holds a connection)
    caught_up(engines)
    replica.halt()
    try:
        for _ in range(5):  # at once, and without a 500: the primary answers
            assert contents(client) == ["one", "two"]
        position = post(app, writer, ada, "three")
        assert contents(writer) == ["one", "two", "three"]
        assert contents(app.test_client(), **{POSITION_HEADER: position})[-1] == "three"
        assert client.get("/rest/v1/messages?select=content").status_code == 200
    finally:
        replica.resume()
    caught_up(engines)
    time.sleep(CHECKS + 0.2)  # the next check finds it back
    with replay_paused(engines):
        add_message(on_primary, ada, "four")
        assert contents(client) == ["one", "two", "three"]  # the replica again


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("postgresql://a/db", ("postgresql+psycopg://a/db",), id="one"),
    pytest.param("postgresql://a/db, postgres://b/db", ("postgresql+psycopg://a/db",
                                                        "postgresql+psycopg://b/db"),
                 id="commas"),
    pytest.param(" postgresql://a/db\n postgresql://b/db ", ("postgresql+psycopg://a/db",
                                                             "postgresql+psycopg://b/db"),
                 id="spaces"),
    pytest.param("postgresql://a:5432,b:5433/db,postgresql://c/db",
                 ("postgresql+psycopg://a:5432,b:5433/db", "postgresql+psycopg://c/db"),
                 id="multi-host"),
    pytest.param(["postgresql://a/db", "postgresql://b/db"],
                 ("postgresql+psycopg://a/db", "postgresql+psycopg://b/db"), id="list"),
    pytest.param("", (), id="empty"),
])
def test_replica_urls_are_read_like_database_url(value: Any, expected: tuple[str, ...]) -> None:
    assert build_settings({"DATABASE_REPLICA_URLS": value}, environ={}).replica_urls == expected
    if isinstance(value, str):
        settings = build_settings({}, environ={"DATABASE_REPLICA_URLS": value})
        assert settings.replica_urls == expected


def test_replica_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match=r"PostgreSQL URLs.*'sqlite:///r\.db'"):
        build_settings({"DATABASE_REPLICA_URLS": "sqlite:///r.db"}, environ={})
    with pytest.raises(ConfigurationError, match="TABLEREST_REPLICA_MAX_LAG_MS"):
        build_settings({"TABLEREST_REPLICA_MAX_LAG_MS": "soon"}, environ={})
    settings = build_settings({"TABLEREST_REPLICA_MAX_LAG_MS": "250",
                               "TABLEREST_REPLICA_WAIT_MS": "0",
                               "TABLEREST_REPLICA_CHECK_INTERVAL_MS": "20"}, environ={})
    assert (settings.replica_max_lag, settings.replica_wait,
            settings.replica_check_interval) == (0.25, 0.0, 0.02)


def test_replicas_of_a_sqlite_database_are_refused(tmp_path: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="main database is 'sqlite'"):
        create_microblog({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                          "TABLEREST_SECRET_KEY": SECRET,
                          "DATABASE_REPLICA_URLS": "postgresql://127.0.0.1/x"})


def test_without_replicas_a_write_carries_no_position(mb_client: FlaskClient,
                                                      microblog: Flask) -> None:
    engine = state_of(microblog).engine
    ada = add_user(engine, "ada")
    token = issue_token(state_of(microblog), ada)["access_token"]
    response = mb_client.post("/messages", json={"content": "hello"},
                              headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    assert POSITION_HEADER not in response.headers
    assert "Set-Cookie" not in response.headers
    assert state_of(microblog).replicas is None
    assert rows(engine, "SELECT content FROM messages") == [{"content": "hello"}]


def test_positions_are_postgresql_lsns() -> None:
    assert parse_position("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert parse_position("0/0") == 0
    assert parse_position("16/B374D848/1") is None
    assert replayed_at(8192 * 7 + 24, 8192) == 8192 * 7  # past a page header: its boundary
    assert replayed_at(8192 * 7 + 48, 8192) == 8192 * 7 + 48

"""Nothing waits without a limit: an exhausted pool, a statement past its time limit and a
database that went away are each a quick 503 with ``Retry-After``, the transaction rolled
back, and the server answers normally again afterwards without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from benchmarks.chaos_faults import _pg_ctl, ensure_postgres_running
from flask import Flask

from conftest import rows
from factories import add_user
from tablerest import RequestContext, Resource, TableRest
from testapp import Base, User


def slow_condition(ctx: RequestContext) -> sa.ColumnElement[bool]:
    """A condition that takes seconds to evaluate, on either database."""
    if ctx.connection.dialect.name == "postgresql":
        return sa.text("pg_sleep(3)::text IS NOT NULL")  # type: ignore[return-value]
    return sa.text(  # type: ignore[return-value]
        "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
        "WHERE x < 100000000) SELECT count(*) FROM c) > 0")


class SlowUsers(Resource):
    """Updates that run a slow statement inside their transaction."""

    model = User

    def before_update(self, current: Any, values: dict[str, Any], ctx: RequestContext) -> None:
        ctx.connection.execute(sa.select(sa.literal(1)).where(slow_condition(ctx)))


@pytest.fixture
def limited(db_url: str) -> Iterator[Flask]:
    app = Flask(__name__)
    app.testing = True
    app.config.update(DATABASE_URL=db_url, TABLEREST_SECRET_KEY="test-secret-key-0123456789",
                      TABLEREST_POOL_TIMEOUT_MS=200, TABLEREST_STATEMENT_TIMEOUT=300,
                      TABLEREST_RETRY_AFTER=2)
    api = TableRest(app)
    api.add(SlowUsers)
    api.list_route("/slow", "users", lambda ctx: slow_condition(ctx))
    engine = api.engine_of(app)
    Base.metadata.create_all(engine)
    yield app
    engine.dispose()


NEW_USER = {"name": "bob", "email": "bob@example.com", "password": "a-long-secret-1"}


def assert_503(response: Any, within: float, started: float) -> None:
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"] == "2"
    assert response.mimetype == "application/problem+json"
    assert time.monotonic() - started < within


def test_an_exhausted_pool_is_a_quick_503(limited: Flask) -> None:
    engine = limited.extensions["tablerest"].engine
    add_user(engine, "alice")
    client = limited.test_client()
    assert client.get("/users").status_code == 200
    held = []
    try:
        while True:  # take every connection the pool will give
            try:
                held.append(engine.connect())
            except sa.exc.TimeoutError:
                break
        started = time.monotonic()
        assert_503(client.get("/users"), 2.0, started)
    finally:
        for connection in held:
            connection.close()
    assert client.get("/users").status_code == 200


def test_a_slow_read_is_cancelled_with_a_503(limited: Flask) -> None:
    add_user(limited.extensions["tablerest"].engine, "alice")
    client = limited.test_client()
    started = time.monotonic()
    assert_503(client.get("/slow"), 2.5, started)
    assert client.get("/users").status_code == 200


def test_a_slow_write_is_cancelled_and_rolled_back(limited: Flask) -> None:
    engine = limited.extensions["tablerest"].engine
    user = add_user(engine, "alice", age=1)
    client = limited.test_client()
    started = time.monotonic()
    assert_503(client.patch(f"/users/{user}", json={"age": 2}), 2.5, started)
    assert rows(engine, "SELECT age FROM users") == [{"age": 1}]
    # Console work is not timed: a long migration or seed is not cut short.
    from tablerest.database import untimed

    with engine.begin() as connection:
        untimed(connection)
        connection.execute(sa.select(sa.literal(1)).where(sa.text("1 = 1")))


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_stopped_database_is_503_and_recovers_without_restart(
        limited: Flask, postgres: Any) -> None:
    if getattr(postgres, "data_dir", None) is None:
        pytest.fail("this test needs the suite's own PostgreSQL server")
    engine = limited.extensions["tablerest"].engine
    user = add_user(engine, "alice")
    client = limited.test_client()
    for _ in range(3):  # fill the pool with connections that the restart will break
        assert client.get(f"/users/{user}").status_code == 200
    data_dir = postgres.data_dir
    _pg_ctl(postgres.bindir, data_dir, ["stop", "-D", str(data_dir), "-m", "fast", "-w"])
    try:
        for path in (f"/users/{user}", "/users"):
            started = time.monotonic()
            assert_503(client.get(path), 8.0, started)
        started = time.monotonic()
        assert_503(client.post("/users", json=NEW_USER), 8.0, started)
    finally:
        ensure_postgres_running(postgres)
    # The first request may still meet a stale connection (503); then answers are normal.
    answers = [client.get(f"/users/{user}").status_code for _ in range(4)]
    assert answers[1:] == [200, 200, 200], answers
    assert client.post("/users", json=NEW_USER).status_code == 201
    assert client.get("/users").get_json()["count"] == 2

"""The request paths the benchmark measures keep their behaviour when they take shortcuts:
a token seen before still expires, and a read's pooled connection goes back to the pool as
it came (on PostgreSQL fast reads run in autocommit)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from microblog.app import create_app as create_microblog

from conftest import SECRET, rows
from tablerest import hash_password
from tablerest.extension import state_of

PASSWORD = "correct horse battery"


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


def add_user(engine: sa.Engine, name: str) -> int:
    users = sa.table("users", sa.column("id"), sa.column("name"), sa.column("email"),
                     sa.column("password"), sa.column("created_at"), sa.column("updated_at"))
    now = sa.func.current_timestamp()
    with engine.begin() as connection:
        return int(connection.execute(
            sa.insert(users).values(name=name, email=f"{name}@example.com",
                                    password=hash_password(PASSWORD), created_at=now,
                                    updated_at=now).returning(users.c.id)).scalar_one())


def bearer(client: FlaskClient, name: str) -> dict[str, str]:
    answer = client.post("/auth/token", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {"Authorization": f"Bearer {answer.json['access_token']}"}


def test_a_token_accepted_before_still_expires(
        configured: Callable[..., FlaskClient], microblog: Flask) -> None:
    client = configured(TABLEREST_TOKEN_TTL=1)
    engine = state_of(microblog).engine
    user_id = add_user(engine, "jane")
    headers = bearer(client, "jane")
    first = client.post(f"/users/{user_id}/messages", json={"content": "Before."},
                        headers=headers)
    assert first.status_code == 201, first.get_data(as_text=True)
    time.sleep(2.2)  # itsdangerous counts whole seconds: the token is now 2 s old, TTL 1 s
    late = client.post(f"/users/{user_id}/messages", json={"content": "After."},
                       headers=headers)
    assert late.status_code == 401, late.get_data(as_text=True)
    assert late.json["detail"] == "The token has expired; ask /auth/token for a new one."
    assert [row["content"] for row in rows(
        engine, "SELECT content FROM messages WHERE user_id = :id", id=user_id)] == ["Before."]


def test_a_read_gives_its_connection_back_as_it_came(mb_client: FlaskClient,
                                                     microblog: Flask) -> None:
    engine = state_of(microblog).engine
    user_id = add_user(engine, "ann")
    headers = bearer(mb_client, "ann")
    for _ in range(3):  # reads with a token: the stamp is read on a pooled connection too
        assert mb_client.get(f"/users/{user_id}", headers=headers).status_code == 200
        assert mb_client.get("/users?limit=5").status_code == 200
    connection = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            assert connection.driver_connection.autocommit is False  # type: ignore[union-attr]
    finally:
        connection.close()
    # Writes after those reads: a refused batch creates nothing, a good one commits.
    posted = mb_client.post(f"/users/{user_id}/messages", json=[
        {"content": "One."}, {"content": "Two.", "bogus": 1}], headers=headers)
    assert posted.status_code == 422, posted.get_data(as_text=True)
    assert rows(engine, "SELECT id FROM messages WHERE user_id = :id", id=user_id) == []
    good = mb_client.post(f"/users/{user_id}/messages", json={"content": "Kept."},
                          headers=headers)
    assert good.status_code == 201, good.get_data(as_text=True)
    assert [row["content"] for row in rows(
        engine, "SELECT content FROM messages WHERE user_id = :id", id=user_id)] == ["Kept."]

"""Seeders: the convention, one transaction per run, the microblog's seed, fake data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient

from conftest import rows
from tablerest import create_engine
from tablerest.cli import main
from tablerest.extension import state_of
from tablerest.fakedata import FakeData
from tablerest.seeding import (
    FAKE_PASSWORD,
    FakeDataSeeder,
    Seeder,
    SeedingError,
    find_seeder,
    run_seeder,
    seeders_module_name,
)

LOG: list[str] = []


class First(Seeder):
    def run(self) -> None:
        LOG.append("first")
        self.connection.execute(sa.text("INSERT INTO log (step) VALUES ('first')"))


class Broken(Seeder):
    def run(self) -> None:
        LOG.append("broken")
        raise RuntimeError("half way")


class Both(Seeder):
    def run(self) -> None:
        self.call(First, Broken)


class Twice(Seeder):
    def run(self) -> None:
        self.call(First, First)


@pytest.fixture
def log_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE log (id INTEGER PRIMARY KEY, step TEXT)"))
    LOG.clear()
    yield engine
    engine.dispose()


def test_call_runs_seeders_in_order_in_one_transaction(log_engine: sa.Engine) -> None:
    run_seeder(log_engine, Twice)
    assert rows(log_engine, "SELECT step FROM log") == [{"step": "first"}] * 2

    with pytest.raises(RuntimeError, match="half way"):
        run_seeder(log_engine, Both)

    assert LOG == ["first", "first", "first", "broken"]
    assert len(rows(log_engine, "SELECT step FROM log")) == 2  # Both's insert rolled back


def test_the_seeders_module_by_convention(microblog: Flask) -> None:
    assert seeders_module_name(microblog) == "microblog.seeders"
    assert seeders_module_name(Flask("microblog")) == "microblog.seeders"
    assert seeders_module_name(Flask("app")) == "seeders"
    configured = Flask("app")
    configured.config["TABLEREST_SEEDERS"] = "test_seeding"
    assert seeders_module_name(configured) == "test_seeding"
    assert find_seeder("test_seeding", "Twice") is Twice


def test_seeder_lookup_errors() -> None:
    with pytest.raises(SeedingError, match=r"No seeders module 'nowhere\.seeders': create it"):
        find_seeder("nowhere.seeders")
    with pytest.raises(SeedingError, match=r"No seeder 'Nope' in 'test_seeding' \(seeders "
                                           r"there: Both, Broken, FakeDataSeeder, First, "
                                           r"Twice\)"):
        find_seeder("test_seeding", "Nope")


def seed(app: Flask, *args: str) -> str:
    result = CliRunner().invoke(main, ["db", "seed", *args],
                                obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_microblog_seed_twice_does_not_duplicate(microblog: Flask) -> None:
    engine = state_of(microblog).engine

    assert seed(microblog) == "Seeded with microblog.seeders.DatabaseSeeder.\n"
    seed(microblog)

    assert rows(engine, "SELECT name, email FROM users ORDER BY id") == [
        {"name": "twittor", "email": "twittor@twittor.com"},
        {"name": "john", "email": "john@doe.com"},
        {"name": "jane", "email": "jane@doe.com"},
    ]
    assert rows(engine, "SELECT u.name, m.content FROM messages m JOIN users u "
                        "ON u.id = m.user_id ORDER BY m.id") == [
        {"name": "twittor", "content": "Twittor's message."},
        {"name": "john", "content": "John's message."},
        {"name": "jane", "content": "Jane's message."},
    ]
    assert rows(engine, "SELECT a.name AS follower, b.name AS followed FROM follows f "
                        "JOIN users a ON a.id = f.follower_id "
                        "JOIN users b ON b.id = f.followed_id ORDER BY f.id") == [
        {"follower": "twittor", "followed": "john"},
        {"follower": "john", "followed": "jane"},
        {"follower": "jane", "followed": "twittor"},
    ]


def test_microblog_seed_password_logs_in(microblog: Flask, mb_client: FlaskClient) -> None:
    seed(microblog)

    response = mb_client.post("/auth/token", json={"name": "jane", "password": "twittor-demo"})

    assert response.status_code == 200


def test_fake_seed_respects_unique_constraints(microblog: Flask,
                                               mb_client: FlaskClient) -> None:
    engine = state_of(microblog).engine
    seed(microblog)  # the fixed seed first: fake names must not collide with it

    first = seed(microblog, "--fake", "--users", "40")
    seed(microblog, "--fake", "--users", "40")

    assert first.startswith("Seeded 40 users, 400 messages, 400 follows in ")
    users = rows(engine, "SELECT id, name, email FROM users")
    assert len(users) == 83
    assert len({u["name"] for u in users}) == len({u["email"].lower() for u in users}) == 83
    assert rows(engine, "SELECT count(*) AS n FROM messages") == [{"n": 803}]
    follows = rows(engine, "SELECT follower_id, followed_id FROM follows")
    assert len(follows) == 803
    assert len({(f["follower_id"], f["followed_id"]) for f in follows}) == 803
    assert all(f["follower_id"] != f["followed_id"] for f in follows)
    fake_user = next(u for u in users if u["name"] not in {"twittor", "john", "jane"})
    token = mb_client.post("/auth/token", json={"name": fake_user["name"],
                                                "password": FAKE_PASSWORD})
    assert token.status_code == 200
    signup = mb_client.post("/users", json={"name": "newcomer", "email": "new@example.com",
                                            "password": "s3cret-pass"})
    assert signup.status_code == 201  # the key sequence was not bypassed


def test_fake_seed_is_repeatable_and_reports_progress(microblog: Flask) -> None:
    engine = state_of(microblog).engine
    progress: list[tuple[str, int, int]] = []

    seeder = run_seeder(engine, FakeDataSeeder, users=5, messages_per_user=3,
                        follows_per_user=10, seed=7, batch_size=4,
                        progress=lambda *event: progress.append(event))

    assert seeder.counts == {"users": 5, "messages": 15, "follows": 20}  # 4 others each
    assert progress[-1] == ("follows", 20, 20)
    assert ("messages", 15, 15) in progress and ("users", 0, 5) in progress
    names = [r["name"] for r in rows(engine, "SELECT name FROM users ORDER BY id")]
    assert names == [name for name, _ in FakeData(seed=7).people(5, set(), set())]


def test_fake_seed_needs_the_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")

    with pytest.raises(SeedingError, match=r"missing: users, messages, follows.*db upgrade"):
        run_seeder(engine, FakeDataSeeder, users=1)
    engine.dispose()


def test_fake_people_are_unique_in_a_small_name_space() -> None:
    taken_names, taken_emails = {"ada_lee"}, {"ada_lee2@example.com"}

    people = FakeData(seed=1).people(20_000, taken_names, taken_emails, name_length=12)

    assert len({name for name, _ in people}) == len({email for _, email in people}) == 20_000
    assert "ada_lee" not in {name for name, _ in people}
    assert all(len(name) <= 12 for name, _ in people)


def test_fake_messages_read_like_sentences() -> None:
    fake = FakeData(seed=3)

    texts = fake.messages(50)

    assert all(text[0].isupper() and len(text) > 10 for text in texts)
    assert len(set(texts)) > 40

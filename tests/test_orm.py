"""The model helpers: create/update/delete/find/count/bulk_add/find_for_update on the app
context's session, raw SQL with named parameters, the Password type and UTC timestamps."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from flask import Flask

import tablerest
from conftest import rows
from factories import PASSWORD, PASSWORD_HASH, add_post, add_user
from tablerest import NotFound, PasswordHash, ValidationFailed
from testapp import Post, Tag, User


def as_utc(value: dt.datetime) -> dt.datetime:
    """A timestamp read back through the ORM; SQLite returns UTC without the offset."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def test_create_flushes_and_the_caller_commits(app: Flask, engine: sa.Engine) -> None:
    with app.app_context():
        tag = Tag.create(name="python", label="snake")
        assert tablerest.session().get(Tag, "python") is tag
        assert rows(engine, "SELECT name FROM tags") == []  # flushed, not committed
        tablerest.session().commit()
    assert rows(engine, "SELECT name, label FROM tags") == [{"name": "python", "label": "snake"}]


def test_uncommitted_work_is_discarded_with_the_app_context(app: Flask,
                                                            engine: sa.Engine) -> None:
    with app.app_context():
        Tag.create(name="python")
    with app.app_context():
        assert Tag.find("python") is None
    assert rows(engine, "SELECT name FROM tags") == []


@pytest.mark.parametrize("data", [{"nope": 1}, {"name": "x", "posts": []},
                                  {"name": "x", "_sa_instance_state": None}],
                         ids=["unknown", "relationship", "internal"])
def test_create_refuses_what_is_not_a_column(app: Flask, engine: sa.Engine,
                                             data: dict[str, object]) -> None:
    with app.app_context():
        with pytest.raises(ValidationFailed) as caught:
            User.create(**data)
        assert caught.value.status == 422
        assert {error.field for error in caught.value.errors} == set(data) - {"name"}
        tablerest.session().commit()
    assert rows(engine, "SELECT id FROM users") == []


def test_update_and_delete(app: Flask, engine: sa.Engine) -> None:
    user = add_user(engine, "jane", age=30)
    with app.app_context():
        found = User.find_or_404(user)
        found.update(age=31, name="joan")
        tablerest.session().commit()
    assert rows(engine, "SELECT name, age FROM users") == [{"name": "joan", "age": 31}]
    with app.app_context():
        with pytest.raises(ValidationFailed):
            User.find_or_404(user).update(nope=1)
        User.find_or_404(user).delete()
        tablerest.session().commit()
    assert rows(engine, "SELECT id FROM users") == []


def test_delete_cascades_through_the_database(app: Flask, engine: sa.Engine) -> None:
    jane, john = add_user(engine, "jane"), add_user(engine, "john")
    add_post(engine, jane, "one")
    kept = add_post(engine, john, "two")
    with app.app_context():
        User.find_or_404(jane).delete()
        tablerest.session().commit()
    assert rows(engine, "SELECT id FROM posts") == [{"id": kept}]


def test_find_and_find_or_404(app: Flask, engine: sa.Engine) -> None:
    user = add_user(engine, "jane")
    with app.app_context():
        found = User.find(user)
        assert found is not None and found.name == "jane"
        assert User.find(user + 1) is None
        assert User.find_or_404(user) is found
        with pytest.raises(NotFound) as caught:
            User.find_or_404(user + 1)
        assert caught.value.status == 404
        assert str(user + 1) in caught.value.detail


def test_count_with_and_without_conditions(app: Flask, engine: sa.Engine) -> None:
    for name, age in [("a", 30), ("b", 30), ("c", 40)]:
        add_user(engine, name, age=age)
    with app.app_context():
        assert User.count() == 3
        assert User.count(age=30) == 2
        assert User.count(age=30, name="b") == 1
        assert Post.count() == 0


def test_bulk_add_creates_many_in_one_flush(app: Flask, engine: sa.Engine) -> None:
    with app.app_context():
        tags = Tag.bulk_add([{"name": "a"}, {"name": "b", "label": "B"}])
        assert [tag.name for tag in tags] == ["a", "b"]
        tablerest.session().commit()
    assert rows(engine, "SELECT name, label FROM tags ORDER BY name") == [
        {"name": "a", "label": None}, {"name": "b", "label": "B"}]


def test_bulk_add_refuses_all_when_one_row_is_bad(app: Flask, engine: sa.Engine) -> None:
    with app.app_context():
        with pytest.raises(ValidationFailed):
            Tag.bulk_add([{"name": "a"}, {"name": "b", "nope": 1}])
        tablerest.session().commit()
    assert rows(engine, "SELECT name FROM tags") == []


def test_find_for_update_locks_the_row(app: Flask, engine: sa.Engine) -> None:
    user = add_user(engine, "jane", age=30)
    with app.app_context():
        locked = User.find_for_update(user)
        assert locked is not None and locked.age == 30
        if engine.dialect.name == "postgresql":
            # another transaction cannot lock the same row until this one ends
            with engine.connect() as other, pytest.raises(sa.exc.OperationalError):
                other.execute(sa.text("SET lock_timeout = '100ms'"))
                other.execute(sa.text("SELECT id FROM users WHERE id = :id FOR UPDATE"),
                              {"id": user})
        locked.update(age=31)
        tablerest.session().commit()
    assert rows(engine, "SELECT age FROM users") == [{"age": 31}]
    with app.app_context():
        assert User.find_for_update(user + 1) is None


def test_raw_sql_binds_named_parameters(app: Flask, engine: sa.Engine) -> None:
    add_user(engine, "jane", age=30)
    add_user(engine, "o'brien", age=40)
    with app.app_context():
        found = tablerest.raw_sql("SELECT name, age FROM users WHERE age >= :age ORDER BY name",
                                  {"age": 35})
        assert found == [{"name": "o'brien", "age": 40}]
        hostile = "jane' OR '1'='1"
        assert tablerest.raw_sql("SELECT id FROM users WHERE name = :name",
                                 {"name": hostile}) == []
        assert tablerest.raw_sql("UPDATE users SET age = :age WHERE name = :name",
                                 {"age": 31, "name": "jane"}) == []
        tablerest.session().commit()
    assert rows(engine, "SELECT name, age FROM users ORDER BY name") == [
        {"name": "jane", "age": 31}, {"name": "o'brien", "age": 40}]


def test_password_is_hashed_and_verified_with_equality(app: Flask, engine: sa.Engine) -> None:
    with app.app_context():
        User.create(name="jane", email="jane@example.com", password="s3cret-pass")
        tablerest.session().commit()
    [stored] = rows(engine, "SELECT password FROM users")
    assert stored["password"].startswith("$argon2id$")
    assert "s3cret-pass" not in stored["password"]
    with app.app_context():
        user = User.where(name="jane")[0]
        assert isinstance(user.password, PasswordHash)
        assert user.password == "s3cret-pass"
        assert user.password != "wrong"
        assert "s3cret" not in repr(user.password) and "$argon2" not in repr(user.password)


def test_a_precomputed_hash_is_stored_as_it_is(app: Flask, engine: sa.Engine) -> None:
    with app.app_context():
        User.create(name="jane", email="jane@example.com", password=PASSWORD_HASH)
        tablerest.session().commit()
    assert rows(engine, "SELECT password FROM users") == [{"password": str(PASSWORD_HASH)}]
    with app.app_context():
        assert User.where(name="jane")[0].password == PASSWORD


def test_timestamps_are_set_in_utc(app: Flask, engine: sa.Engine) -> None:
    before = dt.datetime.now(dt.UTC)
    with app.app_context():
        user = User.create(name="jane", email="jane@example.com",
                                password=PASSWORD_HASH)
        tablerest.session().commit()
        created = as_utc(user.created_at)
        assert before <= created <= dt.datetime.now(dt.UTC)
        assert as_utc(user.updated_at) >= created
    with app.app_context():
        user = User.where(name="jane")[0]
        assert as_utc(user.created_at) == created  # microseconds survive the round trip
        user.update(age=3)
        tablerest.session().commit()
        user = User.where(name="jane")[0]
        assert as_utc(user.created_at) == created
        assert as_utc(user.updated_at) > created
        assert as_utc(user.updated_at) <= dt.datetime.now(dt.UTC)


def test_session_is_the_same_within_an_app_context(app: Flask) -> None:
    with app.app_context():
        assert tablerest.session() is tablerest.session()
        first = tablerest.session()
    with app.app_context():
        assert tablerest.session() is not first

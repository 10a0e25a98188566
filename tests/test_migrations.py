"""Migrations over Alembic, on SQLite and PostgreSQL: autogenerate, round trips, failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

from conftest import rows
from tablerest import Password, create_engine
from tablerest.migrations import (
    NAMING_CONVENTION,
    MigrationError,
    Migrations,
    diff,
    downgrade,
    init,
    make,
    refresh,
    reset,
    stamp,
    status,
    upgrade,
)

MICROBLOG_MIGRATIONS = Path(__file__).resolve().parent.parent / "examples/microblog/migrations"

# The test app's schema grows one feature at a time; each step is one kind of change.
STEPS = [
    ("users", {"add_table"}),
    ("posts", {"add_table"}),
    ("column", {"add_column"}),
    ("index", {"add_index"}),
    ("unique", {"add_unique"}),
    ("fk", {"add_fk"}),
    ("type", {"modify_type"}),
    ("nullable", {"modify_nullable"}),
]
FEATURES = [feature for feature, _ in STEPS]


def schema(upto: int) -> MetaData:
    """The models after the first ``upto`` steps."""
    has = set(FEATURES[:upto]).__contains__
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    if has("users"):
        Table(
            "users", metadata,
            Column("id", Integer, primary_key=True),
            Column("name", String(200 if has("type") else 50), nullable=False),
            Column("password", Password, nullable=False),
            *([Column("age", Integer)] if has("column") else []),
            *([Index("ix_users_age", "age")] if has("index") else []),
            *([sa.UniqueConstraint("name")] if has("unique") else []),
        )
    if has("posts"):
        Table(
            "posts", metadata,
            Column("id", Integer, primary_key=True),
            Column("title", String(100), nullable=not has("nullable")),
            Column("body", Text),
            Column("author_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
            *([Column("editor_id", Integer)] if has("column") and not has("fk") else []),
            *([Column("editor_id", ForeignKey("users.id"))] if has("fk") else []),
        )
    return metadata


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return init(tmp_path / "migrations")


def at(folder: Path, engine: sa.Engine, upto: int) -> Migrations:
    return Migrations(folder, engine, schema(upto))


def hand_written(migrations: Migrations, message: str, upgrade_body: str) -> str:
    """A blank migration whose upgrade() runs ``upgrade_body``; returns its revision."""
    made = make(migrations, message, empty=True)
    assert made.path is not None and made.revision is not None
    text = made.path.read_text()
    made.path.write_text(text.replace("def upgrade() -> None:\n    pass",
                                      "def upgrade() -> None:\n" + upgrade_body, 1))
    return made.revision


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


@pytest.mark.parametrize(("step", "kinds"), [(i + 1, kinds) for i, (_, kinds) in
                                             enumerate(STEPS)], ids=FEATURES)
def test_autogenerate_detects_each_kind_of_change(
        folder: Path, engine: sa.Engine, step: int, kinds: set[str]) -> None:
    schema(step - 1).create_all(engine)
    migrations = at(folder, engine, step)

    made = make(migrations, f"step {step}")

    assert made.path is not None and made.path.parent == folder / "versions"
    assert {change.kind for change in made.changes} == kinds
    upgrade(migrations)
    assert diff(migrations) == []
    downgrade(migrations, "base")
    assert diff(at(folder, engine, step - 1)) == []


def test_tablerest_types_are_written_as_plain_sql_types(folder: Path, engine: sa.Engine) -> None:
    made = make(at(folder, engine, 1), "users")

    assert made.path is not None
    text = made.path.read_text()
    assert "sa.Column('password', sa.String(length=255), nullable=False)" in text
    assert "tablerest" not in text


def test_no_changes_writes_nothing(folder: Path, engine: sa.Engine) -> None:
    migrations = at(folder, engine, 2)
    make(migrations, "first")
    upgrade(migrations)

    made = make(migrations, "again")

    assert made.path is None and made.changes == []
    assert len(list((folder / "versions").glob("*.py"))) == 1


def test_round_trip_keeps_rows(folder: Path, engine: sa.Engine) -> None:
    make(at(folder, engine, 2), "users and posts")
    upgrade(at(folder, engine, 2))
    make(at(folder, engine, 3), "ages")  # alters users: SQLite copies the table
    upgrade(at(folder, engine, 3))
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO users (id, name, password) VALUES (1, 'ann', 'x')"))
        connection.execute(sa.text(
            "INSERT INTO posts (id, title, author_id) VALUES (1, 'hi', 1), (2, 'yo', 1)"))

    reverted = downgrade(at(folder, engine, 3))
    applied = upgrade(at(folder, engine, 3))

    assert [step.message for step in reverted] == ["ages"]
    assert [step.message for step in applied] == ["ages"]
    assert rows(engine, "SELECT id, title FROM posts ORDER BY id") == [
        {"id": 1, "title": "hi"}, {"id": 2, "title": "yo"}]
    assert rows(engine, "SELECT id, name, age FROM users") == [
        {"id": 1, "name": "ann", "age": None}]


def test_status_marks_what_ran(folder: Path, engine: sa.Engine) -> None:
    first = make(at(folder, engine, 1), "users")
    upgrade(at(folder, engine, 1))
    second = make(at(folder, engine, 2), "posts")

    before = status(at(folder, engine, 2))
    upgrade(at(folder, engine, 2))
    after = status(at(folder, engine, 2))

    assert [(s.revision, s.message, s.applied, s.current) for s in before] == [
        (first.revision, "users", True, True), (second.revision, "posts", False, False)]
    assert [(s.applied, s.current) for s in after] == [(True, False), (True, True)]


def test_refresh_and_reset(folder: Path, engine: sa.Engine) -> None:
    migrations = at(folder, engine, 2)
    make(migrations, "users and posts")
    upgrade(migrations)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO users (id, name, password) VALUES (1, 'a', 'x')"))

    reverted, applied = refresh(migrations)

    assert len(reverted) == len(applied) == 1
    assert table_names(engine) == {"users", "posts"}
    assert rows(engine, "SELECT * FROM users") == []
    reset(migrations)
    assert table_names(engine) == set()
    assert [s.applied for s in status(migrations)] == [False]


def test_a_failing_migration_leaves_the_schema_as_it_was(
        folder: Path, engine: sa.Engine) -> None:
    migrations = at(folder, engine, 1)
    first = make(migrations, "users")
    upgrade(migrations)
    hand_written(migrations, "half way", "    op.create_table('notes', "
                 "sa.Column('id', sa.Integer, primary_key=True))\n"
                 "    op.execute('SELECT * FROM no_such_table')\n")

    with pytest.raises(MigrationError, match=r"A migration failed and was rolled back, after 0 "
                                             r"that succeeded: .*no_such_table"):
        upgrade(migrations)

    assert table_names(engine) == {"users"}
    assert [s.revision for s in status(migrations) if s.current] == [first.revision]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_migration_that_breaks_foreign_keys_is_rolled_back(
        folder: Path, engine: sa.Engine) -> None:
    migrations = at(folder, engine, 2)
    make(migrations, "users and posts")
    upgrade(migrations)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO users (id, name, password) VALUES (1, 'a', 'x')"))
        connection.execute(sa.text("INSERT INTO posts (id, title, author_id) VALUES (1, 't', 1)"))
    hand_written(migrations, "orphans", "    op.execute('DELETE FROM users')\n")

    with pytest.raises(MigrationError, match=r"leaves 1 rows whose foreign key .*'posts' -> "
                                             r"'users'.*rolled back"):
        upgrade(migrations)

    assert rows(engine, "SELECT id FROM users") == [{"id": 1}]


def test_errors_name_the_problem(tmp_path: Path, folder: Path, engine: sa.Engine) -> None:
    with pytest.raises(MigrationError, match=r"No migrations folder at .*db init"):
        upgrade(Migrations(tmp_path / "nowhere", engine))
    migrations = at(folder, engine, 1)
    make(migrations, "users")
    with pytest.raises(MigrationError, match="Unknown revision 'nope'"):
        upgrade(migrations, "nope")
    with pytest.raises(MigrationError, match="nothing to downgrade"):
        downgrade(migrations)
    with pytest.raises(MigrationError, match="needs the models' MetaData"):
        make(Migrations(folder, engine), "no models")
    with pytest.raises(MigrationError, match="already holds migrations"):
        init(folder)


def test_a_database_ahead_of_the_code_is_refused(folder: Path, engine: sa.Engine) -> None:
    migrations = at(folder, engine, 1)
    made = make(migrations, "users")
    upgrade(migrations)
    assert made.path is not None
    made.path.unlink()

    for run in (upgrade, downgrade, status, lambda m: make(m, "more")):
        with pytest.raises(MigrationError, match=f"at revision '{made.revision}'.*ahead"):
            run(migrations)


def test_microblog_migrations_match_its_models(engine: sa.Engine) -> None:
    from microblog.models import Base

    migrations = Migrations(MICROBLOG_MIGRATIONS, engine, Base.metadata)
    upgrade(migrations)

    assert table_names(engine) == {"users", "messages", "follows"}
    assert diff(migrations) == []
    reset(migrations)
    assert table_names(engine) == set()


def test_stamp_adopts_tables_made_by_create_all(folder: Path, engine: sa.Engine) -> None:
    migrations = at(folder, engine, 2)
    make(migrations, "users and posts")
    schema(2).create_all(engine)
    with pytest.raises(MigrationError, match=r"rolled back.*already exists"):
        upgrade(migrations)

    stamp(migrations)

    assert [s.current for s in status(migrations)] == [True]
    assert upgrade(migrations) == []


def test_unnamed_constraints_get_a_name(folder: Path, engine: sa.Engine) -> None:
    def users(*extra: sa.SchemaItem) -> MetaData:
        metadata = MetaData()  # no naming convention
        Table("users", metadata, Column("id", Integer, primary_key=True),
              Column("name", String(50)), Column("boss_id", Integer), *extra)
        return metadata

    make(Migrations(folder, engine, users()), "users")
    upgrade(Migrations(folder, engine, users()))
    later = Migrations(folder, engine, users(sa.UniqueConstraint("name"),
                                             sa.ForeignKeyConstraint(["boss_id"], ["users.id"])))

    made = make(later, "constraints")
    upgrade(later)

    assert made.path is not None
    assert {c.kind for c in made.changes} == {"add_unique", "add_fk"}
    assert "'uq_users_name'" in made.path.read_text()
    assert "'fk_users_boss_id_users'" in made.path.read_text()
    assert diff(later) == []
    downgrade(later)
    assert diff(Migrations(folder, engine, users())) == []

"""The throwaway PostgreSQL server the suite runs on (tests/pgserver.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pgserver import (
    ENV_URL,
    ExternalPostgres,
    PostgresServer,
    PostgresServerError,
    find_pg_bin,
    server_from_env,
)

needs_binaries = pytest.mark.skipif(
    find_pg_bin() is None,
    reason="PostgreSQL binaries not found (no initdb on PATH or in /usr/lib/postgresql/*/bin)",
)


def _scalar(url: str, query: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar_one()
    finally:
        engine.dispose()


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie waiting for init to reap it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return not Path("/proc/self").exists()  # no /proc to look in: trust kill()
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries not found")
    with PostgresServer() as server:
        yield server


@needs_binaries
def test_start_create_connect_stop() -> None:
    server = PostgresServer()
    server.start()
    try:
        assert server.data_dir is not None
        base_dir, data_dir = server.base_dir, server.data_dir
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        url = server.create_database("pgserver_lifecycle")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/pgserver_lifecycle"
        assert _scalar(url, "select 1") == 1
        assert _scalar(url, "select current_database()") == "pgserver_lifecycle"
    finally:
        server.stop()
    assert base_dir is not None
    assert not base_dir.exists()
    assert not _pid_alive(pid)
    assert server.base_dir is None
    server.stop()  # a second stop is harmless


@needs_binaries
def test_context_manager_removes_directory() -> None:
    with PostgresServer() as server:
        base_dir = server.base_dir
        assert base_dir is not None
        assert base_dir.is_dir()
        assert _scalar(server.url(), "select 1") == 1
    assert not base_dir.exists()


@needs_binaries
def test_server_settings(server: PostgresServer) -> None:
    url = server.url()
    assert _scalar(url, "show listen_addresses") == "127.0.0.1"
    assert _scalar(url, "show fsync") == "off"
    assert _scalar(url, "show synchronous_commit") == "off"
    assert _scalar(url, "show full_page_writes") == "off"
    assert _scalar(url, "select current_user") == "postgres"
    assert _scalar(url, "show server_encoding") == "UTF8"


@needs_binaries
def test_create_database_drops_existing(server: PostgresServer) -> None:
    url = server.create_database("pgserver_recreate")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table leftover (id int)"))
        # A connection still open must not stop the drop.
        with engine.connect() as conn:
            assert server.create_database("pgserver_recreate") == url
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(sa.text("select to_regclass('leftover')")).scalar() is None
    finally:
        engine.dispose()
    server.drop_database("pgserver_recreate")
    server.drop_database("pgserver_recreate")  # dropping a missing database is harmless
    assert (
        _scalar(
            server.url(), "select count(*) from pg_database where datname = 'pgserver_recreate'"
        )
        == 0
    )


@needs_binaries
@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", 'x"; drop', "a" * 64], ids=repr)
def test_database_names_are_checked(server: PostgresServer, name: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        server.create_database(name)


def test_url_before_start_is_an_error() -> None:
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries not found")
    with pytest.raises(PostgresServerError, match="not running"):
        PostgresServer().url()


def test_server_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    assert server_from_env() is None

    monkeypatch.setenv(ENV_URL, "postgresql://bob:secret@db.example:5433/admin")
    external = server_from_env()
    assert isinstance(external, ExternalPostgres)
    external.start()
    external.stop()
    assert external.url() == "postgresql+psycopg://bob:secret@db.example:5433/postgres"
    assert external.url("t1") == "postgresql+psycopg://bob:secret@db.example:5433/t1"
    assert "secret" not in repr(external)


@pytest.mark.parametrize("url", ["not a url", "sqlite:///x.db"], ids=["garbage", "sqlite"])
def test_server_from_env_refuses_bad_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv(ENV_URL, url)
    with pytest.raises(PostgresServerError, match=ENV_URL):
        server_from_env()

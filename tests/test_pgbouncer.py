"""tablerest behind PgBouncer in transaction pooling mode (``TABLEREST_DATABASE_POOLER=
transaction``), where each transaction may run on any of the server connections PgBouncer
shares between its clients: Debian's PgBouncer (1.18) started by the suite, two server
connections for every client.

The microblog's HTTP tests (``test_microblog.py``) all run here again, through PgBouncer.
Then what transaction pooling breaks when a client is not told: psycopg's automatic prepared
statements, the time limit and time zone set for a session (PgBouncer refuses the ``options``
startup parameter, and a ``SET`` stays on a server connection for the next client).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from microblog.app import create_app as create_microblog

import test_microblog
from conftest import BOUNCED_DATABASE, BOUNCED_TIMEOUT, BOUNCED_TIMEZONE, SECRET, rows
from pgbouncer import DEFAULT_POOL_SIZE, PgBouncer
from tablerest.errors import ConfigurationError
from tablerest.extension import state_of
from tablerest.migrations import Migrations, upgrade
from test_microblog import add_users, as_user

pytestmark = pytest.mark.parametrize("db_url", ["pgbouncer"], indirect=True)

# pytest collects the ``test_`` functions and fixtures of this module: the microblog's tests
# (and the fixtures of their module), once more.
_MICROBLOG_FIXTURES = ("sent", "engine", "short_lived", "network")
globals().update({name: value for name, value in vars(test_microblog).items()
                  if name.startswith("test_") or name in _MICROBLOG_FIXTURES})

#: psycopg prepares a query on the server after this many executions on a connection.
PSYCOPG_PREPARE_THRESHOLD = 5


def microblog_at(url: str, **config: Any) -> Flask:
    """Another microblog process on the same database (its own pool of connections)."""
    app = create_microblog({"DATABASE_URL": url, "TABLEREST_SECRET_KEY": SECRET, **config})
    app.testing = True
    return app


@pytest.fixture
def bouncer(db_url: str, pgbouncer: PgBouncer) -> PgBouncer:
    """The suite's PgBouncer, once ``db_url`` emptied the test's database."""
    return pgbouncer


@contextlib.contextmanager
def every_server_connection(bouncer: PgBouncer) -> Iterator[list[psycopg.Connection[Any]]]:
    """Plain clients of PgBouncer, one in a transaction on each of its server connections;
    committed at the end."""
    conninfo = sa.make_url(bouncer.url(BOUNCED_DATABASE)).set(drivername="postgresql")
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(psycopg.connect(
            conninfo.render_as_string(hide_password=False), prepare_threshold=None))
            for _ in range(DEFAULT_POOL_SIZE)]
        backends = {client.execute("SELECT pg_backend_pid()").fetchone() for client in clients}
        assert len(backends) == DEFAULT_POOL_SIZE
        yield clients


def reset_sessions(bouncer: PgBouncer) -> None:
    """Every server connection back to the database's defaults (after a test changed them)."""
    with every_server_connection(bouncer) as clients:
        for client in clients:
            client.execute("RESET ALL")


def shown(bouncer: PgBouncer, setting: str) -> set[str]:
    """``setting`` as a client that set nothing finds it on each server connection."""
    with every_server_connection(bouncer) as clients:
        return {str(client.execute(f"SHOW {setting}").fetchone()[0])  # type: ignore[index]
                for client in clients}


def test_the_pooler_setting_and_the_prepare_threshold_are_checked(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="prepare_threshold must be a whole number"):
        microblog_at(f"{db_url}?prepare_threshold=often")
    monkeypatch.setenv("TABLEREST_DATABASE_POOLER", "pgbouncer")
    with pytest.raises(ConfigurationError, match="TABLEREST_DATABASE_POOLER must be one of"):
        microblog_at(db_url)


@pytest.mark.parametrize(("query", "prepares"), [
    ("", False),
    (f"?prepare_threshold={PSYCOPG_PREPARE_THRESHOLD}", True),
], ids=["pooler-setting", "prepares-asked-for-in-the-url"])
def test_batches_from_several_processes(db_url: str, microblog: Flask, query: str,
                                        prepares: bool, caplog: pytest.LogCaptureFixture,
                                        ) -> None:
    """Each of two processes, taking turns on the same server connections, posts batches
    of more messages than psycopg's prepare threshold: psycopg prepares the INSERT during
    the first batch, under a name (``_pg3_<n>``) counted per connection, so the second
    process prepares the same name where the first one's is already there."""
    engine = state_of(microblog).engine
    [jane] = add_users(engine, "jane")
    apps = [microblog_at(db_url + query) for _ in range(2)]
    batch = [{"content": f"post {n}"} for n in range(PSYCOPG_PREPARE_THRESHOLD + 3)]
    try:
        statuses = [app.test_client().post("/messages", json=batch,
                                           headers=as_user(app, jane)).status_code
                    for app in apps * 2]
    finally:
        for app in apps:
            state_of(app).engine.dispose()
    if prepares:
        assert statuses[0] == 201 and 500 in statuses
        assert 'prepared statement "_pg3_' in caplog.text
    else:
        assert statuses == [201] * len(statuses)
        assert rows(engine, "SELECT content FROM messages ORDER BY id") == batch * len(statuses)


def test_the_statement_time_limit_holds_on_every_server_connection(
        db_url: str, microblog: Flask, bouncer: PgBouncer) -> None:
    """Another client left ``statement_timeout = 0`` on each server connection; a request
    that waits for a lock is still cancelled at tablerest's limit, a 503."""
    limited = microblog_at(db_url, TABLEREST_STATEMENT_TIMEOUT=300, TABLEREST_RETRY_AFTER=2)
    engine = state_of(limited).engine
    [jane] = add_users(engine, "jane")
    with every_server_connection(bouncer) as clients:
        for client in clients:
            client.execute("SET statement_timeout = 0")
    # The lock is taken straight on the server, not through PgBouncer: its slots stay free.
    direct = sa.make_url(bouncer.server.url(BOUNCED_DATABASE)).set(drivername="postgresql")
    try:
        with psycopg.connect(direct.render_as_string(hide_password=False)) as locker:
            locker.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (jane,))
            # Without a limit the request would wait for the lock: let it go after a while.
            release = threading.Timer(3.0, locker.rollback)
            release.start()
            started = time.monotonic()
            try:
                response = limited.test_client().patch(
                    f"/users/{jane}", json={"email": "jane@doe.com"},
                    headers=as_user(limited, jane))
                waited = time.monotonic() - started
            finally:
                release.cancel()
                release.join()
                locker.rollback()
        assert response.status_code == 503, response.get_json()
        assert response.headers["Retry-After"] == "2"
        assert waited < 2.5
        assert rows(engine, "SELECT email FROM users") == [{"email": "jane@example.com"}]
        again = limited.test_client().patch(f"/users/{jane}", json={"email": "jane@doe.com"},
                                            headers=as_user(limited, jane))
        assert again.status_code == 200
    finally:
        engine.dispose()
        reset_sessions(bouncer)


def test_tablerest_leaves_no_setting_on_the_shared_server_connections(
        db_url: str, microblog: Flask, bouncer: PgBouncer) -> None:
    """Requests with a time limit, and console work without one (a migration, a seed), set
    their limit for their own transaction only: another client finds the database's own
    default on every server connection. Sessions are in UTC although the database's own
    time zone is not."""
    reset_sessions(bouncer)
    limited = microblog_at(db_url, TABLEREST_STATEMENT_TIMEOUT=300)
    engine = state_of(limited).engine
    try:
        upgrade(Migrations.for_app(limited))  # console work, untimed
        client = limited.test_client()
        [jane] = add_users(engine, "jane")
        for _ in range(3):
            posted = client.post(f"/users/{jane}/messages", json={"content": "hi"},
                                 headers=as_user(limited, jane))
            assert posted.status_code == 201, posted.get_json()
            assert client.get(f"/users/{jane}/messages").status_code == 200

        assert shown(bouncer, "statement_timeout") == {BOUNCED_TIMEOUT}
        assert shown(bouncer, "TimeZone") == {BOUNCED_TIMEZONE}
        assert rows(engine, "SHOW TimeZone") == [{"TimeZone": "UTC"}]
        with engine.connect() as connection:
            limit = connection.exec_driver_sql("SHOW statement_timeout").scalar()
        assert limit == "300ms"
    finally:
        engine.dispose()


def test_a_streamed_export_keeps_its_server_connection_between_batches(
        microblog: Flask, bouncer: PgBouncer) -> None:
    """A CSV or NDJSON export reads batch after batch from a server-side cursor, which lives
    in the export's transaction: PgBouncer keeps that transaction on one server connection
    while other clients' transactions run on the others."""
    engine = state_of(microblog).engine
    [jane] = add_users(engine, "jane")
    count = 2500  # more than one batch of the stream
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO messages (content, user_id, created_at, updated_at) "
            "SELECT 'm' || n, :jane, now(), now() FROM generate_series(1, :count) AS n"),
            {"jane": jane, "count": count})
    response = microblog.test_client().get(
        "/messages?fields=content&sort=id", headers={"Accept": "application/x-ndjson"},
        buffered=False)
    assert response.status_code == 200
    read = []
    for chunk in response.response:  # others come and go between the batches
        read.append(chunk)
        assert microblog.test_client().get(f"/users/{jane}").status_code == 200
    response.close()
    assert len(read) > 1
    lines = b"".join(read).splitlines()
    assert [orjson.loads(line)["content"] for line in lines] == [
        f"m{n}" for n in range(1, count + 1)]


def test_a_connection_switches_to_autocommit_for_console_work(engine: sa.Engine) -> None:
    """What Alembic's ``autocommit_block`` does for ``CREATE INDEX CONCURRENTLY``, which runs
    outside any transaction: the transaction a checkout begins for its settings ends first."""
    with engine.connect() as connection:
        auto = connection.execution_options(isolation_level="AUTOCOMMIT")
        auto.exec_driver_sql("CREATE INDEX CONCURRENTLY messages_by_content ON messages (content)")
    assert rows(engine, "SELECT indexname FROM pg_indexes WHERE tablename = 'messages' "
                        "AND indexname = 'messages_by_content'") == [
        {"indexname": "messages_by_content"}]

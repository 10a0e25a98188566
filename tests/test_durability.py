"""An acknowledged write survives ``kill -9`` of the server: the microblog under gunicorn is
killed, master and workers, right after a run of acknowledged writes, and every one of them
is in the database afterwards (SQLite with the default WAL + synchronous=NORMAL, and
PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import urllib.request
from typing import Any

import pytest
import sqlalchemy as sa
from benchmarks import BenchmarkError
from benchmarks.chaos_faults import Workers, migrate, serve, worker_pids

from conftest import SECRET

WRITES = 40


def call(base: str, method: str, path: str, body: Any, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_acknowledged_writes_survive_kill_9(db_url: str) -> None:
    env = {"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET}
    migrate(env)
    acknowledged: list[tuple[int, str]] = []
    with tempfile.TemporaryFile() as log, \
            pytest.raises(BenchmarkError, match="status -9"), \
            serve(env, Workers(count=1, worker_class="sync"), log) as served:
        base = f"http://127.0.0.1:{served.port}"
        user = call(base, "POST", "/users", {"name": "durable", "email": "d@example.com",
                                             "password": "a-long-secret-1"})
        token = call(base, "POST", "/auth/token", {"name": "durable",
                                                   "password": "a-long-secret-1"})
        for index in range(WRITES):
            content = f"acknowledged {index}"
            message = call(base, "POST", f"/users/{user['id']}/messages",
                           {"content": content}, token["access_token"])
            acknowledged.append((message["id"], content))
        for pid in [*worker_pids(served.master.pid), served.master.pid]:
            os.kill(pid, signal.SIGKILL)
        served.master.wait(10)
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        stored = [tuple(row) for row in connection.execute(sa.text(
            "SELECT id, content FROM messages ORDER BY id"))]
    engine.dispose()
    assert stored == acknowledged

"""Faults a server meets every day: clients that hang up in the middle of a stream. Each
gives its connection back to the pool, and memory does not grow with the count."""

from __future__ import annotations

import resource
import socket
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from factories import add_user, insert, live_server
from tablerest.extension import state_of
from testapp import Post

ABORTS = 1000


@pytest.fixture
def live(app: Flask) -> Iterator[tuple[str, int]]:
    with live_server(app) as base:
        host, _, port = base.removeprefix("http://").partition(":")
        yield host, int(port)


def abort_after_first_bytes(address: tuple[str, int], path: str, accept: str) -> bytes:
    """Start reading ``path`` and hang up after the first bytes; what was read."""
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n".encode())
        first = conn.recv(256)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return first


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_aborted_streams_give_their_connections_back(app: Flask, engine: sa.Engine,
                                                     live: tuple[str, int]) -> None:
    kinds = ["text/csv", "application/x-ndjson"]
    user = add_user(engine, "alice")
    insert(engine, Post, *({"user_id": user, "title": f"post {i}", "body": "x" * 200}
                           for i in range(3000)))
    pool = state_of(app).engine.pool
    for index in range(50):  # warm up: caches, pools and allocator settle first
        assert abort_after_first_bytes(live, "/posts", kinds[index % 2]).startswith(
            b"HTTP/1.1 200")
    before = rss_kib()
    for index in range(ABORTS):
        abort_after_first_bytes(live, "/posts", kinds[index % 2])
    # The server notices each hang-up when it next writes: wait until every stream is closed.
    for _ in range(200):
        if pool.checkedout() == 0:  # type: ignore[attr-defined]
            break
        threading.Event().wait(0.05)
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    grown = rss_kib() - before
    assert grown < 30 * 1024, f"RSS grew by {grown} KiB over {ABORTS} aborted streams"
    # The server still answers normally, with every row.
    with socket.create_connection(live, timeout=30) as conn:
        conn.sendall(b"GET /posts?fields=id HTTP/1.0\r\nAccept: text/csv\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    assert data.count(b"\r\n") >= 3000

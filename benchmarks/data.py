"""The benchmark database: the microblog's schema, filled deterministically, cached, copied.

The file is built once per size under ``benchmarks/.data/`` (gitignored) and copied fresh for
every app's run, so the POST benchmark of each app starts from the same state. Datetimes are
stored the way SQLAlchemy's SQLite ``DateTime`` stores them: naive UTC text with microseconds.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

# Bump when the schema or the generator changes, so stale cached files are not reused.
DATA_VERSION = 2
SEED = 42
PASSWORD = "secret"
CACHE_DIR = Path(__file__).resolve().parent / ".data"

DDL = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE, email VARCHAR(120) NOT NULL UNIQUE, password VARCHAR(255) NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY, content TEXT NOT NULL, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE INDEX ix_messages_user_id ON messages(user_id);
CREATE INDEX ix_messages_created_at ON messages(created_at);
CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, followed_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, UNIQUE (follower_id, followed_id));
CREATE INDEX ix_follows_followed_id ON follows(followed_id);
"""  # noqa: E501 - the exact DDL the microblog's migration creates, kept verbatim

# The settings both apps apply to every connection.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)

_LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco "
    "laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate "
    "velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident"
)
_WORDS = _LOREM.split()

_USERS_START = dt.datetime(2023, 1, 1)
_ACTIVITY_START = dt.datetime(2024, 1, 1)
_ACTIVITY_SECONDS = 366 * 24 * 3600


@dataclass(frozen=True)
class Sizes:
    """How many rows of each table to generate."""

    users: int = 10_000
    messages: int = 100_000
    follows: int = 100_000

    def validate(self) -> None:
        """Raise ``ValueError`` naming the size that cannot be generated."""
        if self.users < 2:
            raise ValueError(f"--users must be at least 2, got {self.users}.")
        if self.messages < 0:
            raise ValueError(f"--messages must be 0 or more, got {self.messages}.")
        most = self.users * (self.users - 1)
        if not 1 <= self.follows <= most:
            raise ValueError(
                f"--follows must be between 1 and {most} (distinct pairs of {self.users} users,"
                f" no self-follows), got {self.follows}."
            )

    @property
    def file_name(self) -> str:
        return f"microblog-v{DATA_VERSION}-u{self.users}-m{self.messages}-f{self.follows}.db"


@dataclass(frozen=True)
class BenchUser:
    """The user the endpoints are measured on: a typical one, with about average followers."""

    id: int
    name: str
    followers: int


def stamp(moment: dt.datetime) -> str:
    """``moment`` (naive UTC) as SQLAlchemy's SQLite DateTime stores it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def cached_database(sizes: Sizes, cache_dir: Path = CACHE_DIR) -> Path:
    """The generated database for ``sizes``, built on first use and cached under ``cache_dir``."""
    sizes.validate()
    target = cache_dir / sizes.file_name
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so an interrupted build never leaves a cached file.
    handle, partial = tempfile.mkstemp(dir=cache_dir, suffix=".partial")
    os.close(handle)
    try:
        build_database(Path(partial), sizes)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target


def fresh_copy(source: Path, directory: Path) -> Path:
    """Copy ``source`` into ``directory`` as ``bench.db`` and return the copy's path."""
    target = directory / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return target


def build_database(path: Path, sizes: Sizes) -> None:
    """Create the schema in a new file at ``path`` and fill it, deterministically."""
    rng = random.Random(SEED)
    password = PasswordHasher().hash(PASSWORD)  # one hash for all: hashing is slow by design
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.executescript(DDL)
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO users (id, name, email, password, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            _users(sizes.users, password),
        )
        connection.executemany(
            "INSERT INTO messages (content, user_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
            _messages(rng, sizes),
        )
        connection.executemany(
            "INSERT INTO follows (follower_id, followed_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?)",
            _follows(rng, sizes),
        )
        connection.execute("COMMIT")
    finally:
        connection.close()


def user_name(user_id: int) -> str:
    return f"user{user_id:05d}"


def _users(count: int, password: str) -> Iterator[tuple[int, str, str, str, str, str]]:
    for user_id in range(1, count + 1):
        created = stamp(_USERS_START + dt.timedelta(minutes=user_id))
        name = user_name(user_id)
        yield user_id, name, f"{name}@example.com", password, created, created


def _activity_stamp(rng: random.Random) -> str:
    return stamp(_ACTIVITY_START + dt.timedelta(seconds=rng.randrange(_ACTIVITY_SECONDS)))


def _messages(rng: random.Random, sizes: Sizes) -> Iterator[tuple[str, int, str, str]]:
    for _ in range(sizes.messages):
        content = " ".join(rng.choices(_WORDS, k=rng.randint(3, 24))).capitalize() + "."
        created = _activity_stamp(rng)
        yield content, rng.randint(1, sizes.users), created, created


def _follows(rng: random.Random, sizes: Sizes) -> Iterator[tuple[int, int, str, str]]:
    # Sample distinct indices of the users * (users - 1) ordered pairs without self-follows.
    others = sizes.users - 1
    for index in rng.sample(range(sizes.users * others), sizes.follows):
        follower, other = divmod(index, others)
        followed = other if other < follower else other + 1
        created = _activity_stamp(rng)
        yield follower + 1, followed + 1, created, created


def typical_user(path: Path, sizes: Sizes) -> BenchUser:
    """The lowest-id user whose follower count is closest to the average (at least 1)."""
    target = max(1, round(sizes.follows / sizes.users))
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = connection.execute(
            "SELECT f.followed_id, u.name, count(*) AS n FROM follows AS f"
            " JOIN users AS u ON u.id = f.followed_id"
            " GROUP BY f.followed_id ORDER BY abs(count(*) - ?), f.followed_id LIMIT 1",
            (target,),
        ).fetchone()
    finally:
        connection.close()
    if row is None:
        raise ValueError(f"The database {str(path)!r} has no follows to benchmark.")
    return BenchUser(id=row[0], name=row[1], followers=row[2])

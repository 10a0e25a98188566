"""``python -m benchmarks.seed_fake``: time the fake-data seeder on a fresh SQLite file.

The schema comes from the microblog's migrations; the seeder is the one behind
``tablerest db seed --fake``. The default size is the target of the console issue: 100,000 users,
1,000,000 messages and 1,000,000 follows in under two minutes. Exit status 1 when over target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tablerest import create_engine
from tablerest.migrations import Migrations, upgrade
from tablerest.seeding import FakeDataSeeder, run_seeder

MIGRATIONS = Path(__file__).resolve().parent.parent / "examples" / "microblog" / "migrations"
TARGET_SECONDS = 120.0


class Phases:
    """The seeder's progress callback: when each table started and finished."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self.started.setdefault(phase, now)
        self.rows[phase] = total
        if done >= total:
            self.finished[phase] = now


def measure(users: int, messages_per_user: int, follows_per_user: int,
            directory: Path) -> tuple[Phases, float]:
    engine = create_engine(f"sqlite:///{directory / 'seed_fake.db'}")
    try:
        upgrade(Migrations(MIGRATIONS, engine))
        phases = Phases()
        started = time.perf_counter()
        run_seeder(engine, FakeDataSeeder, users=users, messages_per_user=messages_per_user,
                   follows_per_user=follows_per_user, seed=42, progress=phases)
        return phases, time.perf_counter() - started
    finally:
        engine.dispose()


def report(phases: Phases, total: float) -> str:
    lines = [f"{'table':<10} {'rows':>11} {'seconds':>8} {'rows/s':>10}"]
    previous = min(phases.started.values(), default=0.0)
    for phase, rows in phases.rows.items():
        seconds = phases.finished.get(phase, previous) - phases.started[phase]
        rate = f"{rows / seconds:,.0f}" if seconds > 0 else "-"
        lines.append(f"{phase:<10} {rows:>11,} {seconds:>8.1f} {rate:>10}")
    verdict = "ok" if total <= TARGET_SECONDS else "OVER TARGET"
    lines.append(f"{'total':<10} {sum(phases.rows.values()):>11,} {total:>8.1f}   "
                 f"(target {TARGET_SECONDS:.0f} s: {verdict}; includes hashing, names, commit)")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seed_fake", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--messages-per-user", type=int, default=10)
    parser.add_argument("--follows-per-user", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to write the database (default: a temporary folder)")
    options = parser.parse_args(argv)
    if options.dir is not None:
        options.dir.mkdir(parents=True, exist_ok=True)
        phases, total = measure(options.users, options.messages_per_user,
                                options.follows_per_user, options.dir)
    else:
        with tempfile.TemporaryDirectory() as directory:
            phases, total = measure(options.users, options.messages_per_user,
                                    options.follows_per_user, Path(directory))
    sys.stdout.write(report(phases, total))
    return 0 if total <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())

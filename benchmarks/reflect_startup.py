"""``python -m benchmarks.reflect_startup``: how long reflection mode takes to start.

Each run is a fresh Python process that imports tablerest, reflects the database
(``tablerest.reflection.create_app``) and answers its first request (a list of the first
resource, through the WSGI test client: no network). The table shows the median of the runs
and the slowest one, split into import, reflect and first request, against the budgets of the
reflection issue: Chinook under 2 s, a 200-table database under 10 s.

Databases: a copy of Chinook (``--chinook``, default ``../shared/datasets/chinook``), a
generated SQLite database of ``--tables`` tables (200 by default: foreign keys, link tables,
views and a few rows each), and any ``--url`` given (e.g. a PostgreSQL Chinook).

Exit status: 0 when every database was measured within its budget, 1 when one was over it,
2 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .report import aligned

ROOT = Path(__file__).resolve().parent.parent
CHINOOK = ROOT.parent / "shared" / "datasets" / "chinook" / "Chinook_Sqlite.sqlite"
_PHASES = ("import", "reflect", "first", "total")


@dataclass(frozen=True)
class Case:
    label: str
    url: str
    budget: float


@dataclass(frozen=True)
class Timing:
    resources: int
    relations: int
    status: int
    phases: dict[str, float]
    wall: float


def generate(path: Path, tables: int, seed: int = 7) -> None:
    """A deterministic SQLite database of ``tables`` tables (and a view per 20 of them)."""
    rng = random.Random(seed)
    statements: list[str] = []
    names: list[str] = []  # tables with a one-column key, which foreign keys may name
    for index in range(tables):
        name = f"Table{index:03d}"
        if index >= 10 and index % 15 == 0:  # a pure link table between two earlier tables
            left, right = rng.sample(names, 2)
            statements.append(
                f'CREATE TABLE "{name}" ("{left}Id" INTEGER NOT NULL REFERENCES "{left}", '
                f'"{right}Id" INTEGER NOT NULL REFERENCES "{right}", '
                f'PRIMARY KEY ("{left}Id", "{right}Id"))')
            continue
        columns = [f'"{name}Id" INTEGER PRIMARY KEY', '"Name" NVARCHAR(120) NOT NULL',
                   '"Note" TEXT', '"Price" NUMERIC(10,2)', '"CreatedAt" DATETIME NOT NULL',
                   '"Active" BOOLEAN NOT NULL DEFAULT 1', '"Code" VARCHAR(20) UNIQUE']
        for target in rng.sample(names, min(len(names), rng.randint(0, 3))):
            columns.append(f'"{target}Id" INTEGER REFERENCES "{target}"')
        if index % 25 == 5:
            columns.append(f'"Parent{name}Id" INTEGER REFERENCES "{name}"')  # self-reference
        statements.append(f'CREATE TABLE "{name}" ({", ".join(columns)})')
        statements.extend(
            f"INSERT INTO \"{name}\" (\"Name\", \"Price\", \"CreatedAt\", \"Code\") VALUES "
            f"('row {row}', {row}.5, '2024-01-{row + 1:02d} 10:00:00', '{name}-{row}')"
            for row in range(10))
        names.append(name)
        if index % 20 == 19:
            statements.append(f'CREATE VIEW "View{index:03d}" AS SELECT "Name", "Price" '
                              f'FROM "{name}" WHERE "Active"')
    with sqlite3.connect(path) as connection:
        connection.executescript(";\n".join(statements) + ";")
    connection.close()


def child(url: str) -> None:
    """One measured start-up, in this (fresh) process; prints one JSON line."""
    started = time.perf_counter()
    from tablerest.extension import state_of
    from tablerest.reflection import create_app

    imported = time.perf_counter()
    app = create_app(url)
    reflected = time.perf_counter()
    state = state_of(app)
    first = sorted(state.served)[0]
    status = app.test_client().get(f"/{first}?limit=20").status_code
    answered = time.perf_counter()
    relations = sum(len(each.info.relations) for each in state.served.values())
    state.engine.dispose()
    sys.stdout.write(json.dumps({
        "resources": len(state.served), "relations": relations, "status": status,
        "phases": {"import": imported - started, "reflect": reflected - imported,
                   "first": answered - reflected, "total": answered - started},
    }) + "\n")


def measure(url: str) -> Timing:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.reflect_startup", "--child", url],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                           else f"exit status {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Timing(result["resources"], result["relations"], result["status"],
                  result["phases"], wall)


def _label(url: str) -> str:
    """``postgresql+psycopg://u:p@host/chinook`` -> ``chinook (postgresql)``."""
    scheme, _, rest = url.partition("://")
    return f"{rest.rsplit('/', 1)[-1].split('?')[0] or rest} ({scheme.split('+')[0]})"


def _row(case: Case, runs: list[Timing]) -> list[str]:
    def median(phase: str) -> float:
        return statistics.median(run.phases[phase] for run in runs)

    worst = max(run.phases["total"] for run in runs)
    verdict = "ok" if worst < case.budget and all(r.status == 200 for r in runs) else "OVER"
    return [case.label, str(runs[0].resources), str(runs[0].relations),
            *(f"{median(phase):.3f}" for phase in _PHASES), f"{worst:.3f}",
            f"{statistics.median(run.wall for run in runs):.3f}",
            f"< {case.budget:g}", verdict]


def render(rows: list[list[str]]) -> str:
    headings = ["database", "resources", "relations", "import s", "reflect s",
                "first req s", "total s", "slowest s", "process s", "budget s", "verdict"]
    return aligned(headings, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reflect_startup",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="processes per database")
    parser.add_argument("--tables", type=int, default=200, help="tables to generate")
    parser.add_argument("--chinook", type=Path, default=CHINOOK, help="Chinook_Sqlite.sqlite")
    parser.add_argument("--url", action="append", default=[], help="another database URL")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    if args.runs < 1 or args.tables < 1:
        parser.error("--runs and --tables must be at least 1")
    with tempfile.TemporaryDirectory(prefix="tablerest-reflect-") as directory:
        cases: list[Case] = []
        if args.chinook.is_file():
            copy = Path(directory) / "chinook.sqlite"
            shutil.copyfile(args.chinook, copy)  # never open the shared file
            cases.append(Case("Chinook (SQLite)", f"sqlite:///{copy}", 2.0))
        else:
            sys.stderr.write(f"No Chinook at {args.chinook}; skipped.\n")
        generated = Path(directory) / "generated.sqlite"
        generate(generated, args.tables)
        cases.append(Case(f"{args.tables} tables (SQLite)", f"sqlite:///{generated}", 10.0))
        cases += [Case(_label(url), url, 2.0) for url in args.url]
        rows = []
        for case in cases:
            try:
                runs = [measure(case.url) for _ in range(args.runs)]
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                sys.stderr.write(f"{case.label}: the run failed: {exc}\n")
                return 2
            rows.append(_row(case, runs))
    sys.stdout.write(f"Reflection start-up, median of {args.runs} fresh processes "
                     f"(Python {sys.version.split()[0]}):\n\n{render(rows)}\n")
    sys.stdout.write("\nimport: tablerest and Flask; reflect: create_app(url); first req: "
                     "GET /<first resource>?limit=20;\ntotal: the three; process: the whole "
                     "child process, interpreter start-up included.\n")
    return 0 if all(row[-1] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

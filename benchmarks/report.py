"""The result table: req/s and p99 of each app, and tablerest's ratios to the floors, per
engine, worker count and endpoint."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .wrk import WrkResult

READ_TARGET = 0.6  # tablerest's reads reach at least this fraction of the raw floor's req/s
WRITE_TARGET = 0.7  # and its writes this fraction
P99_TARGET = 2.0  # its p99 is at most this multiple of the raw floor's

#: app -> endpoint label -> one result per pass
Results = Mapping[str, Mapping[str, Sequence[WrkResult]]]

_HEADINGS = (
    "engine", "w", "endpoint", "raw req/s", "flask req/s", "tablerest req/s", "÷ raw",
    "÷ flask", "raw p99", "flask p99", "tablerest p99", "p99 ÷ raw", "raw CPU/req",
    "tablerest CPU/req", "CPU ratio",
)
#: app -> endpoint label -> the workers' CPU seconds per request, one per pass
CpuResults = Mapping[str, Mapping[str, Sequence[float]]]


@dataclass(frozen=True, order=True)
class Cell:
    """One group of runs: an engine and a gunicorn worker count (0: the group failed)."""

    engine: str
    workers: int


def target_for(label: str) -> float:
    return WRITE_TARGET if label.startswith(("POST", "PATCH", "PUT", "DELETE")) else READ_TARGET


def ratio(floor: Sequence[WrkResult], tablerest: Sequence[WrkResult]) -> float | None:
    """The median over the passes of tablerest's req/s over the floor's in the same pass."""
    shares = [ours.requests_per_second / theirs.requests_per_second
              for theirs, ours in zip(floor, tablerest, strict=False)
              if theirs.requests_per_second > 0]
    return statistics.median(shares) if shares else None


def p99_ratio(floor: Sequence[WrkResult], tablerest: Sequence[WrkResult]) -> float | None:
    shares = [ours.p99_seconds / theirs.p99_seconds
              for theirs, ours in zip(floor, tablerest, strict=False) if theirs.p99_seconds > 0]
    return statistics.median(shares) if shares else None


def _rate(results: Sequence[WrkResult]) -> str:
    if not results:
        return "-"
    return f"{statistics.median(r.requests_per_second for r in results):,.0f}"


def _p99(results: Sequence[WrkResult]) -> str:
    if not results:
        return "-"
    return f"{statistics.median(r.p99_seconds for r in results) * 1000:.2f} ms"


def _share(value: float | None, target: float | None) -> str:
    if value is None:
        return "-"
    if target is None:
        return f"{value:.2f}"
    return f"{value:.2f} {'✓' if value >= target else '✗'}"


def _p99_share(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} {'✓' if value <= P99_TARGET else '✗'}"


def _cpu(values: Sequence[float]) -> str:
    return "-" if not values else f"{statistics.median(values) * 1e6:,.0f} µs"


def cpu_ratio(floor: Sequence[float], tablerest: Sequence[float]) -> float | None:
    """The median over the passes of the floor's CPU per request over tablerest's."""
    shares = [theirs / ours for theirs, ours in zip(floor, tablerest, strict=False) if ours > 0]
    return statistics.median(shares) if shares else None


def table(labels: Sequence[str], groups: Mapping[Cell, Results],
          cpu: Mapping[Cell, CpuResults] | None = None) -> str:
    """The result table as aligned text: one row per engine, worker count and endpoint."""
    rows = []
    for cell in sorted(groups):
        results = groups[cell]
        used = (cpu or {}).get(cell, {})
        for label in labels:
            raw, flask, ours = (results.get(app, {}).get(label, ())
                                for app in ("raw", "flask", "tablerest"))
            raw_cpu, our_cpu = (used.get(app, {}).get(label, ()) for app in ("raw", "tablerest"))
            rows.append((
                cell.engine, str(cell.workers), label, _rate(raw), _rate(flask), _rate(ours),
                _share(ratio(raw, ours), target_for(label)), _share(ratio(flask, ours), None),
                _p99(raw), _p99(flask), _p99(ours), _p99_share(p99_ratio(raw, ours)),
                _cpu(raw_cpu), _cpu(our_cpu), _share(cpu_ratio(raw_cpu, our_cpu), None),
            ))
    return aligned(_HEADINGS, rows, left=3)


def aligned(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A text table: the first ``left`` columns left-aligned, the others right-aligned, a rule
    under the head."""
    widths = [max(len(row[column]) for row in [head, *rows]) for column in range(len(head))]

    def line(row: Sequence[str]) -> str:
        cells = [cell.ljust(width) for cell, width in zip(row[:left], widths[:left], strict=True)]
        cells += [cell.rjust(width)
                  for cell, width in zip(row[left:], widths[left:], strict=True)]
        return " | ".join(cells)

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(head), rule, *(line(row) for row in rows)])


def failure_notes(app: str, results: Mapping[str, WrkResult]) -> list[str]:
    """One line for each endpoint where wrk counted non-2xx/3xx answers or socket errors."""
    return [
        f"{app} {label}: {result.non_2xx} non-2xx/3xx responses and {result.socket_errors}"
        f" socket errors in {result.requests} requests"
        for label, result in results.items()
        if result.failures
    ]

"""The result table: req/s and p99 of each app, and tablerest's ratio to the floor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .wrk import WrkResult

TARGET = 0.6  # tablerest must reach at least this fraction of the floor's req/s

_HEADINGS = (
    "endpoint", "floor req/s", "floor p99", "tablerest req/s", "tablerest p99", "ratio",
)


def ratio(floor: WrkResult | None, tablerest: WrkResult | None) -> float | None:
    if floor is None or tablerest is None or floor.requests_per_second <= 0:
        return None
    return tablerest.requests_per_second / floor.requests_per_second


def _rate(result: WrkResult | None) -> str:
    return "-" if result is None else f"{result.requests_per_second:,.0f}"


def _p99(result: WrkResult | None) -> str:
    return "-" if result is None else f"{result.p99_seconds * 1000:.2f} ms"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} {'✓' if value >= TARGET else '✗'}"


def table(
    labels: Sequence[str],
    floor: Mapping[str, WrkResult],
    tablerest: Mapping[str, WrkResult],
) -> str:
    """The result table as aligned text, one row per endpoint label."""
    rows = [_HEADINGS]
    for label in labels:
        ours, theirs = floor.get(label), tablerest.get(label)
        share = _ratio(ratio(ours, theirs))
        rows.append((label, _rate(ours), _p99(ours), _rate(theirs), _p99(theirs), share))
    return aligned(rows[0], rows[1:])


def aligned(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A text table: the first column left-aligned, the others right-aligned, a rule under
    the head."""
    widths = [max(len(row[column]) for row in [head, *rows]) for column in range(len(head))]

    def line(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
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

"""The benchmark: the microblog against two hand-written floors, measured in the same run.

``python -m benchmarks`` (``make bench``) builds a deterministic SQLite database (and loads it
into a throwaway PostgreSQL server), serves the raw WSGI floor, the Flask floor and the
microblog with gunicorn (1 and 2 sync workers), drives four endpoints with ``wrk`` in
interleaved passes and prints req/s, p99 and tablerest's ratios to the floors.

Modules, one concept each:

    data        the schema, the deterministic data set, its cache and fresh per-run copies
    postgres    the test suite's throwaway PostgreSQL server, the data loaded, one clone per app
    floor_sql   the floors' statements, tokens and JSON, by hand, for SQLite and PostgreSQL
    raw_app     the raw floor: one plain WSGI callable, no framework
    floor_app   the Flask floor: the same statements under Flask
    client      plain urllib requests: tokens and the pre-flight check of each endpoint
    server      start a gunicorn app (pinned to a core or not), wait until it answers, stop it
    wrk         run wrk (warm-up, then measured), write the POST script, parse its output
    report      the result table
    runner      the command: options, the sequence above, the exit status
    profile     the same endpoints called in-process: CPU per request, and cProfile's view
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """A benchmark step failed; the message says which step and why."""

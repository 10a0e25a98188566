"""The benchmark: the microblog against a hand-written floor, measured in the same run.

``python -m benchmarks`` (``make bench``) builds a deterministic SQLite database, serves each
app with gunicorn (one worker, pinned to one core), drives four endpoints with ``wrk`` (pinned
to another core) and prints req/s, p99 and the ratio of tablerest to the floor.

Modules, one concept each:

    data        the schema, the deterministic data set, its cache and fresh per-run copies
    floor_app   the floor: Flask + sqlite3 + orjson, by hand, answering the same JSON
    client      plain urllib requests: tokens and the pre-flight check of each endpoint
    server      start a gunicorn app pinned to a core, wait until it answers, stop it
    wrk         run wrk (warm-up, then measured), write the POST script, parse its output
    report      the result table
    runner      the command: options, the sequence above, the exit status
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """A benchmark step failed; the message says which step and why."""

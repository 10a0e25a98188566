"""A short run of the chaos benchmark (``python -m benchmarks.chaos``) on each engine.

Four clients write and read the microblog through two gunicorn workers for a few seconds
while one worker is killed and, on PostgreSQL, the session's server is stopped and started
again. Every checked column must be zero: no acknowledged write lost, no phantom or
duplicate row, no 5xx but a 503 with Retry-After, no stale read of one's own write, no id
handed out twice, no unexpected 4xx, and a sound database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from benchmarks.chaos import EngineResult, Options, parser, report, run_postgresql, run_sqlite
from benchmarks.chaos_check import Row, check_follows, check_message, check_rows
from benchmarks.chaos_faults import Workers
from benchmarks.chaos_ledger import (
    COLUMNS,
    CREATE,
    DUPLICATES,
    LOST,
    PHANTOM,
    REUSED,
    Findings,
    Follow,
    Ledger,
    Message,
    Seen,
)

SHORT = Options(seconds=5, clients=4, workers=Workers(count=2))


def assert_all_zero(result: EngineResult) -> None:
    assert result.tally.requests > 0
    assert result.failures() == {}, "\n" + report(result, SHORT)


def test_chaos_sqlite(tmp_path: Path) -> None:
    result = run_sqlite(SHORT, tmp_path)

    assert any(fault.startswith("worker kill: SIGKILL") for fault in result.faults)
    assert_all_zero(result)


def test_chaos_postgresql(postgres: Any, tmp_path: Path) -> None:
    try:
        result = run_postgresql(SHORT, postgres, tmp_path, dbname="chaos")
    finally:
        # The session's server is running again, with its data: other tests use it.
        engine = sa.create_engine(postgres.url("postgres"))
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar_one() == 1
        engine.dispose()
        postgres.drop_database("chaos")

    assert any(fault.startswith("worker kill: SIGKILL") for fault in result.faults)
    if getattr(postgres, "data_dir", None) is not None:
        assert any(fault.startswith("database restart:") for fault in result.faults)
    assert_all_zero(result)


def test_chaos_command_line_defaults() -> None:
    args = parser().parse_args([])

    assert (args.engine, args.seconds, args.clients, args.workers) == ("both", 60, 8, 2)


@pytest.mark.parametrize("option", ["--seconds", "--clients", "--workers"])
def test_chaos_command_line_refuses_zero(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args([option, "0"])

    assert exit_info.value.code == 2
    assert "expected more than 0, got '0'" in capsys.readouterr().err


# The rules that judge a run, on ledgers and rows built by hand: each fault is counted in its
# column, once per key, and an unknown outcome allows either state.

def message_ledger() -> Ledger:
    """User 1 created message 1 ("a #1") and patched it ("a #2"), both acknowledged."""
    ledger = Ledger("a", 1)
    ledger.messages[1] = Message(1, {"a #2"}, {"a #1", "a #2"})
    ledger.sent.update({"a #1": CREATE, "a #2": "patch 1"})
    ledger.acked_creates["a #1"] = 1
    return ledger


def counts(findings: Findings) -> dict[str, int]:
    return {column: findings.count(column) for column in COLUMNS if findings.count(column)}


def test_chaos_counts_a_lost_patch_and_a_phantom_row_once_each() -> None:
    ledger, findings = message_ledger(), Findings()
    rows = [Row(1, 1, "a #1"), Row(2, 1, "nobody sent this")]

    for source in ("API", "SQL"):
        check_message(ledger, ledger.messages[1], Seen(1, "a #1"), source, findings)
        check_rows(rows, [ledger], source, findings)

    assert counts(findings) == {LOST: 1, PHANTOM: 1}
    assert findings.details(LOST) == [
        "API: message 1 of a should be 'a #2', is user 1's 'a #1'"]


def test_chaos_allows_either_state_after_an_unknown_outcome() -> None:
    ledger, findings = message_ledger(), Findings()
    ledger.messages[1].maybe(None, timed_out=False)  # a DELETE that got no answer
    ledger.sent["a #3"] = CREATE
    ledger.unknown_creates.add("a #3")  # a POST answered 503
    ledger.follows[2] = Follow({False, True}, put_sent=True)

    check_message(ledger, ledger.messages[1], Seen(), "SQL", findings)
    check_message(ledger, ledger.messages[1], Seen(1, "a #2"), "API", findings)
    check_rows([Row(7, 1, "a #3")], [ledger], "SQL", findings)
    check_follows(ledger, [2], "SQL", findings)
    check_follows(ledger, [], "API", findings)

    assert counts(findings) == {}


def test_chaos_tells_a_reused_id_from_a_lost_delete() -> None:
    ledger, findings = message_ledger(), Findings()
    ledger.messages[1].settle(None)

    check_message(ledger, ledger.messages[1], Seen(2, "b #1"), "SQL", findings)
    check_message(ledger, ledger.messages[1], Seen(2, "b #1"), "API", findings)
    assert counts(findings) == {REUSED: 1}

    check_message(ledger, ledger.messages[1], Seen(1, "a #2"), "SQL", findings)
    assert counts(findings) == {REUSED: 1, LOST: 1}


def test_chaos_counts_duplicates_of_one_request_and_of_one_follow() -> None:
    ledger, findings = message_ledger(), Findings()
    ledger.follows[2] = Follow({True}, put_sent=True)

    check_rows([Row(1, 1, "a #2"), Row(5, 1, "a #2")], [ledger], "SQL", findings)
    check_follows(ledger, [2, 2], "SQL", findings)

    assert counts(findings) == {DUPLICATES: 2}


def test_chaos_counts_lost_and_phantom_follows() -> None:
    ledger, findings = Ledger("a", 1), Findings()
    ledger.follows[2] = Follow({True}, put_sent=True)  # acknowledged PUT
    ledger.follows[3] = Follow({False})  # never sent

    check_follows(ledger, [3, 1], "SQL", findings)

    assert counts(findings) == {LOST: 1, PHANTOM: 2}  # 1 -> 2 gone; 1 -> 3 and 1 -> 1 made up

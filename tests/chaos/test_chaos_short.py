"""The short chaos run of CI: under load, pools SIGKILLed every few seconds, RabbitMQ and Redis cut off (the
stack's own links, every Redis key lost), the FX provider failing; afterwards no invariant of DESIGN.md is broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import Plan, report, run

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(400)
def test_under_a_minute_of_faults_nothing_is_lost_duplicated_or_inconsistent(tmp_path: Path) -> None:
    """Given 6 users posting 15 transactions/s, contributing to goals (and withdrawing from them once) and importing
    a statement, when every kind of fault hits the stack for 45 seconds, then every invariant holds once the system
    is quiet."""
    result = run(Plan(mode="proxy", seconds=45, users=6, rate=15, kill_every=4, seed=7, categorization=1),
                 logdir=tmp_path)
    table = report(result)
    kinds = {(f["kind"], f["target"]) for f in result["faults"]}
    assert {("restart", "rabbitmq"), ("restart", "redis"), ("partition", "redis"), ("provider down", "fx"),
            ("provider down", "email")} <= kinds, table
    assert result["fault_counts"]["sigkill"] >= 5, table
    assert result["load"]["transactions_accepted"] >= 300, table
    assert result["load"]["contributions_accepted"] == 6 * 5 and result["load"]["imports_accepted"] == 2, table
    assert result["violations"] == [], table

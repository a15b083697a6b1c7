"""The benchmark's CPU accounting: which part of the stack a process is, and milliseconds per transaction."""

from __future__ import annotations

from collections import Counter

from bench.cpu import ms_per, part_of


def test_processes_are_told_apart_by_their_command_lines() -> None:
    assert part_of(["/venv/bin/python", "-m", "actors.run", "budgets"]) == "budgets"
    assert part_of(["/venv/bin/python", "-m", "actors.run", "nonsense"]) is None
    assert part_of(["/venv/bin/python", "/venv/bin/gunicorn", "api:create_app()"]) == "web"
    assert part_of(["postgres: 15/main: postgres finance 127.0.0.1(5000) idle", ""]) == "postgresql"
    assert part_of(["/usr/lib/erlang/erts-13.1.5/bin/beam.smp", "-W", "w"]) == "rabbitmq"
    assert part_of(["redis-server 127.0.0.1:6379"]) == "redis"
    assert part_of(["/usr/bin/python3", "-m", "pytest"]) is None


def test_cpu_per_transaction_is_the_difference_over_the_count() -> None:
    before = Counter({"web": 1.0, "budgets": 2.0})
    after = Counter({"web": 3.0, "budgets": 2.5, "pg:web": 0.5})
    assert ms_per(before, after, 1000) == {"budgets": 0.5, "pg:web": 0.5, "web": 2.0, "total": 3.0}

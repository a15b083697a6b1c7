"""A message that keeps failing lands in its queue's dead letters; the operator lists and replays it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from config import wiring
from tests.support.cli import run_cli
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def broken_inbox() -> Iterator[callable]:
    """Break the notifications table (as a bad deploy would); the returned function repairs it."""
    def rename(old: str, new: str) -> None:
        with wiring.engine().begin() as conn:
            conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    state = {"broken": True}
    rename("notifications", "notifications_gone")

    def repair() -> None:
        if state["broken"]:
            rename("notifications_gone", "notifications")
            state["broken"] = False

    yield repair
    repair()


def _thresholds(user: ApiClient) -> list[dict]:
    return [n for n in user.get("/api/v1/notifications").json()["items"] if n["event_type"] == "BudgetThresholdCrossed"]


def test_a_permanently_failing_message_is_dead_lettered_listed_and_replayed(stack: Stack, broken_inbox) -> None:
    """Given the inbox table missing, a crossed threshold fails its retries and is dead-lettered;
    `dlq list` shows it; once the table is back, `dlq replay` delivers it exactly once."""
    user, _ = register(stack.url)
    account = user.open_account("EUR")
    budget = user.create_budget("Groceries", "10.00", thresholds=[100])
    user.post_transaction(account["id"], "10.00")
    wait_for(lambda: user.budget_status(budget["id"])["thresholds_crossed"] == [100], timeout=10,
             what="the threshold crossed")

    listing = wait_for(lambda: "notifications.events\t" in (out := run_cli("dlq", "list").stdout) and out,
                       timeout=20, every=0.5, what="the dead-lettered notification")
    assert "UndefinedTable" in listing
    assert "notifications_on_event" in listing or "\tevent\t" in listing

    broken_inbox()
    replay = run_cli("dlq", "replay", "notifications.events")
    assert "replayed" in replay.stdout and not replay.stdout.startswith("replayed 0")
    notes = wait_for(lambda: _thresholds(user), timeout=10, what="the replayed notification")
    assert len(notes) == 1 and notes[0]["title"] == "Budget 100% reached"
    assert "notifications.events\t" not in run_cli("dlq", "list").stdout


def test_replaying_an_unknown_queue_is_refused(stack: Stack) -> None:
    """The operator gets a clear error for a queue that does not exist."""
    result = run_cli("dlq", "replay", "no.such.queue", check=False)
    assert result.returncode != 0
    assert "unknown queue" in result.stderr

"""Killing pools: nothing accepted is lost, nothing is counted twice, SIGTERM finishes the message in hand."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from config import wiring
from models.ledger import Transaction
from models.notifications import Notification
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def _household(client_user: dict) -> uuid.UUID:
    return uuid.UUID(client_user["household_id"])


def _count_recorded(household_id: uuid.UUID) -> int:
    with wiring.session_factory()() as s:
        return s.scalar(select(func.count()).select_from(Transaction).where(
            Transaction.household_id == household_id, Transaction.status == "recorded")) or 0


def _post_many(user: ApiClient, account_id: str, amounts: list[str]) -> threading.Thread:
    def post_all() -> None:
        for amount in amounts:
            assert user.post_transaction(account_id, amount).status_code == 202

    thread = threading.Thread(target=post_all)
    thread.start()
    return thread


def _kill_and_restart(stack: Stack, pool: str) -> None:
    stack.signal(pool, signal.SIGKILL)
    assert stack.wait_exit(pool) == -signal.SIGKILL
    stack.start_pool(pool)


@pytest.mark.parametrize("pool", ["categorization", "budgets"])
def test_a_pool_killed_mid_stream_loses_nothing_and_counts_nothing_twice(stack: Stack, pool: str) -> None:
    """Given 80 purchases streaming in, when the pool is SIGKILLed mid-stream and restarted,
    every purchase is recorded once and the budget total is the exact sum."""
    user, me = register(stack.url)
    account = user.open_account("EUR", opening="10000.00")
    budget = user.create_budget("Groceries", "200.00")
    amounts = [f"{3 + i % 7}.{i % 100:02d}" for i in range(80)]
    poster = _post_many(user, account["id"], amounts)
    wait_for(lambda: _count_recorded(_household(me)) >= 10, timeout=20, what="the stream to be under way")
    _kill_and_restart(stack, pool)
    poster.join(timeout=60)
    total = sum(Decimal(a) for a in amounts)
    wait_for(lambda: _count_recorded(_household(me)) == 80, timeout=30, what="all 80 recorded")
    status = wait_for(lambda: (s := user.budget_status(budget["id"]))["spent"] == str(total) and s,
                      timeout=30, what=f"spent == {total}")
    assert status["thresholds_crossed"] == [50, 80, 100]
    assert user.get(f"/api/v1/accounts/{account['id']}").json()["balance"] == str(Decimal("10000.00") - total)
    time.sleep(1)  # redeliveries after the restart would land now; none may add a second alert
    with wiring.session_factory()() as s:
        alerts = dict(s.execute(select(Notification.channel, func.count()).where(
            Notification.household_id == _household(me), Notification.event_type == "BudgetThresholdCrossed")
            .group_by(Notification.channel)).all())
    assert alerts == {"in_app": 3, "email": 3}  # one per threshold on each default channel (no phone: no SMS)


def test_sigterm_lets_the_message_in_hand_finish_before_the_pool_exits(stack: Stack) -> None:
    """Given the budgets pool blocked inside a message (its budget row locked by us),
    when it gets SIGTERM it waits; once the lock goes, it finishes the message, then exits 0."""
    user, me = register(stack.url)
    account = user.open_account("EUR")
    budget = user.create_budget("Groceries", "100.00")
    with wiring.engine().connect() as blocker:
        blocker.execute(text("SELECT id FROM budgets WHERE id = :id FOR UPDATE"), {"id": budget["id"]})
        txn = user.post_transaction(account["id"], "12.34").json()
        wait_for(lambda: user.get(f"/api/v1/transactions/{txn['id']}").json()["status"] == "recorded",
                 timeout=10, what="the transaction recorded")
        wait_for(lambda: _budget_message_in_progress(), timeout=10, what="budgets to be inside the message")
        stack.signal("budgets", signal.SIGTERM)
        time.sleep(1.5)
        assert stack.procs["budgets"].poll() is None, "the pool exited with a message in hand"
        blocker.rollback()  # release the lock
    assert stack.wait_exit("budgets", timeout=20) == 0
    # Counted before the process exited: nothing was left for a redelivery to do.
    assert user.budget_status(budget["id"])["spent"] == "12.34"
    stack.start_pool("budgets")


def _budget_message_in_progress() -> bool:
    r = wiring.redis_client()
    return any(int(r.hget(key, "budgets.events") or 0) > 0 for key in r.scan_iter("metrics:inprogress:*"))

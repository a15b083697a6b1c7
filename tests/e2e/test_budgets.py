"""Budgets under concurrency and crashes, running totals rebuilt from SQL, and rollover."""

from __future__ import annotations

import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import redis
from sqlalchemy import func, select, text

from config import wiring
from models.audit import AuditRecord
from models.budgets import BudgetAlert
from models.ledger import Transaction
from tests.support.cli import run_cli
from tests.support.client import ApiClient
from tests.support.isolation import TEST_ENV
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def _sql_sum(household_id: str) -> Decimal:
    with wiring.session_factory()() as s:
        return s.scalar(select(func.coalesce(func.sum(Transaction.base_amount), 0)).where(
            Transaction.household_id == uuid.UUID(household_id), Transaction.status == "recorded")) or Decimal(0)


def _household(user: ApiClient) -> str:
    return user.get("/api/v1/users/me").json()["household_id"]


def test_a_thousand_concurrent_purchases_with_a_killed_budgets_worker_count_exactly_once(
        stack: Stack, user: ApiClient) -> None:
    """Given 1,000 purchases posted by 16 clients at once while the budgets pool is SIGKILLed and restarted
    (its unacked events come back), the spent total is the exact SQL sum and each threshold alerted once."""
    account = user.open_account("EUR", opening="0")
    budget = user.create_budget("Groceries", "5000.00", thresholds=[25, 50, 75, 100])
    amounts = [f"{1 + i % 9}.{(i * 7) % 100:02d}" for i in range(1000)]
    killed = False

    def post(amount: str) -> int:
        return user.post_transaction(account["id"], amount, "REWE").status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(post, a) for a in amounts]
        for i, future in enumerate(futures):
            assert future.result() == 202
            if i == 300 and not killed:
                stack.signal("budgets", signal.SIGKILL)
                stack.wait_exit("budgets")
                stack.start_pool("budgets")
                killed = True
    expected = sum(Decimal(a) for a in amounts)
    household = _household(user)
    wait_for(lambda: _sql_sum(household) == expected, timeout=60, what="all 1,000 recorded")
    status = wait_for(lambda: (s := user.budget_status(budget["id"]))["spent"] == str(expected) and s,
                      timeout=60, what=f"spent == {expected}")
    assert status["thresholds_crossed"] == [25, 50, 75, 100]
    with wiring.session_factory()() as s:
        alerts = s.scalar(select(func.count()).select_from(BudgetAlert).where(
            BudgetAlert.budget_id == uuid.UUID(budget["id"])))
        audited = wait_for(lambda: _threshold_events(budget["id"]) == 4 and 4, timeout=15, what="4 audited")
    assert (alerts, audited) == (4, 4)


def _threshold_events(budget_id: str) -> int:
    with wiring.session_factory()() as s:
        return s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.type == "BudgetThresholdCrossed", AuditRecord.payload["budget_id"].astext == budget_id)) or 0


def test_reconcile_restores_corrupted_and_flushed_totals_from_sql(stack: Stack, user: ApiClient) -> None:
    """Given running totals in Redis, a corrupted total and a flushed one are found and fixed by `reconcile`;
    a total Redis lost is also rebuilt on demand when read."""
    account = user.open_account("EUR")
    groceries = user.create_budget("Groceries", "100.00")
    dining = user.create_budget("Dining", "100.00")
    for amount, payee in (("12.34", "REWE"), ("5.66", "Lidl"), ("20.00", "Pizza Place")):
        user.post_transaction(account["id"], amount, payee)
    wait_for(lambda: user.budget_status(groceries["id"])["spent"] == "18.00"
             and user.budget_status(dining["id"])["spent"] == "20.00", timeout=10, what="both counted")
    client = redis.Redis.from_url(TEST_ENV["REDIS_URL"])
    client.hincrby(f"budget:{groceries['id']}:2026-10-01", "__total", 50_000)
    client.delete(f"budget:{dining['id']}:2026-10-01")
    assert user.budget_status(groceries["id"])["spent"] == "518.00"  # the corruption shows...

    out = run_cli("reconcile").stdout
    assert f"budget {groceries['id']} period 2026-10-01: redis 518.00 sql 18.00 -> fixed" in out
    assert f"budget {dining['id']} period 2026-10-01: redis None sql 20.00 -> fixed" in out
    assert user.budget_status(groceries["id"])["spent"] == "18.00"  # ...and is gone
    assert "budget totals: 0 fixed" in run_cli("reconcile").stdout

    client.flushdb()
    assert user.budget_status(groceries["id"])["spent"] == "18.00"
    assert client.hget(f"budget:{groceries['id']}:2026-10-01", "__total") == b"1800"


@pytest.mark.parametrize("mode, september, october_limit, carried", [
    ("none", "60.00", "100.00", "0.00"),
    ("surplus", "60.00", "140.00", "40.00"),
    ("surplus", "130.00", "100.00", "0.00"),
    ("surplus_and_deficit", "130.00", "70.00", "-30.00"),
])
def test_rollover_carries_what_was_left_or_overspent(stack: Stack, user: ApiClient, mode: str, september: str,
                                                      october_limit: str, carried: str) -> None:
    """Given a 100.00 monthly budget and September spending, October's limit follows the rollover mode."""
    account = user.open_account("EUR", opening="1000.00")
    budget = user.create_budget("Groceries", "100.00", rollover=mode)
    _backdate(budget["id"])
    user.post_transaction(account["id"], september, "REWE", occurred_on="2026-09-10")
    wait_for(lambda: user.budget_status(budget["id"], "2026-09")["spent"] == september, timeout=10,
             what="September counted")
    october = user.budget_status(budget["id"], "2026-10")
    assert (october["limit"], october["carried_in"], october["spent"]) == (october_limit, carried, "0.00")
    assert october["remaining"] == october_limit


def _backdate(budget_id: str) -> None:
    """The budget existed since September (as if created then), so September counts toward its history."""
    with wiring.engine().begin() as conn:
        conn.execute(text("UPDATE budgets SET created_at = '2026-09-01' WHERE id = :id"), {"id": budget_id})


def test_a_person_sets_their_time_zone_and_a_wrong_one_is_refused(stack: Stack, user: ApiClient) -> None:
    """The time zone decides which period is 'now'; an unknown name answers 422 naming the field."""
    assert user.request("PATCH", "/api/v1/users/me", json={"timezone": "Pacific/Auckland"}).json()["timezone"] == \
        "Pacific/Auckland"
    bad = user.request("PATCH", "/api/v1/users/me", json={"timezone": "Mars/Olympus"})
    assert bad.status_code == 422 and "timezone" in bad.json()["errors"]
    budget = user.create_budget("Groceries", "10.00")
    import datetime as dt
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Pacific/Auckland")).date()
    assert user.budget_status(budget["id"], period=None)["period"] == today.strftime("%Y-%m")

"""The first slice end to end: HTTP in, every pool, results out."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from config import wiring
from tests.support.client import register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def test_a_month_of_groceries_flows_through_every_pool(stack: Stack) -> None:
    """Given a EUR account and a 100 EUR groceries budget, three grocery purchases (one in USD)..."""
    run = uuid.uuid4().hex[:8]
    user, me = register(stack.url, request_id=f"register-{run}")
    account = user.open_account("EUR")
    budget = user.create_budget("groceries", "100.00")
    request_ids = [f"txn-{run}-{i}" for i in range(3)]
    purchases = [("45.50", "EUR", "REWE"), ("30.25", "EUR", "Lidl"), ("40.00", "USD", "Whole Foods Market")]
    ids = []
    for request_id, (amount, currency, payee) in zip(request_ids, purchases, strict=True):
        r = user.post_transaction(account["id"], amount, payee, currency=currency, request_id=request_id)
        assert r.status_code == 202, r.text
        assert r.headers["X-Request-ID"] == request_id
        assert r.headers["Location"].endswith(r.json()["id"])
        ids.append(r.json()["id"])

    # ...within 10 s every transaction is recorded, the USD one converted at the ECB rate of its date.
    usd = wait_for(lambda: _recorded(user, ids[2]), timeout=10, what="the USD purchase converted")
    rate = wiring.rates().rate("USD", "EUR", dt.date(2026, 10, 15))
    expected_usd = (Decimal("40.00") * rate.value).quantize(Decimal("0.01"))
    assert usd["converted"] == {"amount": str(expected_usd), "currency": "EUR", "rate": str(rate.value),
                                "rate_date": rate.on.isoformat(), "source": "ECB"}
    total = Decimal("45.50") + Decimal("30.25") + expected_usd
    status = wait_for(lambda: _spent_is(user, budget["id"], total), timeout=10, what=f"spent == {total}")
    assert status["thresholds_crossed"] == [50, 80, 100]
    assert status["remaining"] == str(Decimal("100.00") - total)
    assert [t["category"] for t in (user.get(f"/api/v1/transactions/{i}").json() for i in ids)] == ["Groceries"] * 3

    # The budget's thresholds reached the inbox, once each.
    inbox = wait_for(lambda: _threshold_notes(user, 3), timeout=10, what="three threshold notifications")
    assert sorted(n["title"] for n in inbox) == ["Budget 100% reached", "Budget 50% reached", "Budget 80% reached"]

    # The audit store holds every event of the flow once, each with its request's correlation id. (Which
    # purchase crosses which threshold depends on the order the pool counts them in; that each crossing
    # carries the id of the request that caused it does not.)
    store = wiring.audit_store()
    flow = [f"register-{run}", *request_ids]
    expected = {"UserRegistered": 1, "TransactionRecorded": 3, "CurrencyConverted": 1, "BudgetThresholdCrossed": 3}
    events = wait_for(lambda: _audited_flow(store, flow, expected), timeout=10, what="the flow audited")
    assert len({e["event_id"] for e in events}) == len(events) == sum(expected.values())
    assert all(e["household_id"] == me["household_id"] for e in events)
    by_request = {c: sorted(e["type"] for e in events if e["correlation_id"] == c) for c in flow}
    assert by_request[f"register-{run}"] == ["UserRegistered"]
    for request_id in request_ids[:2]:
        assert [t for t in by_request[request_id] if t != "BudgetThresholdCrossed"] == ["TransactionRecorded"]
    assert [t for t in by_request[request_ids[2]] if t != "BudgetThresholdCrossed"] == [
        "CurrencyConverted", "TransactionRecorded"]


def _audited_flow(store, flow: list[str], expected: dict[str, int]) -> list[dict] | None:
    events = [e for c in flow for e in store.by_correlation(c) if e["type"] in expected]
    counts = {t: sum(1 for e in events if e["type"] == t) for t in expected}
    return events if counts == expected else None


def _recorded(user, transaction_id: str) -> dict | None:
    body = user.get(f"/api/v1/transactions/{transaction_id}").json()
    return body if body["status"] == "recorded" and body["converted"] else None


def _spent_is(user, budget_id: str, total: Decimal) -> dict | None:
    status = user.budget_status(budget_id)
    return status if Decimal(status["spent"]) == total and len(status["thresholds_crossed"]) == 3 else None


def _threshold_notes(user, count: int) -> list[dict] | None:
    items = [n for n in user.get("/api/v1/notifications").json()["items"]
             if n["event_type"] == "BudgetThresholdCrossed"]
    return items if len(items) >= count else None


def test_the_same_idempotency_key_creates_one_transaction(stack: Stack, user) -> None:
    """Given a transaction posted with an Idempotency-Key, posting it again returns the same id."""
    account = user.open_account("EUR")
    first = user.post_transaction(account["id"], "12.50", idempotency_key="k1")
    again = user.post_transaction(account["id"], "12.50", idempotency_key="k1")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    wait_for(lambda: user.get(f"/api/v1/accounts/{account['id']}").json()["balance"] == "987.50", timeout=10,
             what="the balance to move once")
    assert user.get(f"/api/v1/accounts/{account['id']}").json()["balance"] == "987.50"

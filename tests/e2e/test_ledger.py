"""The ledger over HTTP: edits and deletions move budgets and balances; learning; transfers; listing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.client import ApiClient
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def _txn(user: ApiClient, txn_id: str) -> dict:
    return user.get(f"/api/v1/transactions/{txn_id}").json()


def _post(user: ApiClient, account_id: str, amount: str, payee: str = "REWE", **extra) -> str:
    r = user.post_transaction(account_id, amount, payee, **extra)
    assert r.status_code == 202, r.text
    txn_id = r.json()["id"]
    wait_for(lambda: _txn(user, txn_id)["status"] == "recorded", timeout=10, what="recorded")
    return txn_id


def _balance(user: ApiClient, account_id: str) -> str:
    return user.get(f"/api/v1/accounts/{account_id}").json()["balance"]


def test_editing_and_deleting_a_transaction_moves_its_budget_and_balance(stack: Stack, user: ApiClient) -> None:
    """Given a 60.00 grocery purchase against a 100.00 budget, raising it to 90.00, moving it to Dining,
    back, to another month, and deleting it each move the totals exactly."""
    account = user.open_account("EUR", opening="500.00")
    budget = user.create_budget("Groceries", "100.00")
    txn = _post(user, account["id"], "60.00")
    # Recorded (the categorization pool) comes before counted (the budgets pool, on the event): wait for both.
    wait_for(lambda: user.budget_status(budget["id"])["spent"] == "60.00", timeout=10, what="60.00 counted")

    def patched(changes: dict, check) -> dict:
        assert user.request("PATCH", f"/api/v1/transactions/{txn}", json=changes).status_code == 202
        return wait_for(lambda: (s := user.budget_status(budget["id"])) and check(s) and s, timeout=10,
                        what=f"budget after {changes}")

    status = patched({"amount": "90.00"}, lambda s: s["spent"] == "90.00")
    assert status["thresholds_crossed"] == [50, 80]
    assert _balance(user, account["id"]) == "410.00"
    patched({"category": "Dining"}, lambda s: s["spent"] == "0.00")
    assert user.budget_status(budget["id"])["thresholds_crossed"] == []
    patched({"category": "Groceries"}, lambda s: s["spent"] == "90.00")
    patched({"occurred_on": "2026-09-30"}, lambda s: s["spent"] == "0.00")
    assert user.budget_status(budget["id"], period="2026-09")["spent"] == "90.00"
    assert _txn(user, txn)["locked"] == ["category"]

    assert user.request("DELETE", f"/api/v1/transactions/{txn}").status_code == 202
    wait_for(lambda: user.budget_status(budget["id"], period="2026-09")["spent"] == "0.00", timeout=10,
             what="the deletion counted")
    assert _balance(user, account["id"]) == "500.00"
    assert user.get(f"/api/v1/transactions/{txn}").status_code == 200
    assert user.request("PATCH", f"/api/v1/transactions/{txn}", json={"amount": "1.00"}).status_code == 404


def test_a_payee_recategorized_by_hand_is_learned(stack: Stack, user: ApiClient) -> None:
    """Given 'Corner Shop #12' moved to Groceries by hand, the next 'CORNER SHOP #99' is Groceries, learned."""
    account = user.open_account("EUR")
    first = _post(user, account["id"], "4.20", "Corner Shop #12")
    assert _txn(user, first)["category"] == "Uncategorized"
    user.request("PATCH", f"/api/v1/transactions/{first}", json={"category": "Groceries"})
    wait_for(lambda: _txn(user, first)["category_source"] == "user", timeout=10, what="the change applied")
    second = _txn(user, _post(user, account["id"], "3.10", "CORNER SHOP #99"))
    assert (second["category"], second["category_source"]) == ("Groceries", "learned")


def test_a_transfer_moves_money_between_two_accounts_and_is_no_expense(stack: Stack, user: ApiClient) -> None:
    """One transaction, two legs: out of checking, into savings; budgets do not count it."""
    checking = user.open_account("EUR", opening="1000.00")
    savings = user.post("/api/v1/accounts", {"name": "Savings", "type": "savings", "currency": "EUR",
                                              "opening_balance": "0"}).json()
    budget = user.create_budget("Transfers", "10.00")
    _post(user, checking["id"], "250.00", "Savings plan", type="transfer", counter_account_id=savings["id"])
    assert (_balance(user, checking["id"]), _balance(user, savings["id"])) == ("750.00", "250.00")
    assert user.budget_status(budget["id"])["spent"] == "0.00"
    other_currency = user.open_account("USD")
    r = user.post_transaction(checking["id"], "1.00", type="transfer", counter_account_id=other_currency["id"])
    assert r.status_code == 422 and "counter_account_id" in r.json()["errors"]


def test_the_list_pages_newest_first_and_filters(stack: Stack, user: ApiClient) -> None:
    """Seven purchases page 3 at a time, newest first, and each filter narrows them."""
    account = user.open_account("EUR")
    other = user.open_account("EUR")
    days = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07"]
    payees = ["REWE", "Lidl", "Starbucks", "Uber", "REWE City", "Pharmacy Plus", "Netflix"]
    for i, (day, payee) in enumerate(zip(days, payees, strict=True)):
        _post(user, account["id"] if i != 3 else other["id"], f"{10 + i}.00", payee, occurred_on=day)

    seen, cursor = [], None
    while True:
        page = user.get("/api/v1/transactions", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [t["occurred_on"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(days, reverse=True)

    def listed(**params) -> list[str]:
        return [t["payee"] for t in user.get("/api/v1/transactions", params=params).json()["items"]]

    assert listed(q="rewe") == ["REWE City", "REWE"]
    assert listed(category="Groceries") == ["REWE City", "Lidl", "REWE"]
    assert listed(account_id=other["id"]) == ["Uber"]
    assert listed(**{"from": "2026-10-03", "to": "2026-10-04"}) == ["Uber", "Starbucks"]
    assert listed(min_amount="15.00") == ["Netflix", "Pharmacy Plus"]
    assert listed(max_amount="10.99") == ["REWE"]
    assert user.get("/api/v1/transactions", params={"cursor": "garbage"}).status_code == 422
    assert sum(Decimal(t["amount"]) for t in user.get("/api/v1/transactions").json()["items"]) == Decimal("91.00")

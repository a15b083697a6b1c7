"""The insights pool's aggregates follow the ledger: edits (amount, category, date), deletions, imports and their
revert, category merges, rules applied over history and a new base currency; a redelivered event changes nothing.
After every step the daily and monthly rows equal a fresh computation from the transactions."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlalchemy import text

from config import wiring
from domain.events import Event
from services.insights_aggregates import apply_event
from tests.e2e.test_reports import create_category, month_bounds, monthly, post, report_agrees, settled, sql_sums
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

_TOTALS = ("transactions", "amount", "base_amount", "unconverted", "account_amount")


def expected_days(household_id: str) -> dict[tuple, tuple]:
    """What the daily rows must be, computed here in Python from the raw transactions."""
    with wiring.engine().connect() as conn:
        rows = conn.execute(text("""
            SELECT occurred_on, account_id, counter_account_id, category_id, type, currency, base_currency, amount,
                   base_amount, account_amount FROM transactions
             WHERE household_id = :h AND status = 'recorded' AND deleted_at IS NULL"""), {"h": household_id}).all()
    days: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0), 0, Decimal(0)])
    for r in rows:
        legs = [(r.account_id, "transfer_out"), (r.counter_account_id, "transfer_in")] if r.type == "transfer" else [
            (r.account_id, r.type)]
        for account, kind in legs:
            totals = days[(r.occurred_on, account, r.category_id or uuid.UUID(int=0), kind, r.currency,
                           r.base_currency)]
            totals[0] += 1
            totals[1] += r.amount
            totals[2] += r.base_amount or 0
            totals[3] += r.base_amount is None
            totals[4] += r.account_amount or 0
    return {key: tuple(value) for key, value in days.items()}


def stored(household_id: str, table: str, period: str) -> dict[tuple, tuple]:
    """The aggregate rows as stored."""
    with wiring.engine().connect() as conn:
        rows = conn.execute(text(f"""
            SELECT {period}, account_id, category_id, kind, currency, base_currency, {", ".join(_TOTALS)}
              FROM {table} WHERE household_id = :h"""), {"h": household_id}).all()
    return {tuple(r[:6]): tuple(r[6:]) for r in rows}


def expected_months(days: dict[tuple, tuple]) -> dict[tuple, tuple]:
    """The monthly rows the daily ones add up to."""
    months: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0), 0, Decimal(0)])
    for (day, *rest), totals in days.items():
        target = months[(day.replace(day=1), *rest)]
        for i, value in enumerate(totals):
            target[i] += value
    return {key: tuple(value) for key, value in months.items()}


def aggregates_agree(household_id: str) -> None:
    """Wait until the stored daily and monthly rows equal a fresh computation from the transactions."""
    def check() -> bool:
        days = expected_days(household_id)
        return (stored(household_id, "insights_daily_aggregates", "day") == days
                and stored(household_id, "insights_monthly_aggregates", "month") == expected_months(days))
    wait_for(check, timeout=30, every=0.3, what="aggregates to equal the transactions")


def patch(client: ApiClient, transaction_id: str, **changes: str) -> None:
    """Change a transaction (202)."""
    r = client.request("PATCH", f"/api/v1/transactions/{transaction_id}", json=changes)
    assert r.status_code == 202, r.text


def category_expenses(client: ApiClient, month: str, name: str) -> str | None:
    """A category's expenses in a month's report (None when it is not listed)."""
    return next((c["expenses"] for c in monthly(client, month)["categories"] if c["name"] == name), None)


@pytest.fixture
def household(stack: Stack) -> tuple[ApiClient, dict, dict]:
    """A fresh user, their household and an EUR account."""
    client, me = register(stack.url)
    return client, me, client.open_account("EUR", "100.00")


def test_aggregates_follow_edits_and_deletions(household: tuple[ApiClient, dict, dict]) -> None:
    client, me, account = household
    h = me["household_id"]
    ids = [post(client, account, "expense", "10.00", "2025-06-03", "REWE", category="Groceries"),
           post(client, account, "expense", "20.00", "2025-06-03", "Cinema", category="Entertainment"),
           post(client, account, "income", "500.00", "2025-06-05", "Employer", category="Income")]
    settled(client, ids)
    report_agrees(client, h, "2025-06")
    aggregates_agree(h)
    assert monthly(client, "2025-06")["expenses"] == "30.00"

    patch(client, ids[0], amount="12.35")
    wait_for(lambda: monthly(client, "2025-06")["expenses"] == "32.35", timeout=30, what="the new amount")
    aggregates_agree(h)

    patch(client, ids[1], category="Groceries")
    wait_for(lambda: category_expenses(client, "2025-06", "Groceries") == "32.35", timeout=30,
             what="the new category")
    assert category_expenses(client, "2025-06", "Entertainment") is None
    aggregates_agree(h)

    patch(client, ids[0], occurred_on="2025-07-01")
    wait_for(lambda: (monthly(client, "2025-06")["expenses"], monthly(client, "2025-07")["expenses"]) == (
        "20.00", "12.35"), timeout=30, what="the new date in both months")
    aggregates_agree(h)

    assert client.request("DELETE", f"/api/v1/transactions/{ids[1]}").status_code == 202
    wait_for(lambda: monthly(client, "2025-06")["expenses"] == "0.00", timeout=30, what="the deletion")
    aggregates_agree(h)
    report_agrees(client, h, "2025-06")
    report_agrees(client, h, "2025-07")


def test_a_redelivered_event_changes_nothing(household: tuple[ApiClient, dict, dict]) -> None:
    client, me, account = household
    h = me["household_id"]
    ident = post(client, account, "expense", "7.50", "2025-05-10", "Bakery", category="Dining")
    settled(client, [ident])
    aggregates_agree(h)
    before = stored(h, "insights_daily_aggregates", "day"), stored(h, "insights_monthly_aggregates", "month")
    event = Event("TransactionRecorded", {"transaction_id": ident, "occurred_on": "2025-05-10"}, h, None, "test",
                  None)
    for _ in range(3):
        assert apply_event(event, wiring.uow()) == 1
    assert (stored(h, "insights_daily_aggregates", "day"), stored(h, "insights_monthly_aggregates", "month")) == before
    assert monthly(client, "2025-05")["expenses"] == "7.50"


def test_an_import_counts_and_its_revert_takes_it_back(household: tuple[ApiClient, dict, dict]) -> None:
    client, me, account = household
    h = me["household_id"]
    csv = b"Date,Payee,Amount\n2025-03-02,REWE,-11.10\n2025-03-20,Lidl,-22.20\n2025-04-01,Employer,900.00\n"
    mapping = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee", "amount_column": "Amount"}
    r = client.request("POST", "/api/v1/imports", data={"account_id": account["id"], "mapping": json.dumps(mapping)},
                       files={"file": ("march.csv", csv, "text/csv")})
    assert r.status_code == 202, r.text
    import_id = r.json()["id"]
    wait_for(lambda: monthly(client, "2025-03")["expenses"] == "33.30", timeout=30, what="the import counted")
    assert monthly(client, "2025-04")["income"] == "900.00"
    aggregates_agree(h)

    assert client.request("DELETE", f"/api/v1/imports/{import_id}").status_code == 202
    wait_for(lambda: (monthly(client, "2025-03")["expenses"], monthly(client, "2025-04")["income"]) == (
        "0.00", "0.00"), timeout=30, what="the revert")
    aggregates_agree(h)


def test_merged_categories_and_rules_applied_over_history_move_the_totals(
        household: tuple[ApiClient, dict, dict]) -> None:
    client, me, account = household
    h = me["household_id"]
    old, new = create_category(client, "Old hobby"), create_category(client, "New hobby")
    ids = [post(client, account, "expense", "40.00", "2025-02-14", "Model shop", category="Old hobby"),
           post(client, account, "expense", "15.00", "2025-02-20", "Paint store")]
    settled(client, ids)
    wait_for(lambda: category_expenses(client, "2025-02", "Old hobby") == "40.00", timeout=30, what="the hobby")

    r = client.request("DELETE", f"/api/v1/categories/{old}", params={"merge_into": new})
    assert r.status_code in (200, 202, 204), r.text
    wait_for(lambda: category_expenses(client, "2025-02", "New hobby") == "40.00", timeout=30, what="the merge")
    assert category_expenses(client, "2025-02", "Old hobby") is None
    aggregates_agree(h)

    rule = client.post("/api/v1/rules", {"name": "Paint", "conditions": {
        "field": "payee", "op": "contains", "value": "paint"}, "actions": [{"set_category": "New hobby"}]})
    assert rule.status_code == 201, rule.text
    assert client.post(f"/api/v1/rules/{rule.json()['id']}/apply").status_code == 202
    wait_for(lambda: category_expenses(client, "2025-02", "New hobby") == "55.00", timeout=30,
             what="the rule applied over history")
    aggregates_agree(h)


def test_a_new_base_currency_reports_in_it(household: tuple[ApiClient, dict, dict]) -> None:
    client, me, account = household
    h = me["household_id"]
    ids = [post(client, account, "expense", "100.00", "2025-01-15", "Hotel", category="Travel"),
           post(client, account, "income", "1000.00", "2025-01-31", "Employer", category="Income")]
    settled(client, ids)
    report_agrees(client, h, "2025-01")
    assert client.request("PATCH", "/api/v1/users/me", json={"base_currency": "USD"}).status_code == 200

    def in_usd() -> dict | None:
        report = monthly(client, "2025-01")
        return report if report["currency"] == "USD" and report["unconverted"] == 0 and report[
            "expenses"] != "0.00" else None
    report = wait_for(in_usd, timeout=60, every=0.5, what="the report in USD")
    first, last = month_bounds("2025-01")
    sums = sql_sums(h, first, last)
    assert (Decimal(report["expenses"]), Decimal(report["income"])) == (sums["expenses"], sums["income"])
    assert report["expenses"] != "100.00"  # converted, not relabelled
    aggregates_agree(h)


def test_aggregates_can_be_rebuilt_from_sql_by_the_cli(household: tuple[ApiClient, dict, dict]) -> None:
    from tests.support.cli import run_cli

    client, me, account = household
    h = me["household_id"]
    ident = post(client, account, "expense", "3.20", "2024-12-24", "Bakery", category="Dining")
    settled(client, [ident])
    aggregates_agree(h)
    with wiring.engine().begin() as conn:  # an operator's mistake, or a lost event
        conn.execute(text("DELETE FROM insights_daily_aggregates WHERE household_id = :h"), {"h": h})
        conn.execute(text("UPDATE insights_monthly_aggregates SET base_amount = 999 WHERE household_id = :h"),
                     {"h": h})
    result = run_cli("rebuild-aggregates", "--household", h)
    assert result.returncode == 0, result.stdout + result.stderr
    aggregates_agree(h)
    assert monthly(client, "2024-12")["expenses"] == "3.20"

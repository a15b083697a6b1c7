"""Ledger benchmarks: a 100,000-row CSV import with 50 rules through the pools, and the first page of the
transaction list for a household holding 1,000,000 transactions.

Run: `make bench` (or `python -m bench.ledger`).
"""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal

from bench.common import drop, pct, stack, write  # isort: skip  (first: sets the isolated environment)
import os  # isort: skip

from sqlalchemy import create_engine, text  # isort: skip

from tests.support.client import register  # isort: skip
from tests.support.stack import wait_for  # isort: skip

ROWS = 100_000
HOUSEHOLD_ROWS = 1_000_000
#: Categorization processes during the import (3 measured no faster than 2 on two cores).
PROCESSES = int(os.environ.get("BENCH_CATEGORIZATION_PROCESSES", "2"))
PAYEES = [f"{kind} {n}" for kind in ("REWE", "Lidl", "Shell", "Cafe", "Pharmacy", "Amazon", "Uber", "Kiosk",
                                     "Netflix", "Hotel") for n in range(40)]


def _csv(rows: int) -> tuple[bytes, Decimal]:
    rng = random.Random(7)
    lines = ["Date,Payee,Description,Amount"]
    total = Decimal(0)
    for i in range(rows):
        amount = Decimal(rng.randint(100, 20000)) / 100
        total += amount
        lines.append(f"2025-{1 + i % 12:02d}-{1 + i % 28:02d},{rng.choice(PAYEES)},card payment {i},-{amount}")
    return ("\n".join(lines) + "\n").encode(), total


def _rules() -> list[dict]:
    rules = []
    for i, payee in enumerate(PAYEES[:45]):
        rules.append({"name": f"r{i}", "order": i, "conditions": {"field": "payee", "op": "is", "value": payee},
                      "actions": [{"set_category": "Groceries" if i % 2 else "Dining"}]})
    rules += [
        {"name": "big", "conditions": {"field": "amount", "op": "gt", "value": "190"}, "actions": [{"add_tag": "big"}]},
        {"name": "fuel", "conditions": {"field": "payee", "op": "regex", "value": "^shell [0-9]+$"},
         "actions": [{"set_category": "Transport"}]},
        {"name": "mix", "conditions": {"all": [{"field": "payee", "op": "starts_with", "value": "uber"},
                                               {"not": {"field": "amount", "op": "lt", "value": "5"}}]},
         "actions": [{"set_category": "Transport"}]},
        {"name": "subs", "conditions": {"field": "payee", "op": "one_of", "value": ["netflix 1", "netflix 2"]},
         "actions": [{"set_category": "Entertainment"}]},
        {"name": "post", "stage": "post", "conditions": {"field": "description", "op": "contains",
                                                         "value": "refund"}, "actions": [{"add_tag": "refund"}]},
    ]
    return rules


def import_benchmark(url: str) -> dict:
    """Upload a 100,000-row CSV and time it until every row is recorded and the budgets have counted it."""
    user, me = register(url)
    account = user.open_account("EUR", opening="0")
    budget = user.create_budget("Groceries", "1000000.00", period="yearly")
    for rule in _rules():
        assert user.post("/api/v1/rules", rule).status_code == 201
    data, _ = _csv(ROWS)
    mapping = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee",
               "description_column": "Description", "amount_column": "Amount"}
    start = time.perf_counter()
    r = user.request("POST", "/api/v1/imports", data={"account_id": account["id"], "mapping": json.dumps(mapping)},
                     files={"file": ("big.csv", data, "text/csv")}, timeout=120)
    assert r.status_code == 202, r.text
    done = wait_for(lambda: (s := user.get(f"/api/v1/imports/{r.json()['id']}").json())["status"] == "finished"
                    and s, timeout=1800, every=1, what="the import")
    landed = time.perf_counter() - start
    expected = _groceries_sum(me["household_id"])
    wait_for(lambda: Decimal(user.budget_status(budget["id"], "2025")["spent"]) == expected, timeout=600, every=1,
             what="budgets counted")
    total = time.perf_counter() - start
    return {"rows": ROWS, "rules": len(_rules()), "categorization_processes": PROCESSES,
            "imported": done["imported"],
            "seconds_to_recorded": round(landed, 1),
            "seconds_to_budgets": round(total, 1), "rows_per_s": round(ROWS / total, 1)}


def _groceries_sum(household_id: str) -> Decimal:
    engine = create_engine(os.environ["DATABASE_URL"])
    with engine.connect() as conn:
        total = conn.execute(text(
            "SELECT coalesce(sum(t.base_amount), 0) FROM transactions t JOIN categories c ON c.id = t.category_id "
            "WHERE t.household_id = :h AND c.name = 'Groceries' AND t.type = 'expense'"), {"h": household_id}).scalar()
    engine.dispose()
    return Decimal(total)


def _fill(household_id: str, account_id: str, rows: int) -> None:
    """A million transactions straight into SQL (the import path is measured above)."""
    engine = create_engine(os.environ["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO transactions (id, household_id, account_id, type, amount, currency, occurred_on, payee,
                description, notes, status, base_currency, base_amount, account_amount, fx_status, correlation_id,
                category_source, tags, locked)
            SELECT gen_random_uuid(), :h, :a, 'expense', (1 + (g % 20000)) / 100.0, 'EUR',
                   DATE '2016-01-01' + (g % 3650), 'Payee ' || (g % 500), 'row ' || g, '', 'recorded', 'EUR',
                   (1 + (g % 20000)) / 100.0, (1 + (g % 20000)) / 100.0, 'none', 'bench', 'default', '{}', '{}'
            FROM generate_series(1, :n) AS g"""), {"h": household_id, "a": account_id, "n": rows})
        conn.execute(text("ANALYZE transactions"))
    engine.dispose()


def listing_benchmark(url: str, samples: int = 300) -> dict:
    """p50/p95 of the first page of GET /transactions (and a filtered page) at 1,000,000 transactions."""
    user, me = register(url)
    account = user.open_account("EUR", opening="0")
    _fill(me["household_id"], account["id"], HOUSEHOLD_ROWS)
    figures = {}
    for name, params in (("first page", {}), ("q=payee 42", {"q": "payee 42"}),
                         ("account + dates", {"account_id": account["id"], "from": "2020-01-01", "to": "2020-06-30"})):
        for _ in range(10):
            user.get("/api/v1/transactions", params=params)
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            assert user.get("/api/v1/transactions", params=params).status_code == 200
            times.append((time.perf_counter() - t0) * 1000)
        figures[name] = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95)}
    return {"transactions": HOUSEHOLD_ROWS, "page_size": 50, **figures}


def main() -> None:
    """Run both and print a table."""
    # Two categorization processes: the pool is CPU-bound in Python, so it scales by processes (as
    # `heroku ps:scale categorization=2` would), not threads.
    with stack(processes={"categorization": PROCESSES}, WORKER_THREADS="4") as running:
        imported = import_benchmark(running.url)
        listing = listing_benchmark(running.url)
    write("ledger", {"import": imported, "listing": listing})
    print(f"\nimport: {imported['rows']} rows, {imported['rules']} rules: recorded in "
          f"{imported['seconds_to_recorded']} s, budgets in {imported['seconds_to_budgets']} s -> "
          f"{imported['rows_per_s']} rows/s")
    for name, f in listing.items():
        if isinstance(f, dict):
            print(f"GET /transactions ({name}) at {listing['transactions']:,} rows: p50 {f['p50_ms']} ms, "
                  f"p95 {f['p95_ms']} ms")
    drop()


if __name__ == "__main__":
    main()

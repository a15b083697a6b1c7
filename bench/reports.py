"""Report benchmarks: a household with 1,000,000 transactions over four years (four accounts in two currencies,
36 categories in a hierarchy, income, expenses and transfers), its aggregates rebuilt from SQL, then the monthly
report, 24-month trends, the yearly report, a chart, recurring payments and the forecast timed over HTTP, and how
fast one new transaction reaches a report.

Run: `make bench` (or `python -m bench.reports`).
"""

from __future__ import annotations

import time
from decimal import Decimal

from bench.common import drop, pct, stack, write  # isort: skip  (first: sets the isolated environment)
import os  # isort: skip
from pathlib import Path  # isort: skip

from sqlalchemy import create_engine, text  # isort: skip

from tests.support.cli import run_cli  # isort: skip
from tests.support.client import PASSWORD, ApiClient, register  # isort: skip
from tests.support.stack import wait_for  # isort: skip

HOUSEHOLD_ROWS = 1_000_000
#: Timed requests per endpoint (after a warm-up).
SAMPLES = int(os.environ.get("BENCH_REPORT_SAMPLES", "300"))
MONTH = "2026-10"
#: Parent categories, each with three children.
PARENTS = ("Food", "Home", "Mobility", "Leisure", "Health care", "Family")


def _setup(user: ApiClient) -> tuple[list[str], list[str]]:
    """Accounts and a category tree through the API; (account ids, category ids)."""
    accounts = [user.open_account(currency, "1000.00")["id"] for currency in ("EUR", "EUR", "EUR", "USD")]
    categories = []
    for name in PARENTS:
        r = user.post("/api/v1/categories", {"name": name})
        assert r.status_code == 201, r.text
        parent = str(r.json()["id"])
        categories.append(parent)
        for n in range(3):
            r = user.post("/api/v1/categories", {"name": f"{name} {n}", "parent_id": parent})
            assert r.status_code == 201, r.text
            categories.append(str(r.json()["id"]))
    for name in ("Groceries", "Dining", "Housing"):
        user.create_budget(name, "400.00")
    ids = [str(c["id"]) for c in user.get("/api/v1/categories").json()["items"]]
    return accounts, ids


def _fill(household_id: str, accounts: list[str], categories: list[str], rows: int) -> None:
    """A million transactions straight into SQL over 2023-01..2026-10: 90% expenses, 8% income, 2% transfers; the
    USD account's converted at a fixed 0.9 (bench data, not a real rate)."""
    engine = create_engine(os.environ["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO transactions (id, household_id, account_id, counter_account_id, type, amount, currency,
                occurred_on, payee, description, notes, status, base_currency, base_amount, account_amount,
                fx_status, correlation_id, category_id, category_source, tags, locked)
            SELECT gen_random_uuid(), :h, a.id, CASE WHEN k.type = 'transfer' THEN CAST(:a0 AS uuid) END, k.type,
                   x.amount, a.currency, DATE '2023-01-01' + (g % 1399), 'Payee ' || (g % 500), 'row ' || g, '',
                   'recorded', 'EUR', CASE WHEN a.currency = 'EUR' THEN x.amount ELSE round(x.amount * 0.9, 2) END,
                   x.amount, CASE WHEN a.currency = 'EUR' THEN 'none' ELSE 'converted' END, 'bench',
                   (CAST(:c AS uuid[]))[1 + (g * 7) % cardinality(CAST(:c AS uuid[]))], 'default', '{}', '{}'
              FROM generate_series(1, :n) AS g
              CROSS JOIN LATERAL (SELECT (CAST(:accounts AS uuid[]))[1 + g % 4] AS id,
                                         CASE WHEN g % 4 = 3 THEN 'USD' ELSE 'EUR' END AS currency) AS a
              CROSS JOIN LATERAL (SELECT CASE WHEN g % 50 = 0 AND g % 4 <> 3 AND g % 4 <> 0 THEN 'transfer'
                                              WHEN g % 12 = 1 THEN 'income' ELSE 'expense' END AS type) AS k
              CROSS JOIN LATERAL (SELECT CASE WHEN k.type = 'income' THEN (100000 + g % 300000) / 100.0
                                              ELSE (1 + g % 20000) / 100.0 END AS amount) AS x"""),
            {"h": household_id, "a0": accounts[0], "accounts": accounts, "c": categories, "n": rows})
        conn.execute(text("ANALYZE transactions"))
    engine.dispose()


def _rebuild(household_id: str) -> float:
    """Rebuild the household's aggregates with the operator CLI; seconds."""
    start = time.perf_counter()
    result = run_cli("rebuild-aggregates", "--household", household_id, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    seconds = time.perf_counter() - start
    engine = create_engine(os.environ["DATABASE_URL"], isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE insights_daily_aggregates"))
        conn.execute(text("VACUUM ANALYZE insights_monthly_aggregates"))
    engine.dispose()
    return seconds


def _aggregate_rows(household_id: str) -> dict[str, int]:
    engine = create_engine(os.environ["DATABASE_URL"])
    with engine.connect() as conn:
        counts = {table: conn.execute(text(f"SELECT count(*) FROM insights_{table}_aggregates WHERE household_id = :h"),
                                      {"h": household_id}).scalar() for table in ("daily", "monthly")}
    engine.dispose()
    return counts


def _cpu_seconds(session_id: int) -> float:
    """CPU time (user + system) of every process in a session: the web process and its gunicorn worker."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id:  # fields after the name: state, ppid, pgrp, session, ...
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _login(url: str, email: str) -> ApiClient:
    """A client with a fresh access token (they live 15 minutes; a loaded machine makes a run longer)."""
    r = ApiClient(url).post("/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return ApiClient(url, r.json()["access_token"])


def _time(user: ApiClient, path: str, params: dict, samples: int = SAMPLES, web: int | None = None) -> dict:
    """p50/p95 of one GET over `samples` requests (after ten to warm up), and the web process's CPU per request
    (a figure that other load on the machine inflates far less than wall time)."""
    for _ in range(10):
        assert user.get(path, params=params).status_code == 200
    cpu = _cpu_seconds(web) if web else 0.0
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        r = user.get(path, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
    figures = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "samples": samples}
    if web:
        figures["web_cpu_ms_per_request"] = round((_cpu_seconds(web) - cpu) * 1000 / samples, 1)
    print(f"{path} {params}: {figures}", flush=True)
    return figures


def _freshness(user: ApiClient, account_id: str) -> float:
    """Seconds from posting one transaction until the monthly report of its month counts it."""
    before = Decimal(user.get("/api/v1/reports/monthly", params={"month": MONTH}).json()["expenses"])
    start = time.perf_counter()
    r = user.post("/api/v1/transactions", {"account_id": account_id, "type": "expense", "amount": "12.34",
                                           "occurred_on": f"{MONTH}-15", "payee": "Bench"})
    assert r.status_code == 202, r.text
    wait_for(lambda: Decimal(user.get("/api/v1/reports/monthly", params={"month": MONTH}).json()["expenses"])
             == before + Decimal("12.34"), timeout=60, every=0.02, what="the report to count it")
    return round(time.perf_counter() - start, 3)


def reports_benchmark(url: str, web: int | None = None) -> dict:
    """Fill, rebuild and time the reports of a household with a million transactions."""
    user, me = register(url)
    accounts, categories = _setup(user)
    t0 = time.perf_counter()
    _fill(me["household_id"], accounts, categories, HOUSEHOLD_ROWS)
    filled = time.perf_counter() - t0
    rebuilt = _rebuild(me["household_id"])
    print(f"filled in {filled:.1f} s, aggregates rebuilt in {rebuilt:.1f} s", flush=True)
    figures = {}
    for name, path, params, samples in (
            ("monthly report", "/api/v1/reports/monthly", {"month": MONTH}, SAMPLES),
            ("24-month trends", "/api/v1/insights/trends", {"months": 24, "to": MONTH}, SAMPLES),
            ("yearly report", "/api/v1/reports/yearly", {"year": 2025}, SAMPLES // 3),
            ("monthly report as PNG", "/api/v1/reports/monthly.png", {"month": MONTH}, SAMPLES // 3),
            ("recurring payments", "/api/v1/insights/recurring", {}, SAMPLES // 10),
            ("forecast", "/api/v1/insights/forecast", {}, SAMPLES // 10)):
        figures[name] = _time(_login(url, me["email"]), path, params, samples, web)
    return {"transactions": HOUSEHOLD_ROWS, "accounts": len(accounts), "categories": len(categories),
            "seconds_to_fill": round(filled, 1), "seconds_to_rebuild_aggregates": round(rebuilt, 1),
            "aggregate_rows": _aggregate_rows(me["household_id"]), **figures,
            "seconds_until_a_new_transaction_is_in_the_report": _freshness(_login(url, me["email"]), accounts[0])}


def main() -> None:
    """Run it and print a table."""
    with stack() as running:
        figures = reports_benchmark(running.url, running.procs["web"].pid)
    write("reports", figures)
    print(f"\nreports at {figures['transactions']:,} transactions (aggregates rebuilt in "
          f"{figures['seconds_to_rebuild_aggregates']} s, rows {figures['aggregate_rows']}):")
    for name, f in figures.items():
        if isinstance(f, dict) and "p95_ms" in f:
            print(f"  {name}: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, web CPU "
                  f"{f.get('web_cpu_ms_per_request')} ms per request")
    print(f"  a new transaction in the report after {figures['seconds_until_a_new_transaction_is_in_the_report']} s")
    drop()


if __name__ == "__main__":
    main()

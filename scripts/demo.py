"""`make demo`: a demo household with two years of realistic history, loaded through the public API and the import
path of a running stack (`make run`), so every report, insight and alert has something real to show.

    python scripts/demo.py [--url http://127.0.0.1:8000] [--months 24] [--email demo@example.com]
    python scripts/demo.py --backtest      # no stack: score the forecast on the generated history
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402 - after the path set-up, so the script runs from anywhere

from domain.insights.forecast import backtest  # noqa: E402
from domain.insights.history import Txn  # noqa: E402
from domain.periods import add_months, days_in_month  # noqa: E402

PASSWORD = "demo horse battery staple"
#: Recent days go through POST /transactions (so anomalies are detected as they land); older ones through an import.
API_DAYS = 45
CSV_MAPPING = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee", "amount_column": "Amount"}


@dataclass(frozen=True)
class Row:
    """One generated statement line: positive income, negative spending."""

    account: str
    day: dt.date
    payee: str
    amount: Decimal


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def _monthly(month: dt.date, day: int) -> dt.date:
    return month.replace(day=min(day, days_in_month(month.year, month.month)))


def _fixed(month: dt.date, index: int, months: int) -> list[Row]:
    """Salary, rent, subscriptions (Netflix's price rose three charges ago) and a yearly membership."""
    netflix = Decimal("15.99") if index >= months - 2 else Decimal("12.99")
    rows = [Row("main", _monthly(month, 27), "ACME GmbH Gehalt", Decimal("3250.00")),
            Row("main", _monthly(month, 1), "Hausverwaltung Schmidt Miete", Decimal("-1150.00")),
            Row("main", _monthly(month, 5), "NETFLIX.COM 1234*AB", -netflix),
            Row("main", _monthly(month, 12), "PAYPAL *SPOTIFY 4029357733", Decimal("-10.99")),
            Row("main", _monthly(month, 3), "FitX Studio", Decimal("-24.99"))]
    if month.month == 3:
        rows.append(Row("main", _monthly(month, 9), "Amazon Prime", Decimal("-89.90")))
    if month.month == 12:
        rows.append(Row("main", _monthly(month, 20), "ACME GmbH Bonus", Decimal("1500.00")))
    return rows


def _seasonal(rng: random.Random, month: dt.date) -> list[Row]:
    """Power that costs more in winter, gifts in December, trips in summer."""
    winter = month.month in (11, 12, 1, 2)
    rows = [Row("main", _monthly(month, 15), "Stadtwerke Strom", -_money(rng, 80, 95) if winter
                else -_money(rng, 50, 62))]
    if month.month == 12:
        rows += [Row("main", _monthly(month, rng.randint(2, 22)), rng.choice(["Amazon.de*2K4LM", "Thalia Buch"]),
                     -_money(rng, 25, 140)) for _ in range(5)]
    if month.month in (7, 8):
        rows += [Row("main", _monthly(month, 6), "Booking.com Hotel", -_money(rng, 420, 780)),
                 Row("main", _monthly(month, 4), "Lufthansa Flight", -_money(rng, 250, 520))]
    return rows


def _daily(rng: random.Random, start: dt.date, end: dt.date) -> list[Row]:
    """Groceries every few days, eating out, fuel, and a cloud bill and games in US dollars."""
    rows, day = [], start
    while day <= end:
        rows.append(Row("main", day, rng.choice(["REWE Markt 0815", "ALDI SUED", "EDEKA Center"]),
                        -_money(rng, 18, 95)))
        if rng.random() < 0.35:
            rows.append(Row("main", day, rng.choice(["Pizzeria Da Mario", "Cafe Milano", "Starbucks"]),
                            -_money(rng, 6, 48)))
        if rng.random() < 0.12:
            rows.append(Row("main", day, "Shell Station 4711", -_money(rng, 45, 78)))
        if rng.random() < 0.05:
            rows.append(Row("usd", day, "Steam Games", -_money(rng, 10, 60)))
        day += dt.timedelta(days=rng.randint(2, 4))
    return rows


def generate(months: int, today: dt.date, seed: int = 2026) -> list[Row]:
    """`months` months of a household's history up to `today`, oldest first, reproducible by seed."""
    rng, first = random.Random(seed), add_months(today.replace(day=1), -months)
    rows: list[Row] = []
    for index in range(months + 1):
        month = add_months(first, index)
        rows += _fixed(month, index, months) + _seasonal(rng, month)
        rows.append(Row("usd", _monthly(month, 8), "AWS EMEA", -_money(rng, 11, 19)))
    rows += _daily(rng, first, today)
    return sorted((r for r in rows if r.day <= today), key=lambda r: (r.day, r.payee))


def anomalies(today: dt.date) -> list[Row]:
    """What the demo's alerts show: a grocery bill far above the usual, a charge made twice, a large first purchase."""
    return [Row("main", today - dt.timedelta(days=6), "REWE Markt 0815", Decimal("-412.80")),
            Row("main", today - dt.timedelta(days=4), "ZALANDO SE", Decimal("-89.95")),
            Row("main", today - dt.timedelta(days=3), "Zalando", Decimal("-89.95")),
            Row("main", today - dt.timedelta(days=2), "Apple Store Berlin", Decimal("-1899.00"))]


class Demo:
    """The demo household, built through the public API."""

    def __init__(self, url: str, email: str) -> None:
        self.base, self.email, self.http = url.rstrip("/") + "/api/v1", email, requests.Session()

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 202), **kwargs: object) -> dict:
        """One request; exits with the API's answer when it is not what was expected."""
        r = self.http.request(method, self.base + path, timeout=30, **kwargs)
        if r.status_code not in expect:
            sys.exit(f"{method} {path} answered {r.status_code}: {r.text[:500]}")
        return r.json() if r.content and r.headers.get("Content-Type", "").startswith("application/json") else {}

    def login(self) -> None:
        """Register the demo user and log in (an existing one is left alone: its history would double)."""
        r = self.http.post(self.base + "/auth/register", timeout=30, json={
            "email": self.email, "password": PASSWORD, "name": "Demo User", "base_currency": "EUR"})
        if r.status_code == 409:
            sys.exit(f"{self.email} exists already: log in with password {PASSWORD!r}, or pass --email another")
        if r.status_code != 201:
            sys.exit(f"POST /auth/register answered {r.status_code}: {r.text[:500]}")
        token = self.call("POST", "/auth/login", json={"email": self.email, "password": PASSWORD})["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def set_up(self, today: dt.date) -> dict[str, str]:
        """Accounts (one in US dollars), rules, budgets and a goal; the account ids by name."""
        accounts = {key: self.call("POST", "/accounts", json=body)["id"] for key, body in {
            "main": {"name": "Girokonto", "type": "checking", "currency": "EUR", "opening_balance": "2400.00"},
            "savings": {"name": "Tagesgeld", "type": "savings", "currency": "EUR", "opening_balance": "5000.00"},
            "usd": {"name": "US card", "type": "credit_card", "currency": "USD", "opening_balance": "0"}}.items()}
        for name, word, category in (("Gym", "fitx", "Health"), ("Power", "stadtwerke", "Utilities"),
                                     ("Rent", "miete", "Housing"), ("Salary", "acme", "Income"),
                                     ("Flights", "lufthansa", "Travel"), ("Games", "steam", "Entertainment")):
            self.call("POST", "/rules", json={"name": name, "conditions": {"field": "payee", "op": "contains",
                                                                           "value": word},
                                              "actions": [{"set_category": category}]})
        for category, amount in (("Groceries", "450.00"), ("Dining", "150.00"), ("Shopping", "200.00")):
            self.call("POST", "/budgets", json={"category": category, "amount": amount})
        goal = self.call("POST", "/goals", json={"name": "Summer holiday", "target": {"amount": "2500.00"},
                                                 "target_date": add_months(today, 8).isoformat()})
        self.call("POST", f"/goals/{goal['id']}/contributions", json={"amount": "300.00"})
        return accounts

    def import_rows(self, account_id: str, rows: list[Row]) -> None:
        """Older history through the import path: one CSV statement per account."""
        if not rows:
            return
        lines = ["Date,Payee,Amount"] + [f"{r.day.isoformat()},{r.payee},{r.amount}" for r in rows]
        started = self.call("POST", "/imports", data={"account_id": account_id, "mapping": json.dumps(CSV_MAPPING)},
                            files={"file": ("statement.csv", ("\n".join(lines) + "\n").encode(), "text/csv")})
        self.wait(lambda: self.call("GET", f"/imports/{started['id']}")["status"] == "finished", "the import")

    def post_rows(self, accounts: dict[str, str], rows: list[Row]) -> list[str]:
        """Recent history through POST /transactions; the ids."""
        ids = []
        for r in rows:
            body = {"account_id": accounts[r.account], "type": "income" if r.amount > 0 else "expense",
                    "amount": str(abs(r.amount)), "occurred_on": r.day.isoformat(), "payee": r.payee}
            ids.append(self.call("POST", "/transactions", json=body)["id"])
        return ids

    def transfer(self, accounts: dict[str, str], day: dt.date) -> str:
        """This month's savings transfer."""
        return self.call("POST", "/transactions", json={
            "account_id": accounts["main"], "counter_account_id": accounts["savings"], "type": "transfer",
            "amount": "300.00", "occurred_on": day.isoformat(), "payee": "Sparplan"})["id"]

    def wait(self, done: object, what: str, timeout: float = 120) -> None:
        """Poll until `done()` holds."""
        deadline = time.monotonic() + timeout
        while not done():  # type: ignore[operator]
            if time.monotonic() > deadline:
                sys.exit(f"timed out waiting for {what}")
            time.sleep(0.5)


def run(args: argparse.Namespace) -> None:
    """Build the demo household and say how to look at it."""
    today = dt.date.today()
    rows = generate(args.months, today, args.seed)
    demo = Demo(args.url, args.email)
    demo.login()
    accounts = demo.set_up(today)
    cut = today - dt.timedelta(days=args.api_days)
    for account in ("main", "usd"):
        demo.import_rows(accounts[account], [r for r in rows if r.account == account and r.day < cut])
    recent = [r for r in rows if r.day >= cut] + anomalies(today)
    ids = demo.post_rows(accounts, sorted(recent, key=lambda r: r.day))
    ids.append(demo.transfer(accounts, today.replace(day=1)))
    demo.wait(lambda: all(demo.call("GET", f"/transactions/{i}")["status"] != "pending" for i in ids[-20:]),
              "the pools to record every transaction")
    demo.wait(lambda: len({a["kind"] for a in demo.call("GET", "/insights/anomalies")["items"]}) >= 3,
              "the insights pool to flag the anomalies")
    print(f"""
Demo household ready: {len(rows)} transactions over {args.months} months ({len(ids)} through the API, the rest
imported), with budgets, a goal, rules and an account in US dollars.

Log in:   email {args.email}   password {PASSWORD!r}
  TOKEN=$(curl -s -XPOST {demo.base}/auth/login -H 'content-type: application/json' \\
    -d '{{"email":"{args.email}","password":"{PASSWORD}"}}' \\
    | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer $TOKEN" {demo.base}/insights/recurring

Try (with -H "Authorization: Bearer $TOKEN"):
  GET {demo.base}/insights/recurring        subscriptions; Netflix's price increase is flagged
  GET {demo.base}/insights/anomalies        a grocery bill far above the usual, a double charge, a large first purchase
  GET {demo.base}/insights/forecast         the next three months with 90% intervals (.png for a chart)
  GET {demo.base}/insights/trends           spending per category, month over month
  GET {demo.base}/reports/monthly?month={today.strftime('%Y-%m')}   (also .png)
  GET {demo.base}/budgets, /goals, /notifications, /transactions, /accounts
  API docs: {args.url.rstrip('/')}/docs
""")


def score(args: argparse.Namespace) -> None:
    """Score the forecast on the generated history of the euro account (no stack needed)."""
    rows = [r for r in generate(args.months, dt.date.today(), args.seed) if r.account == "main"]
    txns = [Txn(str(i), r.day, abs(r.amount), "income" if r.amount > 0 else "expense", r.payee)
            for i, r in enumerate(rows)]
    result = backtest(txns, holdout=args.holdout)
    print(f"origins {result.origins}, months scored {result.points}, inside the 90% interval {result.covered} "
          f"({result.coverage:.0%}), mean absolute error {result.mean_abs_error:.2f} EUR, "
          f"MAPE {result.mean_abs_pct_error:.1f}%")


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running stack (make run)")
    parser.add_argument("--months", type=int, default=24, help="months of history (default 24)")
    parser.add_argument("--email", default="demo@example.com")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--api-days", type=int, default=API_DAYS,
                        help=f"the last days posted through the API, not imported (default {API_DAYS})")
    parser.add_argument("--backtest", action="store_true", help="score the forecast offline and exit")
    parser.add_argument("--holdout", type=int, default=6, help="months held back by --backtest")
    args = parser.parse_args()
    score(args) if args.backtest else run(args)


if __name__ == "__main__":
    main()

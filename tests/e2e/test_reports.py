"""Monthly and yearly reports over HTTP with every pool: totals equal exact SQL sums of the constructed history
(several currencies, a transfer, a purchase without any rate), categories roll their children up, the previous
period and the budgets are compared, net worth follows the account balances, and charts render."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import text

from config import wiring
from domain.fx import convert
from services.fx_rates import default_rates
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

REPORTS = "/api/v1/reports"
TRENDS = "/api/v1/insights/trends"


@dataclass
class History:
    """A household with two months of constructed history."""

    client: ApiClient
    household_id: str
    accounts: dict[str, dict]
    categories: dict[str, str]
    transactions: list[str]


def post(client: ApiClient, account: dict, kind: str, amount: str, day: str, payee: str, **extra: str) -> str:
    """Submit a transaction (202); its id."""
    r = client.post("/api/v1/transactions", {"account_id": account["id"], "type": kind, "amount": amount,
                                             "occurred_on": day, "payee": payee, **extra})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def settled(client: ApiClient, ids: list[str]) -> None:
    """Wait until every transaction is recorded and no longer waits for the fx pool."""
    def done() -> bool:
        for ident in ids:
            txn = client.get(f"/api/v1/transactions/{ident}").json()
            if txn.get("status") != "recorded" or txn.get("fx_status") == "pending":
                return False
        return True
    wait_for(done, timeout=30, every=0.2, what="transactions recorded and converted")


def create_category(client: ApiClient, name: str, parent_id: str | None = None) -> str:
    """A new category; its id."""
    r = client.post("/api/v1/categories", {"name": name, "parent_id": parent_id})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def sql_sums(household_id: str, first: dt.date, last: dt.date, where: str = "", **params: object) -> dict:
    """Income and expenses straight from the transactions: converted, recorded, not deleted, no transfers."""
    with wiring.engine().connect() as conn:
        rows = conn.execute(text(f"""
            SELECT t.type, coalesce(sum(t.base_amount), 0) AS total,
                   count(*) FILTER (WHERE t.base_amount IS NULL) AS unconverted
              FROM transactions t
             WHERE t.household_id = :h AND t.occurred_on BETWEEN :first AND :last AND t.status = 'recorded'
               AND t.deleted_at IS NULL AND t.type IN ('income', 'expense') {where}
             GROUP BY t.type"""), {"h": household_id, "first": first, "last": last, **params}).all()
    found = {row.type: row for row in rows}
    return {"income": Decimal(found["income"].total) if "income" in found else Decimal(0),
            "expenses": Decimal(found["expense"].total) if "expense" in found else Decimal(0),
            "unconverted": sum(row.unconverted for row in rows)}


def under(category_id: str) -> str:
    """A SQL condition: the transaction's category is `category_id` or below it."""
    return f"""AND t.category_id IN (WITH RECURSIVE tree AS (SELECT id FROM categories WHERE id = '{category_id}'
               UNION ALL SELECT c.id FROM categories c JOIN tree ON c.parent_id = tree.id) SELECT id FROM tree)"""


def monthly(client: ApiClient, month: str, **headers: str) -> dict:
    """The monthly report."""
    r = client.get(f"{REPORTS}/monthly", params={"month": month}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of a YYYY-MM month."""
    first = dt.date.fromisoformat(month + "-01")
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, nxt - dt.timedelta(days=1)


def report_agrees(client: ApiClient, household_id: str, month: str, timeout: float = 30) -> dict:
    """Wait until the monthly report's totals equal the SQL sums of its month (aggregates follow events)."""
    first, last = month_bounds(month)

    def check() -> dict | None:
        report, sums = monthly(client, month), sql_sums(household_id, first, last)
        return report if (Decimal(report["income"]), Decimal(report["expenses"]), report["unconverted"]) == (
            sums["income"], sums["expenses"], sums["unconverted"]) else None
    return wait_for(check, timeout=timeout, every=0.3, what=f"the {month} report to equal the SQL sums")


@pytest.fixture(scope="module")
def history(stack: Stack) -> History:
    """September and October 2025: salary, groceries in EUR and USD, a parent and child category, a purchase in
    yen (converted), one in pesos (no rate: unconverted), a transfer between own accounts, a monthly budget."""
    client, me = register(stack.url)
    accounts = {"eur": client.open_account("EUR", "1000.00"), "usd": client.open_account("USD", "500.00"),
                "savings": client.open_account("EUR", "0.00")}
    home = create_category(client, "Home")
    categories = {"Home": home, "Home repairs": create_category(client, "Home repairs", home)}
    client.create_budget("Groceries", "200.00")
    eur, usd = accounts["eur"], accounts["usd"]
    ids = [
        post(client, eur, "income", "3000.00", "2025-09-01", "Employer", category="Income"),
        post(client, eur, "expense", "120.50", "2025-09-05", "REWE", category="Groceries"),
        post(client, usd, "expense", "45.99", "2025-09-12", "Whole Foods", category="Groceries"),
        post(client, eur, "income", "3100.00", "2025-10-01", "Employer", category="Income"),
        post(client, eur, "expense", "80.10", "2025-10-03", "REWE", category="Groceries"),
        post(client, usd, "expense", "19.99", "2025-10-08", "Whole Foods", category="Groceries"),
        post(client, eur, "expense", "250.00", "2025-10-10", "Plumber", category="Home repairs"),
        post(client, eur, "expense", "60.00", "2025-10-11", "Hardware store", category="Home"),
        post(client, eur, "expense", "1234", "2025-10-15", "Sushi bar", category="Dining", currency="JPY"),
        post(client, eur, "expense", "5000.00", "2025-10-20", "Kiosco", category="Shopping", currency="ARS"),
        post(client, eur, "transfer", "200.00", "2025-10-25", "To savings",
             counter_account_id=accounts["savings"]["id"]),
    ]
    settled(client, ids)
    history = History(client, me["household_id"], accounts, categories, ids)
    report_agrees(client, history.household_id, "2025-10")
    report_agrees(client, history.household_id, "2025-09")
    return history


def test_monthly_totals_equal_exact_sql_sums_across_currencies(history: History) -> None:
    report = monthly(history.client, "2025-10")
    sums = sql_sums(history.household_id, dt.date(2025, 10, 1), dt.date(2025, 10, 31))
    assert report["currency"] == "EUR" and report["period"] == "2025-10"
    assert (report["from"], report["to"]) == ("2025-10-01", "2025-10-31")
    assert Decimal(report["income"]) == sums["income"] == Decimal("3100.00")
    assert Decimal(report["expenses"]) == sums["expenses"]
    usd = convert(Decimal("19.99"), default_rates().rate("USD", "EUR", dt.date(2025, 10, 8)).value, "EUR")
    jpy = convert(Decimal("1234"), default_rates().rate("JPY", "EUR", dt.date(2025, 10, 15)).value, "EUR")
    assert sums["expenses"] == Decimal("80.10") + usd + Decimal("250.00") + Decimal("60.00") + jpy  # no transfer
    assert Decimal(report["net"]) == sums["income"] - sums["expenses"]
    rate = (sums["income"] - sums["expenses"]) * 100 / sums["income"]
    assert report["savings_rate"] == str(rate.quantize(Decimal("0.01")))
    assert report["unconverted"] == 1  # the pesos: no rate, so left out and counted, never 1:1
    assert report["transactions"] == 7
    assert all(len(report[k].split(".")[1]) == 2 for k in ("income", "expenses", "net"))


def test_categories_roll_their_children_up(history: History) -> None:
    report = monthly(history.client, "2025-10")
    lines = {line["name"]: line for line in report["categories"]}
    assert lines["Home repairs"]["expenses"] == "250.00"
    assert lines["Home repairs"]["parent_id"] == history.categories["Home"]
    assert lines["Home"]["expenses"] == "310.00"  # its own 60.00 and its child's 250.00
    for name in ("Home", "Groceries", "Dining"):
        line = lines[name]
        category_id = line["id"]
        sums = sql_sums(history.household_id, dt.date(2025, 10, 1), dt.date(2025, 10, 31), under(category_id))
        assert Decimal(line["expenses"]) == sums["expenses"], name
    assert "Transfers" not in lines or lines["Transfers"]["expenses"] == "0.00"


def test_accounts_and_the_previous_month_are_compared(history: History) -> None:
    report = monthly(history.client, "2025-10")
    september = sql_sums(history.household_id, dt.date(2025, 9, 1), dt.date(2025, 9, 30))
    assert report["previous_period"] == "2025-09"
    assert Decimal(report["previous"]["expenses"]) == september["expenses"]
    assert Decimal(report["previous"]["income"]) == september["income"] == Decimal("3000.00")
    assert Decimal(report["change"]["expenses"]) == Decimal(report["expenses"]) - september["expenses"]
    assert report["change"]["income"] == "100.00" and report["change"]["income_percent"] == "3.33"
    accounts = {line["id"]: line for line in report["accounts"]}
    for key, account in history.accounts.items():
        sums = sql_sums(history.household_id, dt.date(2025, 10, 1), dt.date(2025, 10, 31),
                        "AND t.account_id = :a", a=account["id"])
        if key == "savings":  # only the transfer touched it
            assert account["id"] not in accounts
            continue
        assert Decimal(accounts[account["id"]]["expenses"]) == sums["expenses"], key
    groceries = next(line for line in report["categories"] if line["name"] == "Groceries")
    assert Decimal(groceries["expenses_change"]) == Decimal(groceries["expenses"]) - Decimal(
        groceries["previous_expenses"])


def test_budgets_are_compared_with_the_month(history: History) -> None:
    report = monthly(history.client, "2025-10")
    [budget] = report["budgets"]
    status = history.client.budget_status(budget["budget_id"], "2025-10")
    assert budget["category"] == "Groceries" and budget["limit"] == "200.00"
    assert budget["spent"] == status["spent"]
    groceries = next(line for line in report["categories"] if line["name"] == "Groceries")
    assert budget["spent"] == groceries["expenses"]
    assert Decimal(budget["remaining"]) == Decimal("200.00") - Decimal(budget["spent"])


def test_yearly_report_adds_up_its_months_and_follows_net_worth(history: History) -> None:
    r = history.client.get(f"{REPORTS}/yearly", params={"year": 2025})
    assert r.status_code == 200, r.text
    year = r.json()
    sums = sql_sums(history.household_id, dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert (Decimal(year["income"]), Decimal(year["expenses"])) == (sums["income"], sums["expenses"])
    assert [m["month"] for m in year["months"]] == [f"2025-{m:02d}" for m in range(1, 13)]
    october = monthly(history.client, "2025-10")
    assert {k: year["months"][9][k] for k in ("income", "expenses", "net")} == {
        k: october[k] for k in ("income", "expenses", "net")}
    assert sum(Decimal(m["expenses"]) for m in year["months"]) == Decimal(year["expenses"])
    assert year["previous"]["income"] == "0.00" and year["previous_period"] == "2024"
    [budget] = year["budgets"]
    assert budget["limit"] == "2400.00"  # a monthly budget over twelve months
    # Net worth at the end of 2025 is every account's balance now (nothing happened since), converted.
    balances = Decimal(0)
    for account in history.client.get("/api/v1/accounts").json()["items"]:
        amount = Decimal(account["balance"])
        if account["currency"] != "EUR":
            amount = convert(amount, default_rates().rate(account["currency"], "EUR", dt.date(2025, 12, 31)).value,
                             "EUR")
        balances += amount
    points = {p["date"]: p for p in year["net_worth"]}
    assert Decimal(points["2025-12-31"]["amount"]) == balances
    assert Decimal(points["2025-08-31"]["amount"]) == convert(Decimal("500.00"), default_rates().rate(
        "USD", "EUR", dt.date(2025, 8, 31)).value, "EUR") + Decimal("1000.00")


def test_another_household_sees_none_of_it(stack: Stack, history: History) -> None:
    stranger, _ = register(stack.url)
    report = monthly(stranger, "2025-10")
    assert (report["income"], report["expenses"], report["categories"], report["accounts"]) == (
        "0.00", "0.00", [], [])


def test_trends_show_each_category_month_over_month(history: History) -> None:
    r = history.client.get(TRENDS, params={"months": 3, "to": "2025-10"})
    assert r.status_code == 200, r.text
    trends = r.json()
    assert trends["months"] == ["2025-08", "2025-09", "2025-10"]
    groceries = next(s for s in trends["categories"] if s["name"] == "Groceries")
    august, september, october = groceries["points"]
    assert august["expenses"] == "0.00" and august["change"] == "0.00" and august["change_percent"] is None
    for point, month in ((september, "2025-09"), (october, "2025-10")):
        first, last = month_bounds(month)
        expected = sql_sums(history.household_id, first, last, under(groceries["id"]))["expenses"]
        assert Decimal(point["expenses"]) == expected
    change = Decimal(october["expenses"]) - Decimal(september["expenses"])
    assert Decimal(october["change"]) == change
    assert october["change_percent"] == str((change * 100 / Decimal(september["expenses"])).quantize(Decimal("0.01")))
    assert [p["expenses"] for p in trends["total"]["points"]][1:] == [
        monthly(history.client, m)["expenses"] for m in ("2025-09", "2025-10")]


def test_trends_of_one_category_show_it_and_its_children(history: History) -> None:
    r = history.client.get(TRENDS, params={"months": 2, "to": "2025-10", "category": "home"})
    assert r.status_code == 200, r.text
    names = {s["name"]: s for s in r.json()["categories"]}
    assert set(names) == {"Home", "Home repairs"}
    assert names["Home"]["points"][-1]["expenses"] == "310.00"


@pytest.mark.parametrize(("path", "params", "field"), [
    (f"{REPORTS}/monthly", {"month": "2025-13"}, "month"),
    (f"{REPORTS}/monthly", {"month": "October"}, "month"),
    (f"{REPORTS}/monthly", {"month": "1800-01"}, "month"),
    (f"{REPORTS}/yearly", {"year": "twenty"}, "year"),
    (f"{REPORTS}/yearly", {"year": "3000"}, "year"),
    (TRENDS, {"months": "0"}, "months"),
    (TRENDS, {"months": "121"}, "months"),
    (TRENDS, {"category": "No such thing"}, "category"),
    (TRENDS, {"to": "2025/10"}, "to"),
])
def test_bad_input_names_the_field(history: History, path: str, params: dict, field: str) -> None:
    r = history.client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert field in r.json()["errors"], r.json()


def _decoded(response: object, size: tuple[int, int] = (1000, 560)) -> Image.Image:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert response.headers["Content-Type"] == "image/png"  # type: ignore[attr-defined]
    image = Image.open(io.BytesIO(response.content))  # type: ignore[attr-defined]
    image.load()
    assert image.format == "PNG" and image.size == size
    return image.convert("RGB")


def _not_blank(image: Image.Image) -> None:
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50
    white = next((n for n, c in colours if c == (255, 255, 255)), 0)
    assert white < 0.97 * image.size[0] * image.size[1]


def test_monthly_report_as_png_by_accept_header_and_route(history: History) -> None:
    by_header = history.client.get(f"{REPORTS}/monthly", params={"month": "2025-10"},
                                   headers={"Accept": "image/png"})
    _not_blank(_decoded(by_header))
    by_route = history.client.get(f"{REPORTS}/monthly.png", params={"month": "2025-10"})
    _not_blank(_decoded(by_route))
    assert by_route.content == by_header.content
    json_again = history.client.get(f"{REPORTS}/monthly", params={"month": "2025-10"},
                                    headers={"Accept": "application/json, image/png;q=0.5"})
    assert json_again.headers["Content-Type"].startswith("application/json")
    assert "Accept" in json_again.headers["Vary"] and "Accept" in by_route.headers["Vary"]


def test_svg_and_trends_charts_render(history: History) -> None:
    svg = history.client.get(f"{REPORTS}/monthly.svg", params={"month": "2025-10"})
    assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content[:2000] and b"Groceries" in svg.content
    trends = history.client.get(TRENDS, params={"months": 6, "to": "2025-10"}, headers={"Accept": "image/png"})
    _not_blank(_decoded(trends))
    bad = history.client.get(f"{TRENDS}.png", params={"months": "0"})
    assert bad.status_code == 422 and "months" in bad.json()["errors"]


def test_a_month_without_anything_still_answers(history: History) -> None:
    report = monthly(history.client, "2024-02")
    assert (report["income"], report["expenses"], report["savings_rate"]) == ("0.00", "0.00", None)
    image = history.client.get(f"{REPORTS}/monthly.png", params={"month": "2024-02"})
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (1000, 560)


def test_default_month_is_the_current_one(history: History) -> None:
    report = history.client.get(f"{REPORTS}/monthly").json()
    assert report["period"] == dt.datetime.now(dt.UTC).strftime("%Y-%m") or report["period"] in {
        (dt.datetime.now(dt.UTC) + dt.timedelta(hours=h)).strftime("%Y-%m") for h in (-14, 14)}
    assert uuid.UUID(report["budgets"][0]["budget_id"])

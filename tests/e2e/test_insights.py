"""Insights over HTTP with every pool: a subscription found with its cadence, next date and price increase;
unusual transactions flagged as they land (and only those), announced once; the forecast with its interval and
as a PNG."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import uuid
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import func, select

from config import wiring
from domain.events import Event
from domain.periods import add_months
from models.messaging import OutboxEvent
from services.insights import detect_anomalies
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

INSIGHTS = "/api/v1/insights"
MAPPING = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee", "amount_column": "Amount"}


def today() -> dt.date:
    """Today as the API counts it (UTC, the default time zone)."""
    return dt.datetime.now(dt.UTC).date()


def history_csv() -> bytes:
    """Ten months of a household's statement: salary, a Netflix subscription on the 1st whose price rose for
    the last three charges, supermarket shopping every three days (20 to 90 EUR) and a zalando order now and then."""
    rng, start = random.Random(9), add_months(today().replace(day=1), -9)
    rows = []
    for i in range(10):
        month = add_months(start, i)
        netflix = "-17.99" if i >= 7 else "-15.99"
        rows += [(month, "ACME GMBH SALARY", "3000.00"), (month, "NETFLIX.COM 1234*AB", netflix)]
    day = start
    while day < today() - dt.timedelta(days=3):
        rows.append((day, "REWE Markt 0815", f"-{Decimal(rng.randint(2000, 9000)) / 100}"))
        day += dt.timedelta(days=3)
    lines = ["Date,Payee,Amount"] + [f"{d.isoformat()},{p},{a}" for d, p, a in rows]
    return ("\n".join(lines) + "\n").encode()


def import_history(user: ApiClient, account_id: str) -> None:
    """Load the history through the import path (no alerts for old statements) and wait until it landed."""
    user.http.headers.pop("Content-Type", None)
    r = user.request("POST", "/api/v1/imports", data={"account_id": account_id, "mapping": json.dumps(MAPPING)},
                     files={"file": ("history.csv", history_csv(), "text/csv")})
    assert r.status_code == 202, r.text
    wait_for(lambda: user.get(f"/api/v1/imports/{r.json()['id']}").json()["status"] == "finished", timeout=30,
             what="the history import")


def spend(user: ApiClient, account_id: str, amount: str, payee: str, on: dt.date) -> str:
    """Post an expense and wait until it is recorded; its id."""
    r = user.post_transaction(account_id, amount, payee, occurred_on=on.isoformat())
    assert r.status_code == 202, r.text
    ident = r.json()["id"]
    wait_for(lambda: user.get(f"/api/v1/transactions/{ident}").json()["status"] == "recorded", timeout=15,
             what=f"{payee} {amount} recorded")
    return ident


def flagged(user: ApiClient) -> dict[str, set[str]]:
    """transaction id -> the kinds it was flagged for."""
    found: dict[str, set[str]] = {}
    for item in user.get(f"{INSIGHTS}/anomalies", params={"limit": 200}).json()["items"]:
        found.setdefault(item["transaction_id"], set()).add(item["kind"])
    return found


def announced(transaction_id: str) -> int:
    """How many AnomalyDetected events were ever emitted for a transaction."""
    with wiring.session_factory()() as session:
        return session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.envelope["type"].astext == "AnomalyDetected",
            OutboxEvent.envelope["payload"]["transaction_id"].astext == transaction_id)) or 0


@pytest.fixture(scope="module")
def household(stack: Stack) -> tuple[ApiClient, str]:
    """A user whose ten months of history are imported."""
    user, _ = register(stack.url)
    account = user.open_account("EUR", opening="2000.00")
    import_history(user, account["id"])
    return user, account["id"]


def test_a_monthly_subscription_is_found_with_cadence_next_date_and_price_increase(household) -> None:
    user, _ = household
    body = user.get(f"{INSIGHTS}/recurring").json()
    items = {(i["payee_key"], i["type"]): i for i in body["items"]}
    netflix = items[("netflix", "expense")]
    first_of_next = add_months(today().replace(day=1), 1)
    assert (netflix["cadence"], netflix["next_date"], netflix["active"]) == ("monthly", first_of_next.isoformat(), True)
    assert netflix["amount"] == {"amount": "17.99", "currency": "EUR"}
    assert netflix["previous_amount"] == {"amount": "15.99", "currency": "EUR"} and netflix["price_increase"] is True
    assert netflix["payee"] == "Netflix" and netflix["charges"] == 10
    assert items[("acme salary", "income")]["cadence"] == "monthly"
    assert ("rewe markt", "expense") not in items  # shopping that varies is no subscription
    assert body["currency"] == "EUR"


def test_unusual_transactions_are_flagged_once_and_ordinary_spending_is_not(household, stack: Stack) -> None:
    user, account = household
    now = today()
    ordinary = spend(user, account, "55.00", "REWE Markt 0815", now)
    outlier = spend(user, account, "950.00", "REWE Markt 0815", now)
    first = spend(user, account, "79.90", "ZALANDO SE", now - dt.timedelta(days=1))
    duplicate = spend(user, account, "79.90", "Zalando", now)
    jeweller = spend(user, account, "2400.00", "Cartier Boutique", now)
    def all_flagged() -> dict[str, set[str]] | None:
        found = flagged(user)
        return found if {outlier, duplicate, jeweller} <= found.keys() else None
    found = wait_for(all_flagged, timeout=20, what="the anomalies flagged")
    assert found[outlier] == {"outlier"}
    assert "duplicate_charge" in found[duplicate] or "duplicate_charge" in found.get(first, set())
    assert found[jeweller] == {"new_payee_large"}
    assert ordinary not in found
    item = next(i for i in user.get(f"{INSIGHTS}/anomalies", params={"kind": "outlier"}).json()["items"]
                if i["transaction_id"] == outlier)
    assert item["amount"] == {"amount": "950.00", "currency": "EUR"} and "far above the usual" in item["reason"]
    # announced, audited and alerted in the inbox; a redelivered event announces nothing more
    wait_for(lambda: "AnomalyDetected" in {e["type"] for e in user.get("/api/v1/audit").json()["items"]},
             timeout=15, what="AnomalyDetected in the audit trail")
    wait_for(lambda: "AnomalyDetected" in {n["event_type"] for n in user.get("/api/v1/notifications").json()["items"]},
             timeout=15, what="the anomaly alert in the in-app inbox")
    again = Event("TransactionRecorded", {"transaction_id": outlier}, None, None, "redelivery", None)
    assert detect_anomalies(uuid.UUID(outlier), again, wiring.uow()) == 0
    assert announced(outlier) == 1
    # another household sees none of it
    stranger, _ = register(stack.url)
    assert stranger.get(f"{INSIGHTS}/anomalies").json()["items"] == []


def test_anomalies_refuse_an_unknown_kind(household) -> None:
    user, _ = household
    r = user.get(f"{INSIGHTS}/anomalies", params={"kind": "weird"})
    assert r.status_code == 422 and "kind" in r.json()["errors"]


def test_the_forecast_answers_three_months_with_intervals(household) -> None:
    user, _ = household
    body = user.get(f"{INSIGHTS}/forecast").json()
    assert body["currency"] == "EUR" and body["confidence"] == "0.90"
    next_month = add_months(today().replace(day=1), 1)
    assert [m["month"] for m in body["months"]] == [add_months(next_month, k).strftime("%Y-%m") for k in range(3)]
    for month in body["months"]:
        for band in ("income", "spending", "balance"):
            low, expected, high = (Decimal(month[band][k]) for k in ("low", "expected", "high"))
            assert low <= expected <= high, (band, month)
        assert Decimal(month["recurring_spending"]) >= Decimal("17.99")
        assert Decimal(month["income"]["expected"]) >= Decimal("3000.00")
    assert "netflix" in {r["payee_key"] for r in body["recurring"]}
    assert Decimal(body["starting_balance"]["amount"]) != 0


def test_the_forecast_is_a_png_by_route_and_by_accept_header(household) -> None:
    user, _ = household
    for r in (user.get(f"{INSIGHTS}/forecast.png"), user.get(f"{INSIGHTS}/forecast", headers={"Accept": "image/png"})):
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
        image = Image.open(io.BytesIO(r.content))
        assert image.format == "PNG" and image.width >= 400 and image.height >= 250
        colors = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colors is not None and len(colors) > 10  # drawn, not blank


def test_anomalies_page_with_a_cursor(household) -> None:
    user, _ = household
    first = user.get(f"{INSIGHTS}/anomalies", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = user.get(f"{INSIGHTS}/anomalies", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert len(second["items"]) == 1 and second["items"][0]["id"] != first["items"][0]["id"]


def test_spending_without_a_rate_is_left_out_never_counted_one_to_one(stack: Stack) -> None:
    user, _ = register(stack.url)
    account = user.open_account("USD", opening="0")
    spend(user, account["id"], "5000.00", "Car dealer", today())  # no ECB rate for today: left out of EUR figures
    body = user.get(f"{INSIGHTS}/forecast").json()
    assert body["unconverted_transactions"] == 1 and body["accounts_left_out"] == [account["id"]]
    assert body["starting_balance"] == {"amount": "0.00", "currency": "EUR"}
    assert user.get(f"{INSIGHTS}/recurring").json()["unconverted_transactions"] == 1


def test_a_recent_statement_is_examined_when_its_import_finishes_but_old_history_is_not(stack: Stack) -> None:
    user, _ = register(stack.url)
    account = user.open_account("EUR", opening="0")
    now = today()
    rows = [(now - dt.timedelta(days=200), "Old Shop", "-10.00"), (now - dt.timedelta(days=200), "Old Shop", "-10.00"),
            (now - dt.timedelta(days=5), "ZALANDO SE", "-59.90"), (now - dt.timedelta(days=4), "Zalando", "-59.90")]
    lines = ["Date,Payee,Amount"] + [f"{d.isoformat()},{p},{a}" for d, p, a in rows]
    user.http.headers.pop("Content-Type", None)
    r = user.request("POST", "/api/v1/imports", data={"account_id": account["id"], "mapping": json.dumps(MAPPING)},
                     files={"file": ("recent.csv", ("\n".join(lines) + "\n").encode(), "text/csv")})
    assert r.status_code == 202, r.text
    items = wait_for(lambda: user.get(f"{INSIGHTS}/anomalies").json()["items"], timeout=20,
                     what="the imported double charge flagged")
    assert [(i["kind"], i["payee"], i["occurred_on"]) for i in items] == [
        ("duplicate_charge", "Zalando", (now - dt.timedelta(days=4)).isoformat())]

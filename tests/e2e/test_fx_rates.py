"""Exchange rates over HTTP with the session's stack (no live provider: the ECB reference rates in the package):
GET /fx/rates on historical dates, JPY and BHD rounding, manual rates that override and re-convert, a change of base
currency that re-converts history, and bad input answered clearly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import requests

from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

RATES = "/api/v1/fx/rates"
MANUAL = "/api/v1/fx/manual-rates"
#: 2020-01-02: 1 EUR = 1.1193 USD = 121.75 JPY (eurofxref-hist.csv in currency_converter); 2020-01-04 is a Saturday.
JAN_2 = "2020-01-02"


def _rate(user: ApiClient, **params: str) -> requests.Response:
    return user.get(RATES, params=params)


def _post(user: ApiClient, account: dict, amount: str, currency: str, on: str = JAN_2, payee: str = "REWE") -> str:
    r = user.post_transaction(account["id"], amount, payee, currency=currency, occurred_on=on)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _txn(user: ApiClient, transaction_id: str) -> dict:
    return user.get(f"/api/v1/transactions/{transaction_id}").json()


def _converted_to(user: ApiClient, transaction_id: str, currency: str, source: str | None = None,
                  timeout: float = 10) -> dict:
    def check() -> dict | None:
        body = _txn(user, transaction_id)
        converted = body["converted"]
        ok = body["status"] == "recorded" and converted and converted["currency"] == currency
        return converted if ok and source in (None, converted["source"]) else None
    return wait_for(check, timeout=timeout, what=f"{transaction_id} converted to {currency} ({source or 'any'})")


def _manual(user: ApiClient, base: str, quote: str, rate: str, on: str) -> requests.Response:
    return user.post(MANUAL, {"base": base, "quote": quote, "rate": rate, "date": on})


# --- rates on historical dates ------------------------------------------------------------------------------------


def test_rates_for_historical_dates_are_the_ecb_reference_values(user: ApiClient) -> None:
    """USD->JPY on 2020-01-02 is 121.75 / 1.1193; on a Saturday the Friday's rate answers, marked stale."""
    r = _rate(user, base="USD", quote="JPY", date=JAN_2)
    assert r.status_code == 200, r.text
    assert r.json() == {"base": "USD", "quote": "JPY", "rate": "108.7733404807", "date": JAN_2,
                        "requested_date": JAN_2, "stale": False, "source": "ECB"}
    assert _rate(user, base="EUR", quote="USD", date=JAN_2).json()["rate"] == "1.1193000000"
    saturday = _rate(user, base="EUR", quote="USD", date="2020-01-04").json()
    assert (saturday["rate"], saturday["date"], saturday["stale"]) == ("1.1147000000", "2020-01-03", True)
    listed = _rate(user, base="USD", date=JAN_2).json()
    by_quote = {r["quote"]: r["rate"] for r in listed["rates"]}
    assert (by_quote["JPY"], by_quote["EUR"]) == ("108.7733404807", "0.8934155276")
    assert "USD" not in by_quote and listed["requested_date"] == JAN_2


def test_a_pair_without_a_rate_answers_404_never_1(user: ApiClient) -> None:
    """ARS was never quoted by the ECB and no live provider is configured: 404 naming quote, no made-up rate."""
    r = _rate(user, base="EUR", quote="ARS", date=JAN_2)
    assert r.status_code == 404, r.text
    body = r.json()
    assert "quote" in body["errors"] and "never a made-up one" in body["message"]
    assert _rate(user, base="ISK", quote="EUR", date="2012-06-01").status_code == 404  # the ECB paused ISK then


def test_a_jpy_household_gets_whole_yen(stack: Stack) -> None:
    """12.34 USD on 2020-01-02 in a JPY household: 12.34 x 108.7733404807 = 1342.26... -> 1342 JPY."""
    user, _ = register(stack.url, base_currency="JPY")
    account = user.open_account("USD")
    converted = _converted_to(user, _post(user, account, "12.34", "USD"), "JPY")
    assert converted == {"amount": "1342", "currency": "JPY", "rate": "108.7733404807", "rate_date": JAN_2,
                         "source": "ECB"}


def test_a_bhd_household_waits_for_a_rate_then_converts_to_three_places_on_its_manual_rate(stack: Stack) -> None:
    """The ECB has no BHD: the purchase is flagged missing (never 1:1) until the household sets its own rate, then
    12.34 EUR x 0.4123 = 5.087782 -> 5.088 BHD."""
    user, _ = register(stack.url, base_currency="BHD")
    account = user.open_account("EUR")
    budget = user.create_budget("Groceries", "100.000")
    txn = _post(user, account, "12.34", "EUR")
    wait_for(lambda: _txn(user, txn)["fx_status"] == "missing", timeout=10, what="flagged missing")
    assert _txn(user, txn)["converted"] is None
    assert user.budget_status(budget["id"], "2020-01")["pending_conversion"] == 1
    r = _manual(user, "EUR", "BHD", "0.4123", JAN_2)
    assert r.status_code == 201, r.text
    assert r.json()["rate"] == "0.4123000000" and r.json()["source"] == "manual"
    converted = _converted_to(user, txn, "BHD", "manual")
    assert converted == {"amount": "5.088", "currency": "BHD", "rate": "0.4123000000", "rate_date": JAN_2,
                         "source": "manual"}
    status = wait_for(lambda: (s := user.budget_status(budget["id"], "2020-01"))["spent"] == "5.088" and s,
                      timeout=10, what="the budget counts it")
    assert status["pending_conversion"] == 0


# --- manual rates -------------------------------------------------------------------------------------------------


def test_a_manual_rate_overrides_the_ecb_for_its_household_and_reconverts(stack: Stack) -> None:
    """A USD purchase converted at the ECB rate is converted again at the household's own rate (and again when the
    rate is replaced); other households still get the ECB's; the rate works both ways and a few days on."""
    user, _ = register(stack.url)
    other, _ = register(stack.url)
    account = user.open_account("EUR")
    budget = user.create_budget("Groceries", "100.00")
    txn = _post(user, account, "20.00", "USD", "2020-01-06")
    assert _converted_to(user, txn, "EUR", "ECB")["rate_date"] == "2020-01-06"

    r = _manual(user, "USD", "EUR", "0.5", "2020-01-06")
    assert r.status_code == 201, r.text
    assert _converted_to(user, txn, "EUR", "manual")["amount"] == "10.00"
    wait_for(lambda: user.budget_status(budget["id"], "2020-01")["spent"] == "10.00", timeout=10, what="spent 10")
    mine = _rate(user, base="USD", quote="EUR", date="2020-01-08").json()
    assert (mine["rate"], mine["source"], mine["date"], mine["stale"]) == ("0.5000000000", "manual", "2020-01-06",
                                                                         True)
    assert _rate(user, base="EUR", quote="USD", date="2020-01-06").json()["rate"] == "2.0000000000"
    assert _rate(other, base="USD", quote="EUR", date="2020-01-06").json()["source"] == "ECB"
    listed = {r["quote"]: r for r in _rate(user, base="USD", date="2020-01-06").json()["rates"]}
    assert (listed["EUR"]["source"], listed["EUR"]["rate"], listed["JPY"]["source"]) == ("manual", "0.5000000000",
                                                                                         "ECB")

    replaced = _manual(user, "USD", "EUR", "0.6", "2020-01-06")
    assert replaced.status_code == 200, replaced.text
    wait_for(lambda: _txn(user, txn)["converted"]["amount"] == "12.00", timeout=10, what="converted again at 0.6")
    wait_for(lambda: user.budget_status(budget["id"], "2020-01")["spent"] == "12.00", timeout=10, what="spent 12")
    listed = user.get(MANUAL).json()["items"]
    assert [(m["base"], m["quote"], m["rate"], m["date"]) for m in listed] == [
        ("USD", "EUR", "0.6000000000", "2020-01-06")]
    assert other.get(MANUAL).json()["items"] == []


# --- a new base currency ------------------------------------------------------------------------------------------


def test_changing_the_base_currency_reconverts_history_and_budgets_follow(stack: Stack) -> None:
    """EUR -> USD: every transaction is converted again into USD at the rate of its date; the EUR budget keeps its
    currency and counts the same (each purchase at its own rate to EUR); the change and its end are audited."""
    user, _ = register(stack.url)
    account = user.open_account("EUR")
    budget = user.create_budget("Groceries", "100.00")
    ids = {c: _post(user, account, amount, c) for amount, c in (("10.00", "EUR"), ("5.00", "USD"), ("1000", "JPY"))}
    for currency in ("USD", "JPY"):
        _converted_to(user, ids[currency], "EUR")
    # 10.00 + 5.00 x 0.8934155276 (4.47) + 1000 x 0.0082135524 (8.21)
    wait_for(lambda: user.budget_status(budget["id"], "2020-01")["spent"] == "22.68", timeout=10, what="22.68")

    r = user.request("PATCH", "/api/v1/users/me", json={"base_currency": "USD"})
    assert r.status_code == 200, r.text
    assert user.get("/api/v1/users/me").json()["base_currency"] == "USD"
    assert _converted_to(user, ids["EUR"], "USD") == {"amount": "11.19", "currency": "USD", "rate": "1.1193000000",
                                                      "rate_date": JAN_2, "source": "ECB"}
    assert _converted_to(user, ids["JPY"], "USD")["amount"] == "9.19"  # 1000 x 1.1193 / 121.75
    usd = _converted_to(user, ids["USD"], "USD")
    assert (usd["amount"], usd["source"], _txn(user, ids["USD"])["fx_status"]) == ("5.00", "identity", "none")

    def audited() -> set[str] | None:
        types = {e["type"] for e in user.get("/api/v1/audit").json()["items"]}
        return types if {"BaseCurrencyChanged", "HistoryReconverted"} <= types else None
    wait_for(audited, timeout=10, what="the change and the re-conversion audited")
    status = user.budget_status(budget["id"], "2020-01")
    assert (status["currency"], status["spent"], status["pending_conversion"]) == ("EUR", "22.68", 0)
    new_budget = user.create_budget("Dining", "50.00")
    assert new_budget["currency"] == "USD", "new budgets are kept in the new base currency"


def test_only_an_owner_changes_a_households_base_currency(stack: Stack) -> None:
    """A member acting in someone else's household may not change its base currency (403); nothing changes."""
    owner, owner_me = register(stack.url)
    member, member_me = register(stack.url)
    household = owner_me["household_id"]
    r = owner.post(f"/api/v1/households/{household}/members", {"email": member_me["email"], "role": "member"})
    assert r.status_code == 201, r.text
    r = member.request("PATCH", "/api/v1/users/me", json={"base_currency": "USD"},
                       headers={"X-Household-ID": household})
    assert r.status_code == 403, r.text
    assert "base_currency" in r.json()["errors"]
    assert owner.get("/api/v1/users/me").json()["base_currency"] == "EUR"


# --- bad input ----------------------------------------------------------------------------------------------------

TOMORROW = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
BAD_QUERIES = [
    pytest.param({"base": "usd", "quote": "EUR"}, "base", "'USD'", id="lowercase base"),
    pytest.param({"base": "EUR", "quote": "jpy"}, "quote", "'JPY'", id="lowercase quote"),
    pytest.param({"base": "XYZ", "quote": "EUR"}, "base", "ISO 4217", id="unknown base"),
    pytest.param({"base": "EUR", "quote": "€€€"}, "quote", "ISO 4217", id="garbage quote"),
    pytest.param({"base": "EURO", "quote": "USD"}, "base", "ISO 4217", id="four letters"),
    pytest.param({"base": "EUR", "quote": "EUR", "date": JAN_2}, "quote", "converts to itself", id="same currency"),
    pytest.param({"base": "EUR", "quote": "USD", "date": "1998-12-31"}, "date", "1999-01-04", id="before 1999"),
    pytest.param({"base": "EUR", "quote": "USD", "date": TOMORROW}, "date", "in the future", id="future"),
    pytest.param({"base": "EUR", "quote": "USD", "date": "2020-13-01"}, "date", "date", id="no such date"),
    pytest.param({"base": "EUR", "quote": "USD", "date": "yesterday"}, "date", "date", id="not a date"),
]


@pytest.mark.parametrize(("params", "field", "says"), BAD_QUERIES)
def test_a_bad_rate_query_is_a_422_naming_the_field(user: ApiClient, params: dict[str, str], field: str,
                                                    says: str) -> None:
    """Unknown or lowercase codes, a date before 1999 or in the future, one currency twice: 422 and why."""
    r = _rate(user, **params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == 422 and field in body["errors"], body
    assert says in " ".join(body["errors"][field]), body


GOOD_RATE = {"base": "USD", "quote": "EUR", "rate": "0.9123", "date": JAN_2}
BAD_MANUAL: list[Any] = [
    *[pytest.param({**GOOD_RATE, **p.values[0]}, p.values[1], p.values[2], id=p.id)
      for p in BAD_QUERIES if p.id not in ("no such date", "not a date")],
    pytest.param({**GOOD_RATE, "rate": "0"}, "rate", "greater than zero", id="rate zero"),
    pytest.param({**GOOD_RATE, "rate": "-0.9"}, "rate", "plain decimal", id="rate negative"),
    pytest.param({**GOOD_RATE, "rate": "abc"}, "rate", "plain decimal", id="rate text"),
    pytest.param({**GOOD_RATE, "rate": "1e3"}, "rate", "plain decimal", id="rate exponent"),
    pytest.param({**GOOD_RATE, "rate": 0.9}, "rate", "decimal string", id="rate a JSON number"),
    pytest.param({**GOOD_RATE, "rate": "0.12345678901"}, "rate", "10 decimal places", id="rate 11 places"),
    pytest.param({**GOOD_RATE, "rate": None}, "rate", "null", id="rate null"),
    pytest.param({k: v for k, v in GOOD_RATE.items() if k != "rate"}, "rate", "required", id="without rate"),
    pytest.param({k: v for k, v in GOOD_RATE.items() if k != "date"}, "date", "required", id="without date"),
    pytest.param({**GOOD_RATE, "date": "2020-02-30"}, "date", "date", id="date that does not exist"),
]


@pytest.mark.parametrize(("body", "field", "says"), BAD_MANUAL)
def test_a_bad_manual_rate_is_a_422_naming_the_field_and_changes_nothing(user: ApiClient, body: dict, field: str,
                                                                         says: str) -> None:
    """The same checks as the query, plus the rate itself: a positive decimal string with at most 10 places."""
    r = user.post(MANUAL, body)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert field in errors and says in " ".join(errors[field]), errors
    assert user.get(MANUAL).json()["items"] == []


def test_a_valid_manual_rate_is_stored_exactly(user: ApiClient) -> None:
    """The counterpart of the refusals: the good body is accepted and kept as an exact decimal."""
    r = user.post(MANUAL, GOOD_RATE)
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["rate"]) == Decimal("0.9123") and r.json()["date"] == JAN_2

"""Unusual transactions: an injected outlier is flagged and ordinary spending is not; a new payee with a large
amount; a duplicate charge, but not a daily habit."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal

from domain.insights.anomalies import Spending, examine, modified_z, new_payee_large, outlier, quantile
from domain.insights.history import Txn

DAY = dt.date(2026, 10, 1)


def groceries(count: int = 40, seed: int = 7) -> list[Txn]:
    """Ordinary supermarket shopping: 20 to 90 EUR every few days."""
    rng = random.Random(seed)
    return [Txn(f"g{i}", DAY - dt.timedelta(days=3 * (count - i)), Decimal(rng.randint(2000, 9000)) / 100,
                "expense", "REWE", "Groceries") for i in range(count)]


def amounts(txns: list[Txn]) -> list[Decimal]:
    """The amounts of some transactions."""
    return [t.amount for t in txns]


def usual(txns: list[Txn]) -> Callable[[], Spending]:
    """The household's usual spending, as the service reads it."""
    return lambda: Spending.of(amounts(txns))


def no_spending() -> Spending:
    """A household without history."""
    return Spending.of([])


def test_an_injected_outlier_is_flagged_with_a_reason() -> None:
    history = groceries()
    spike = Txn("x", DAY, Decimal("480.00"), "expense", "REWE", "Groceries")
    kinds = examine(spike, history, amounts(history), usual(history), "EUR")
    assert [f.kind for f in kinds] == ["outlier"]
    assert "480.00 EUR at REWE is far above the usual" in kinds[0].reason


def test_ordinary_spending_is_not_flagged() -> None:
    history = groceries()
    for i, txn in enumerate(groceries(30, seed=99)):
        ordinary = Txn(f"o{i}", DAY, txn.amount, "expense", "REWE", "Groceries")
        assert examine(ordinary, history, amounts(history), usual(history), "EUR") == [], ordinary


def test_spending_less_than_usual_is_not_an_outlier() -> None:
    history = groceries()
    assert outlier(Txn("s", DAY, Decimal("0.50"), "expense", "REWE", "Groceries"), amounts(history), [], "EUR") is None


def test_identical_subscription_charges_do_not_make_a_small_rise_an_outlier() -> None:
    history = [Decimal("15.99")] * 12
    assert modified_z(Decimal("17.99"), history) < Decimal("3.5")
    assert outlier(Txn("n", DAY, Decimal("17.99"), "expense", "Netflix", "Subscriptions"), history, [], "EUR") is None
    assert outlier(Txn("n", DAY, Decimal("99.00"), "expense", "Netflix", "Subscriptions"), history, [], "EUR")


def test_a_payee_with_little_history_is_judged_by_its_category() -> None:
    category = amounts(groceries())
    big = Txn("b", DAY, Decimal("400.00"), "expense", "Corner shop", "Groceries")
    finding = outlier(big, [Decimal("10.00")], category, "EUR")
    assert finding is not None and "in Groceries" in finding.reason
    assert outlier(Txn("c", DAY, Decimal("45.00"), "expense", "Corner shop", "Groceries"), [], category, "EUR") is None


def test_too_little_history_flags_nothing() -> None:
    assert outlier(Txn("t", DAY, Decimal("999.00"), "expense", "X", "Y"), [Decimal(1)] * 4, [Decimal(1)] * 4,
                   "EUR") is None


def test_a_new_payee_with_a_large_amount_is_flagged_but_not_a_small_one() -> None:
    spending = amounts(groceries())
    large = Txn("l", DAY, Decimal("1500.00"), "expense", "Jeweller", "Shopping")
    finding = new_payee_large(large, False, Spending.of(spending), "EUR")
    assert finding is not None and finding.kind == "new_payee_large" and "first payment to Jeweller" in finding.reason
    assert new_payee_large(large, True, Spending.of(spending), "EUR") is None  # known payee: the outlier rule judges it
    assert new_payee_large(Txn("s", DAY, Decimal("60.00"), "expense", "Bakery", "Food"), False, Spending.of(spending),
                           "EUR") is None


def test_a_duplicate_charge_is_flagged() -> None:
    first = Txn("a", DAY, Decimal("79.90"), "expense", "Zalando", "Shopping")
    again = Txn("b", DAY + dt.timedelta(days=1), Decimal("79.90"), "expense", "ZALANDO SE", "Shopping")
    kinds = examine(again, [first, again], [], no_spending, "EUR")
    assert [f.kind for f in kinds] == ["duplicate_charge"]
    assert "twice within 2 days" in kinds[0].reason
    assert examine(first, [first, again], [], no_spending, "EUR") == []  # only the later one of the pair


def test_of_two_identical_charges_on_one_day_exactly_one_is_flagged() -> None:
    a = Txn("a", DAY, Decimal("20.00"), "expense", "Shop", "Shopping")
    b = Txn("b", DAY, Decimal("20.00"), "expense", "Shop", "Shopping")
    flagged = [t.id for t in (a, b) if examine(t, [a, b], [], no_spending, "EUR")]
    assert flagged == ["b"]


def test_same_amount_further_apart_or_different_amount_is_no_duplicate() -> None:
    first = Txn("a", DAY, Decimal("79.90"), "expense", "Zalando", "Shopping")
    later = Txn("b", DAY + dt.timedelta(days=5), Decimal("79.90"), "expense", "Zalando", "Shopping")
    other = Txn("c", DAY, Decimal("79.95"), "expense", "Zalando", "Shopping")
    assert examine(later, [first, later], [], no_spending, "EUR") == []
    assert examine(other, [first, other], [], no_spending, "EUR") == []


def test_a_daily_habit_at_one_price_is_no_duplicate() -> None:
    coffees = [Txn(f"c{i}", DAY - dt.timedelta(days=i), Decimal("3.20"), "expense", "Cafe", "Food") for i in range(20)]
    today = Txn("t", DAY + dt.timedelta(days=1), Decimal("3.20"), "expense", "Cafe", "Food")
    assert examine(today, [*coffees, today], [t.amount for t in coffees], no_spending, "EUR") == []


def test_income_is_never_examined() -> None:
    bonus = Txn("i", DAY, Decimal("90000.00"), "income", "Employer", "Salary")
    assert examine(bonus, [bonus], [], usual(groceries()), "EUR") == []


def test_quantile_by_nearest_rank() -> None:
    values = [Decimal(v) for v in range(1, 101)]
    assert quantile(values, 95) == Decimal(95) and quantile(values, 50) == Decimal(50)
    assert quantile([Decimal(3)], 95) == Decimal(3)


def test_a_new_payee_large_is_found_through_examine_and_the_spending_is_only_read_for_new_payees() -> None:
    history = groceries()
    asked = []

    def spending() -> Spending:
        asked.append(1)
        return Spending.of(amounts(history))
    big = Txn("j", DAY, Decimal("2500.00"), "expense", "Jeweller", "Groceries")
    # the category would call it an outlier too: one alert, not two
    assert [f.kind for f in examine(big, [big], amounts(history), spending, "EUR")] == ["new_payee_large"]
    assert examine(history[-1], history, amounts(history), spending, "EUR") == [] and len(asked) == 1

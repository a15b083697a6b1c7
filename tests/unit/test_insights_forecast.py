"""The forecast: recurring payments on their dates plus seasonal averages of the rest, with an interval; a known
series lies within it; the backtest scores held-back months."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from domain.insights.forecast import backtest, fit_seasonal, forecast, month_end_balances, monthly_flows
from domain.insights.history import Txn
from domain.periods import add_months, month_of, months_between

START = dt.date(2024, 1, 1)
#: Extra spending in some calendar months (holidays in December, summer trips).
SEASON = {12: Decimal(300), 7: Decimal(150), 8: Decimal(100)}


def rest_of_month(month: dt.date, rng: random.Random | None, noise: int) -> Decimal:
    """The true non-recurring spending of a month: a level, its season and (optionally) noise."""
    wobble = Decimal(rng.randint(-noise, noise)) if rng else Decimal(0)
    return Decimal(500) + SEASON.get(month.month, Decimal(0)) + wobble


def household(months: int, *, noise: int = 0, seed: int = 3) -> list[Txn]:
    """A household's history: salary, rent and a subscription every month, plus four shopping trips that add up
    to the month's rest of spending."""
    rng = random.Random(seed) if noise else None
    txns = []
    for i in range(months):
        month = add_months(START, i)
        txns += [Txn(f"s{i}", month, Decimal("3000.00"), "income", "ACME GmbH", "Salary"),
                 Txn(f"r{i}", month + dt.timedelta(days=2), Decimal("1000.00"), "expense", "Landlord", "Rent"),
                 Txn(f"n{i}", month + dt.timedelta(days=14), Decimal("15.99"), "expense", "Netflix", "Fun")]
        total = rest_of_month(month, rng, noise)
        parts = [total * Decimal(w) / 10 for w in (1, 2, 3, 4)]
        txns += [Txn(f"g{i}-{k}", month + dt.timedelta(days=3 + 7 * k), p, "expense", f"Shop {k}", "Groceries")
                 for k, p in enumerate(parts)]
    return txns


def spent_in(txns: list[Txn], month: dt.date) -> Decimal:
    """Everything spent in a month."""
    return sum((t.amount for t in txns if t.type == "expense" and month_of(t.occurred_on) == month), Decimal(0))


def test_a_steady_household_is_forecast_exactly() -> None:
    history = household(24)
    as_of = dt.date(2025, 12, 31)
    result = forecast(history, as_of, Decimal("5000.00"))
    assert [m.month for m in result.months] == [dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)]
    assert {(r.payee_key, r.cadence) for r in result.recurring} == {("acme", "monthly"), ("landlord", "monthly"),
                                                                    ("netflix", "monthly")}
    january = result.months[0]
    assert january.recurring_spending == Decimal("1015.99") and january.recurring_income == Decimal("3000.00")
    assert january.income.expected == Decimal("3000.00")
    assert january.spending.low <= Decimal("1515.99") <= january.spending.high
    assert abs(january.spending.expected - Decimal("1515.99")) < Decimal(100)  # December's season shrinks out
    assert result.history_months == 24


def test_a_known_noisy_series_lies_within_the_stated_interval() -> None:
    whole = household(27, noise=60)
    as_of = dt.date(2025, 12, 31)
    known = [t for t in whole if t.occurred_on <= as_of]
    result = forecast(known, as_of, Decimal("2000.00"))
    balance = Decimal("2000.00")
    for month in result.months:
        truth = spent_in(whole, month.month)
        assert month.spending.contains(truth), (month.month, truth, month.spending)
        balance += Decimal("3000.00") - truth
        assert month.balance.contains(balance), (month.month, balance, month.balance)
        assert month.spending.low < month.spending.expected < month.spending.high
    assert result.confidence == Decimal("0.90")


def test_the_season_shows_in_the_forecast() -> None:
    history = household(24, noise=20)
    result = forecast(history, dt.date(2025, 5, 31), Decimal(0))
    june, july = result.months[0], result.months[1]
    assert july.spending.expected - june.spending.expected > Decimal(60)


def test_a_cancelled_subscription_is_not_forecast() -> None:
    history = [t for t in household(24) if not (t.payee == "Netflix" and t.occurred_on >= dt.date(2025, 6, 1))]
    result = forecast(history, dt.date(2025, 12, 31), Decimal(0))
    assert "netflix" not in {r.payee_key for r in result.recurring}
    assert result.months[0].recurring_spending == Decimal("1000.00")


def test_the_rest_of_the_current_month_moves_the_starting_balance() -> None:
    history = [t for t in household(24) if t.occurred_on <= dt.date(2025, 12, 10)]
    mid = forecast(history, dt.date(2025, 12, 10), Decimal(0))
    assert mid.months[0].month == dt.date(2026, 1, 1)
    # Netflix on the 15th is still to come in December, plus two thirds of December's other spending
    assert mid.months[0].balance.expected < Decimal(3000) - Decimal("1015.99") - Decimal("15.99")


def test_no_history_forecasts_nothing_but_the_balance() -> None:
    result = forecast([], dt.date(2026, 1, 15), Decimal("100.00"))
    assert [m.balance.expected for m in result.months] == [Decimal("100.00")] * 3
    assert result.months[0].spending.expected == 0


def test_fit_seasonal_without_noise_has_no_spread() -> None:
    months = months_between(dt.date(2024, 1, 1), dt.date(2024, 6, 1))
    model = fit_seasonal([Decimal(100)] * 6, months)
    assert (model.level, model.sigma, model.expected(dt.date(2024, 7, 1))) == (100, 0, 100)


def test_backtest_scores_held_back_months() -> None:
    result = backtest(household(30, noise=60), holdout=6)
    assert result.origins == 6
    assert result.points == 3 + 3 + 3 + 3 + 2 + 1  # the last origins run out of known months
    assert Decimal("0.6") <= result.coverage <= 1
    assert result.mean_abs_pct_error is not None and result.mean_abs_pct_error < 10


def test_month_end_balances_walk_back_from_today() -> None:
    history = [Txn("s", dt.date(2026, 10, 1), Decimal("100.00"), "income"),
               Txn("a", dt.date(2026, 10, 20), Decimal("30.00")), Txn("b", dt.date(2026, 11, 3), Decimal("5.00"))]
    assert month_end_balances(monthly_flows(history), Decimal("500.00"), dt.date(2026, 11, 10), 2) == [
        (dt.date(2026, 9, 30), Decimal("435.00")), (dt.date(2026, 10, 31), Decimal("505.00")),
        (dt.date(2026, 11, 10), Decimal("500.00"))]

"""Recurring payments: cadence from the dates (weekend and month-length jitter forgiven), price levels, the next
date and amount, and a price increase flagged."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from decimal import Decimal

import pytest

from domain.insights.history import Txn
from domain.insights.recurring import FIT_SHARE, cadence_of, detect, find_recurring, may_recur, price_levels
from domain.periods import add_months


def shift_off_weekend(day: dt.date) -> dt.date:
    """A bank books a weekend charge on the Monday."""
    return day + dt.timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)


def charges(payee: str, dates: list[dt.date], amounts: list[str], kind: str = "expense") -> list[Txn]:
    """Transactions of one payee."""
    return [Txn(f"{payee}-{i}", d, Decimal(a), kind, payee, "Subscriptions")
            for i, (d, a) in enumerate(zip(dates, amounts, strict=True))]


def monthly_dates(first: dt.date, count: int) -> list[dt.date]:
    """Monthly dates from `first`, moved off weekends."""
    return [shift_off_weekend(add_months(first, i)) for i in range(count)]


def test_a_monthly_subscription_is_found_with_its_next_date_and_amount() -> None:
    dates = monthly_dates(dt.date(2025, 1, 31), 12)  # the 31st: February and 30-day months move it
    found = detect(charges("NETFLIX.COM 1234*AB", dates, ["15.99"] * 12))
    assert found is not None
    assert (found.cadence, found.payee_key, found.amount, found.charges) == ("monthly", "netflix", Decimal("15.99"), 12)
    assert found.next_date == dt.date(2026, 1, 31)
    assert not found.price_increased and found.previous_amount is None


def test_a_price_increase_is_flagged_with_the_old_and_new_price() -> None:
    dates = monthly_dates(dt.date(2025, 3, 5), 10)
    found = detect(charges("Spotify", dates, ["9.99"] * 7 + ["11.99"] * 3))
    assert found is not None and found.price_increased
    assert (found.previous_amount, found.amount) == (Decimal("9.99"), Decimal("11.99"))


def test_a_single_latest_increase_is_flagged_too() -> None:
    found = detect(charges("Gym", monthly_dates(dt.date(2025, 1, 10), 6), ["30.00"] * 5 + ["35.00"]))
    assert found is not None and found.price_increased and found.amount == Decimal("35.00")


def test_small_wobbles_within_tolerance_are_not_an_increase() -> None:
    found = detect(charges("Power", monthly_dates(dt.date(2025, 1, 10), 6),
                           ["50.00", "51.00", "49.50", "50.50", "50.00", "51.50"]))
    assert found is not None and not found.price_increased


def test_a_price_decrease_is_not_an_increase() -> None:
    found = detect(charges("Phone", monthly_dates(dt.date(2025, 1, 10), 6), ["20.00"] * 4 + ["15.00"] * 2))
    assert found is not None and not found.price_increased and found.previous_amount == Decimal("20.00")


def test_weekly_and_yearly_cadences() -> None:
    weekly = [dt.date(2026, 1, 5) + dt.timedelta(days=7 * i + (1 if i % 3 == 0 else 0)) for i in range(8)]
    found = detect(charges("Veggie box", weekly, ["25.00"] * 8))
    assert found is not None and found.cadence == "weekly"
    assert found.next_date == weekly[-1] + dt.timedelta(days=7)
    yearly = [dt.date(2024, 3, 1), dt.date(2025, 3, 3), dt.date(2026, 3, 2)]
    found = detect(charges("Domain renewal", yearly, ["12.00"] * 3))
    assert found is not None and found.cadence == "yearly" and found.next_date == dt.date(2027, 3, 2)


def test_varying_spending_at_one_shop_is_not_a_subscription() -> None:
    weekly = [dt.date(2026, 1, 3) + dt.timedelta(days=7 * i) for i in range(10)]
    amounts = ["45.10", "82.30", "23.99", "61.00", "38.45", "90.12", "55.00", "12.40", "70.70", "33.33"]
    assert detect(charges("REWE", weekly, amounts)) is None


def test_irregular_dates_are_not_a_cadence() -> None:
    dates = [dt.date(2026, 1, 1), dt.date(2026, 1, 4), dt.date(2026, 2, 20), dt.date(2026, 3, 2), dt.date(2026, 6, 9)]
    assert cadence_of(dates) is None
    assert detect(charges("Cinema", dates, ["12.00"] * 5)) is None


def test_two_charges_are_too_few_for_a_monthly_cadence() -> None:
    assert detect(charges("Once", [dt.date(2026, 1, 5), dt.date(2026, 2, 5)], ["9.00", "9.00"])) is None


def test_one_skipped_month_is_forgiven() -> None:
    dates = monthly_dates(dt.date(2025, 1, 15), 9)
    del dates[4]
    assert cadence_of(dates) == "monthly"


def test_find_recurring_groups_by_normalized_payee_and_type() -> None:
    dates = monthly_dates(dt.date(2025, 6, 1), 6)
    netflix = [Txn(f"n{i}", d, Decimal("15.99"), "expense", name, "Subscriptions")
               for i, (d, name) in enumerate(zip(dates, ["NETFLIX.COM 1*A", "Netflix", "netflix.com 22*B"] * 2,
                                                 strict=True))]
    salary = charges("ACME GmbH", dates, ["3000.00"] * 6, kind="income")
    found = {(r.payee_key, r.type): r for r in find_recurring(netflix + salary)}
    assert set(found) == {("netflix", "expense"), ("acme", "income")}
    assert found[("netflix", "expense")].charges == 6


def test_expected_dates_between_two_days() -> None:
    found = detect(charges("Rent", monthly_dates(dt.date(2025, 1, 1), 6), ["900.00"] * 6))
    assert found is not None
    assert found.dates_between(dt.date(2025, 7, 1), dt.date(2025, 9, 30)) == [
        dt.date(2025, 7, 1), dt.date(2025, 8, 1), dt.date(2025, 9, 1)]
    assert found.active_on(dt.date(2025, 7, 5)) and not found.active_on(dt.date(2025, 10, 1))


def test_price_levels_refuse_two_unstable_segments() -> None:
    assert price_levels([Decimal("10"), Decimal("30"), Decimal("50")]) is None
    assert price_levels([Decimal("10"), Decimal("10"), Decimal("12")]) == (Decimal("12"), Decimal("10"))


@pytest.mark.parametrize("charges", [4, 5, 9, 40, 201])
def test_may_recur_is_the_tightest_count_a_cadence_allows(charges: int) -> None:
    """Given the shortest span in which `charges` can still be weekly (three in four gaps of five days, the rest on
    the same day), detection finds them recurring and may_recur agrees; one day less and may_recur rules them out,
    so a payee it rules out never needs to be read."""
    fitting = math.ceil(FIT_SHARE * (charges - 1))
    gaps = [5] * fitting + [0] * (charges - 1 - fitting)
    dates = list(itertools.accumulate(gaps, lambda day, gap: day + dt.timedelta(days=gap),
                                      initial=dt.date(2025, 1, 6)))
    span = (dates[-1] - dates[0]).days

    assert detect([Txn(str(n), d, Decimal("9.99"), "expense", "Gym") for n, d in enumerate(dates)]) is not None
    assert may_recur(charges, span) and not may_recur(charges, span - 1)

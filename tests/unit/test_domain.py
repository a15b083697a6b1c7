"""Pure domain rules: budget periods and thresholds, categorization, and the event envelope."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from domain.categorize import DEFAULT_CATEGORIES, KEYWORD_RULES, Categorized, categorize
from domain.events import EXCHANGE_OF, EXCHANGES, Event
from domain.periods import (
    DEFAULT_THRESHOLDS,
    crossed,
    next_start,
    parse_label,
    percent,
    period_label,
    period_start,
)

D = dt.date

# --- periods ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "day", "start"),
    [
        ("monthly", D(2026, 11, 17), D(2026, 11, 1)),
        ("monthly", D(2026, 11, 1), D(2026, 11, 1)),
        ("monthly", D(2026, 12, 31), D(2026, 12, 1)),
        ("monthly", D(2028, 2, 29), D(2028, 2, 1)),
        ("yearly", D(2026, 11, 17), D(2026, 1, 1)),
        ("yearly", D(2028, 2, 29), D(2028, 1, 1)),
        ("yearly", D(2026, 12, 31), D(2026, 1, 1)),
        ("weekly", D(2026, 11, 2), D(2026, 11, 2)),  # a Monday starts its own week
        ("weekly", D(2026, 11, 8), D(2026, 11, 2)),  # Sunday belongs to the week that began on Monday
        ("weekly", D(2028, 2, 29), D(2028, 2, 28)),
        ("weekly", D(2027, 1, 1), D(2026, 12, 28)),  # the week straddles the year boundary
        ("weekly", D(2028, 3, 5), D(2028, 2, 28)),  # and the leap month boundary
    ],
)
def test_period_start_is_the_first_day_of_the_period_containing_the_day(period, day, start):
    assert period_start(period, day) == start


def test_period_start_refuses_an_unknown_period():
    with pytest.raises(ValueError, match="daily"):
        period_start("daily", D(2026, 11, 2))


@pytest.mark.parametrize(
    ("period", "start", "label"),
    [
        ("monthly", D(2026, 11, 1), "2026-11"),
        ("monthly", D(2028, 2, 1), "2028-02"),
        ("yearly", D(2026, 1, 1), "2026"),
        ("weekly", D(2026, 11, 16), "2026-W47"),
        ("weekly", D(2026, 12, 28), "2026-W53"),  # ISO year 2026 has 53 weeks
        ("weekly", D(2024, 12, 30), "2025-W01"),  # this Monday is in ISO year 2025
    ],
)
def test_labels_name_periods_and_parse_back_to_their_start(period, start, label):
    assert period_label(period, start) == label
    assert parse_label(period, label) == start


@pytest.mark.parametrize(
    ("period", "label"),
    [
        ("monthly", "2026-13"),
        ("monthly", "2026-00"),
        ("monthly", "2026-1"),
        ("monthly", "2026/11"),
        ("monthly", "26-11"),
        ("monthly", ""),
        ("yearly", "26"),
        ("yearly", "2026-01"),
        ("weekly", "2026-W54"),
        ("weekly", "2027-W53"),  # ISO year 2027 has only 52 weeks
        ("weekly", "2026-W00"),
        ("weekly", "2026-47"),
        ("weekly", "2026W47"),
    ],
)
def test_parse_label_refuses_what_names_no_period(period, label):
    with pytest.raises(ValueError):
        parse_label(period, label)


@pytest.mark.parametrize(
    ("period", "start", "following"),
    [
        ("monthly", D(2026, 11, 1), D(2026, 12, 1)),
        ("monthly", D(2026, 12, 1), D(2027, 1, 1)),  # December -> January of the next year
        ("monthly", D(2028, 1, 1), D(2028, 2, 1)),
        ("monthly", D(2028, 2, 1), D(2028, 3, 1)),  # leap February
        ("monthly", D(2027, 2, 1), D(2027, 3, 1)),
        ("monthly", D(2026, 7, 1), D(2026, 8, 1)),  # two 31-day months in a row
        ("yearly", D(2026, 1, 1), D(2027, 1, 1)),
        ("yearly", D(2028, 1, 1), D(2029, 1, 1)),
        ("weekly", D(2026, 12, 28), D(2027, 1, 4)),
        ("weekly", D(2028, 2, 28), D(2028, 3, 6)),
    ],
)
def test_next_start_is_the_first_day_of_the_following_period(period, start, following):
    assert next_start(period, start) == following
    assert period_start(period, following) == following


@pytest.mark.parametrize(
    ("spent", "limit", "expected"),
    [
        ("0.00", "100.00", set()),
        ("49.99", "100.00", set()),
        ("50.00", "100.00", {50}),  # exactly at the boundary counts as crossed
        ("79.99", "100.00", {50}),
        ("80.00", "100.00", {50, 80}),
        ("100.00", "100.00", {50, 80, 100}),
        ("250.00", "100.00", {50, 80, 100}),
        ("33.33", "66.66", {50}),  # exact decimals: no float rounding just under the line
        ("0.01", "0.02", {50}),
    ],
)
def test_crossed_counts_a_threshold_reached_at_its_exact_boundary(spent, limit, expected):
    assert crossed(Decimal(spent), Decimal(limit), list(DEFAULT_THRESHOLDS)) == expected


def test_crossed_honours_custom_thresholds():
    assert crossed(Decimal("90"), Decimal("100"), [25, 90, 95]) == {25, 90}
    assert crossed(Decimal("90"), Decimal("100"), []) == set()


@pytest.mark.parametrize(
    ("spent", "limit", "expected"),
    [
        ("50.00", "100.00", "50.00"),
        ("1", "3", "33.33"),
        ("2", "3", "66.67"),
        ("125.50", "100", "125.50"),
        ("0", "100", "0.00"),
    ],
)
def test_percent_is_a_decimal_to_two_places(spent, limit, expected):
    result = percent(Decimal(spent), Decimal(limit))
    assert isinstance(result, Decimal)
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -2


# --- categorization ---------------------------------------------------------------------------


def test_the_users_choice_wins_over_rules_and_defaults():
    assert categorize("expense", "Netflix", "subscription", "Gifts") == Categorized("Gifts", "user")
    assert categorize("income", "ACME payroll", "", "Side job") == Categorized("Side job", "user")
    assert categorize("transfer", "Savings", "", "Savings") == Categorized("Savings", "user")


def test_an_empty_choice_is_no_choice():
    assert categorize("expense", "REWE", "", "") == Categorized("Groceries", "rule")


@pytest.mark.parametrize(
    ("payee", "description", "category"),
    [
        ("REWE Markt 123", "", "Groceries"),
        ("LIDL", "", "Groceries"),
        ("Starbucks", "", "Dining"),
        ("Some shop", "coffee with Anna", "Dining"),  # the description counts too
        ("Uber *Trip", "", "Transport"),
        ("City", "bus ticket", "Transport"),
        ("Landlord Ltd", "", "Housing"),
        ("NETFLIX.COM", "", "Entertainment"),
        ("Pharmacy Central", "", "Health"),
        ("Airbnb", "", "Travel"),
        ("Amazon EU", "", "Shopping"),
        ("Starbucks at the supermarket", "", "Groceries"),  # the first rule that matches wins
    ],
)
def test_keywords_choose_the_category_of_an_expense(payee, description, category):
    assert categorize("expense", payee, description, None) == Categorized(category, "rule")


def test_keywords_match_whole_phrases_where_they_must():
    # "bus " must not catch "business".
    assert categorize("expense", "Business lunch", "", None) == Categorized("Uncategorized", "default")


def test_income_and_transfers_get_their_defaults_whatever_the_payee():
    assert categorize("income", "Amazon payroll", "", None) == Categorized("Income", "default")
    assert categorize("transfer", "Uber savings pot", "", None) == Categorized("Transfers", "default")


def test_an_unknown_expense_is_uncategorized():
    assert categorize("expense", "Zyxw Ltd", "misc", None) == Categorized("Uncategorized", "default")
    assert categorize("expense", "", "", None) == Categorized("Uncategorized", "default")


def test_every_category_a_rule_or_default_can_choose_is_a_default_category():
    chosen = {name for name, _ in KEYWORD_RULES} | {"Income", "Transfers", "Uncategorized"}
    assert chosen <= set(DEFAULT_CATEGORIES)
    assert len(DEFAULT_CATEGORIES) == len(set(DEFAULT_CATEGORIES))


# --- events -----------------------------------------------------------------------------------


def _recorded(**overrides) -> Event:
    fields = {"type": "TransactionRecorded", "payload": {"transaction_id": "t1", "amount": "12.30"},
              "household_id": "h1", "user_id": "u1", "correlation_id": "req-1", "causation_id": None}
    return Event(**{**fields, **overrides})


def test_an_envelope_survives_a_round_trip_through_json():
    event = _recorded()
    data = json.loads(json.dumps(event.to_dict()))

    assert Event.from_dict(data) == event
    assert set(data) == {"event_id", "type", "version", "occurred_at", "household_id", "user_id",
                         "correlation_id", "causation_id", "payload"}


def test_a_new_envelope_has_a_uuid_a_version_and_an_aware_timestamp():
    event = _recorded()

    assert str(uuid.UUID(event.event_id)) == event.event_id
    assert event.version == 1
    assert dt.datetime.fromisoformat(event.occurred_at).utcoffset() == dt.timedelta(0)
    assert _recorded().event_id != event.event_id


def test_an_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="TransactionTeleported"):
        _recorded(type="TransactionTeleported")
    data = _recorded().to_dict() | {"type": "TransactionTeleported"}
    with pytest.raises(ValueError, match="TransactionTeleported"):
        Event.from_dict(data)


def test_a_caused_event_keeps_the_correlation_and_names_its_cause():
    cause = _recorded()

    effect = cause.caused("BudgetThresholdCrossed", {"budget_id": "b1", "threshold": 80})

    assert effect.type == "BudgetThresholdCrossed"
    assert effect.payload == {"budget_id": "b1", "threshold": 80}
    assert effect.correlation_id == cause.correlation_id
    assert effect.causation_id == cause.event_id
    assert (effect.household_id, effect.user_id) == (cause.household_id, cause.user_id)
    assert effect.event_id != cause.event_id
    assert effect.exchange == "finance.budgets"


def test_each_event_travels_on_its_familys_exchange():
    assert {"finance.transactions", "finance.budgets", "finance.fx", "finance.users", "finance.accounts",
            "finance.goals"} <= set(EXCHANGES)
    assert len(EXCHANGES) == len(set(EXCHANGES))
    assert set(EXCHANGE_OF.values()) == set(EXCHANGES)
    assert _recorded().exchange == "finance.transactions"
    assert _recorded(type="GoalReached").exchange == "finance.goals"


@pytest.mark.parametrize("label", ["2026-11\n", "２０２６-11", " 2026-11", "2026-11-01"])
def test_a_monthly_label_must_be_plain_ascii_and_whole(label: str) -> None:
    with pytest.raises(ValueError):
        parse_label("monthly", label)


@pytest.mark.parametrize("mode, spent, carried", [
    ("none", ["60", "130"], "0"),
    ("surplus", ["60"], "40"),
    ("surplus", ["60", "130"], "10"),
    ("surplus", ["130", "60"], "40"),
    ("surplus_and_deficit", ["130"], "-30"),
    ("surplus_and_deficit", ["130", "60"], "10"),
])
def test_rollover_carries_by_mode(mode: str, spent: list[str], carried: str) -> None:
    from decimal import Decimal

    from domain.periods import carried_in

    assert carried_in(Decimal("100"), [Decimal(s) for s in spent], mode) == Decimal(carried)


def test_periods_between_covers_month_ends_leap_years_and_weeks() -> None:
    import datetime as dt

    from domain.periods import periods_between

    assert periods_between("monthly", dt.date(2028, 1, 31), dt.date(2028, 4, 1)) == [
        dt.date(2028, 1, 1), dt.date(2028, 2, 1), dt.date(2028, 3, 1)]
    assert periods_between("weekly", dt.date(2028, 2, 29), dt.date(2028, 3, 13)) == [
        dt.date(2028, 2, 28), dt.date(2028, 3, 6)]
    assert periods_between("yearly", dt.date(2027, 12, 31), dt.date(2028, 1, 1)) == [dt.date(2027, 1, 1)]


@pytest.mark.parametrize("zone, expected", [
    ("Pacific/Auckland", "2026-11-01"), ("UTC", "2026-10-31"), ("America/Los_Angeles", "2026-10-31"),
])
def test_the_current_period_is_the_callers_own_date(zone: str, expected: str) -> None:
    import datetime as dt

    from domain.periods import local_today, period_start

    now = dt.datetime(2026, 10, 31, 12, 0, tzinfo=dt.UTC)
    assert local_today(now, zone).isoformat() == expected
    assert period_start("monthly", local_today(now, zone)) == dt.date.fromisoformat(expected).replace(day=1)


@pytest.mark.parametrize("name, known", [("Europe/Berlin", True), ("UTC", True), ("Mars/Olympus", False),
                                         ("../etc/passwd", False), ("", False), ("CET", False)])
def test_only_iana_time_zones_are_accepted(name: str, known: bool) -> None:
    from domain.periods import is_time_zone

    assert is_time_zone(name) is known

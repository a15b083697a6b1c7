"""The pure parts of reports: months, percentages, totals and which days an event makes the pool recompute."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from domain.events import Event
from services.insights_aggregates import EVERYTHING, _spans, month_bounds, spans_for
from services.reports import Totals, month_end, month_start, percent_of


@pytest.mark.parametrize(("day", "months", "expected"), [
    (dt.date(2026, 10, 17), 0, dt.date(2026, 10, 1)),
    (dt.date(2026, 1, 31), -1, dt.date(2025, 12, 1)),
    (dt.date(2026, 12, 1), 1, dt.date(2027, 1, 1)),
    (dt.date(2026, 3, 9), -24, dt.date(2024, 3, 1)),
])
def test_month_start(day: dt.date, months: int, expected: dt.date) -> None:
    assert month_start(day, months) == expected


def test_month_end_and_bounds() -> None:
    assert month_end(dt.date(2024, 2, 10)) == dt.date(2024, 2, 29)
    assert month_end(dt.date(2026, 12, 5)) == dt.date(2026, 12, 31)
    assert month_bounds(dt.date(2026, 2, 14), dt.date(2026, 4, 2)) == (dt.date(2026, 2, 1), dt.date(2026, 4, 30))
    assert month_bounds(*EVERYTHING) == EVERYTHING


def test_percent_is_exact_half_even_and_none_without_a_whole() -> None:
    assert percent_of(Decimal("1"), Decimal("3")) == Decimal("33.33")
    assert percent_of(Decimal("0.125"), Decimal("1")) == Decimal("12.50")
    assert percent_of(Decimal("-50"), Decimal("200")) == Decimal("-25.00")
    assert percent_of(Decimal("5"), Decimal("0")) is None


def test_totals_net_and_savings_rate() -> None:
    totals = Totals()
    totals.add("income", Decimal("3100.00"), 1, 0)
    totals.add("expense", Decimal("2015.55"), 5, 1)
    assert totals.net == Decimal("1084.45")
    assert totals.savings_rate == Decimal("34.98")
    assert (totals.transactions, totals.unconverted) == (6, 1)
    assert Totals().savings_rate is None


def _event(type: str, payload: dict) -> Event:
    return Event(type, payload, "7f9c3c4e-0000-4000-8000-000000000001", None, "test", None)


@pytest.mark.parametrize("type", ["ImportReverted", "HistoryReconverted", "BaseCurrencyChanged"])
def test_events_that_move_history_at_large_recompute_it_all(type: str) -> None:
    [span] = spans_for(_event(type, {}), uow=None)  # type: ignore[arg-type]
    assert (span.first, span.last) == EVERYTHING


def test_a_date_change_from_before_the_previous_day_was_carried_recomputes_everything() -> None:
    [span] = spans_for(_event("TransactionUpdated", {"changed": ["occurred_on"]}), uow=None)  # type: ignore[arg-type]
    assert (span.first, span.last) == EVERYTHING


def test_a_date_change_recomputes_the_day_it_left_and_the_day_it_moved_to() -> None:
    event = _event("TransactionUpdated", {"changed": ["occurred_on"], "occurred_on": "2026-03-04",
                                          "transaction_id": "7f9c3c4e-0000-4000-8000-0000000000aa",
                                          "previous_occurred_on": "2025-11-30"})
    spans = _spans(event, uow=None, days_now={})  # type: ignore[arg-type]
    assert sorted((s.first, s.last) for s in spans) == [(dt.date(2025, 11, 30), dt.date(2025, 11, 30)),
                                                         (dt.date(2026, 3, 4), dt.date(2026, 3, 4))]


def test_events_that_change_no_total_recompute_nothing() -> None:
    assert spans_for(_event("RuleApplied", {"changed": 0}), uow=None) == []  # type: ignore[arg-type]
    assert spans_for(_event("TransactionRejected", {"transaction_id": "x"}), uow=None) == []  # type: ignore[arg-type]
    assert spans_for(_event("BudgetCreated", {}), uow=None) == []  # type: ignore[arg-type]

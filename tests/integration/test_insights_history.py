"""Recurring payments and the forecast read monthly totals from SQL and, one by one, only the transactions of payees
that may recur: against the run's PostgreSQL, the same recurring payments, forecast, month-end flows and count of
unconverted transactions as reading every transaction of the two years."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from config import wiring
from domain.insights.forecast import forecast, forecast_from, monthly_flows
from domain.insights.history import Txn
from domain.insights.recurring import find_recurring
from domain.money import quantize
from models.ledger import Transaction
from services import insights
from services.context import Caller
from services.insights_history import read_history
from services.uow import UnitOfWork
from tests.support.households import add_eur_household

ON = dt.date(2026, 6, 20)
SINCE = dt.date(2024, 5, 1)


def _household(rng: random.Random) -> uuid.UUID:
    """Two years and a half of a EUR household: salary, rent, a subscription whose price went up and a weekly gym
    (recurring); groceries under a new reference every time and coffee most days (too frequent to recur, and many
    ways of writing one payee); refunds from a shop charged daily (its income may recur, its spending not); and
    what must be left out: unconverted, another base currency, pending, deleted, transfers, after the day."""
    home, account = uuid.uuid4(), uuid.uuid4()
    rows: list[dict[str, Any]] = []

    def add(day: dt.date, amount: str, kind: str, payee: str, **extra: Any) -> None:
        rows.append({"occurred_on": day, "amount": Decimal(amount), "type": kind, "payee": payee, **extra})

    day = dt.date(2024, 1, 1)
    while day <= ON + dt.timedelta(days=20):
        if day.day == 1:
            add(day, "3200.00", "income", "ACME GmbH")
            add(day + dt.timedelta(days=2), "950.00", "expense", "Landlord")
            add(day + dt.timedelta(days=14), "17.99" if day >= dt.date(2025, 9, 1) else "15.99", "expense",
                f"NETFLIX.COM {rng.randint(1000, 9999)}")
        if day.weekday() == 0:
            add(day, "29.90", "expense", "FitX Studio")
        amount, reference = f"{rng.randint(5, 90)}.{rng.randint(0, 99):02d}", rng.randint(1, 10**6)
        add(day, amount, "expense", f"REWE SAGT DANKE {reference}")
        for _ in range(rng.randint(0, 2)):
            add(day, "3.20", "expense", rng.choice(["Cafe Luna", "CAFE LUNA", "cafe luna gmbh"]))
        add(day, f"{rng.randint(10, 40)}.00", "expense", "Amazon")
        if day.day == 5:
            add(day, "12.00", "income", "Amazon")
        day += dt.timedelta(days=1)
    add(dt.date(2025, 3, 3), "40.00", "expense", "Shop USD", base_amount=None)
    add(dt.date(2025, 3, 4), "40.00", "expense", "Shop USD", base_currency="USD")
    add(dt.date(2026, 6, 25), "99.00", "expense", "Later", base_amount=None)
    add(dt.date(2025, 2, 2), "500.00", "expense", "Pending", status="pending")
    add(dt.date(2025, 2, 3), "500.00", "expense", "Deleted", deleted_at=dt.datetime(2025, 2, 4, tzinfo=dt.UTC))
    add(dt.date(2025, 2, 5), "500.00", "transfer", "Savings")
    with wiring.session_factory()() as session, session.begin():
        add_eur_household(session, home, account, "history")
        session.add_all(Transaction(**{
            "id": uuid.uuid4(), "household_id": home, "account_id": account, "currency": "EUR", "description": "",
            "status": "recorded", "base_currency": "EUR", "base_amount": r["amount"], "account_amount": r["amount"],
            "fx_status": "none", "correlation_id": "test", **r}) for r in rows)
    return home


def _every_transaction(home: uuid.UUID, uow: UnitOfWork) -> tuple[list[Txn], int]:
    """What the services read before: every live income and expense since SINCE, and how many were unconverted."""
    t = Transaction
    found = uow.session.execute(select(t.id, t.occurred_on, t.base_amount, t.base_currency, t.type, t.payee).where(
        t.household_id == home, t.status == "recorded", t.deleted_at.is_(None), t.type.in_(("expense", "income")),
        t.occurred_on >= SINCE)).all()
    txns = [Txn(str(i), day, quantize(amount, "EUR"), kind, payee, None)
            for i, day, amount, currency, kind, payee in found if amount is not None and currency == "EUR"]
    return txns, len(found) - len(txns)


@pytest.fixture(scope="module")
def home() -> uuid.UUID:
    """The household, built once."""
    return _household(random.Random(7))


def test_what_is_read_gives_what_reading_everything_gave(home: uuid.UUID, uow: UnitOfWork) -> None:
    """Given every kind of payee, the summary gives the same recurring payments, forecast, monthly flows and count of
    unconverted transactions as every transaction did, having read a small part of them one by one."""
    caller = Caller(uuid.uuid4(), home, "EUR", "test")
    with uow:
        history = read_history(caller, SINCE, ON, uow)
        everything, unconverted = _every_transaction(home, uow)
    known = [t for t in everything if t.occurred_on <= ON]

    assert find_recurring(history.summary.txns) == find_recurring(known)
    assert {r.payee_key for r in find_recurring(known)} >= {"acme", "landlord", "netflix", "fitx studio", "amazon"}
    assert forecast_from(history.summary, ON, Decimal("1000.00")) == forecast(everything, ON, Decimal("1000.00"))
    assert history.flows == monthly_flows(everything)
    assert history.unconverted == unconverted == 3
    assert len(history.summary.txns) < len(known) / 5  # groceries, coffee and Amazon's spending: by their totals


def test_the_services_answer_from_it(home: uuid.UUID, uow: UnitOfWork) -> None:
    """The recurring payments and the forecast, as the API asks for them, find the subscriptions (the price increase
    too) and leave groceries and coffee out."""
    caller = Caller(uuid.uuid4(), home, "EUR", "test")
    found = {r.payee_key: r for r in insights.recurring_payments(caller, uow, on=ON).items}
    view = insights.forecast_for(caller, uow, on=ON)

    assert found["netflix"].amount == Decimal("17.99") and found["netflix"].previous_amount == Decimal("15.99")
    assert not {"rewe sagt danke", "cafe luna"} & set(found)
    assert {r.payee_key for r in view.forecast.recurring} >= {"acme", "landlord", "netflix", "fitx studio"}
    assert view.unconverted == 3

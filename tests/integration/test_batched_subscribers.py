"""Budgets, aggregates and anomalies handle a message's events as a batch, against the run's PostgreSQL and Redis:
the same budget entries, running totals, alerts, aggregates and findings as handling the same events one by one
(households built the same way, compared both ways), and a redelivered batch changes nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, update

from config import wiring
from domain.events import Event
from domain.insights.history import Txn
from domain.insights.payees import payee_key
from domain.money import quantize
from domain.periods import period_start
from models.anomalies import Anomaly
from models.budgets import Budget, BudgetAlert, BudgetEntry
from models.insights import NO_CATEGORY, DailyAggregate, MonthlyAggregate
from models.ledger import Category, Transaction
from services import budget_totals, insights
from services.budgets import apply_transaction, apply_transactions
from services.insights import detect_anomalies, detect_anomalies_many
from services.insights_aggregates import apply_event, apply_events
from services.uow import UnitOfWork
from tests.support.households import add_eur_household

TODAY = dt.date(2020, 3, 12)
#: Category -> parent.
CATEGORIES = {"Food": None, "Groceries": "Food", "Dining": "Food", "Shopping": None, "Travel": None}
#: Budget name -> (category, amount, currency, period, thresholds, rollover).
BUDGETS = {
    "groceries": ("Groceries", "200", "EUR", "monthly", [50, 80, 100], "none"),
    "food": ("Food", "300", "EUR", "monthly", [80, 100], "surplus"),
    "dining": ("Dining", "40", "EUR", "weekly", [100], "none"),
    "shopping in USD": ("Shopping", "100", "USD", "monthly", [50, 100], "none"),
}
#: The history before the batch: (payee, category, amount), one every three days back from 2020-03-01.
HISTORY = [("REWE", "Groceries", "4{}.00"), ("Cafe Luna", "Dining", "9.{}0"), ("Amazon", "Shopping", "2{}.00"),
           ("Deutsche Bahn", "Travel", "6{}.00")]
#: The transactions the batch records: (payee, category, amount, currency, day of March 2020).
RECORDED = [
    ("REWE", "Groceries", "41.00", "EUR", 5),
    ("REWE", "Groceries", "400.00", "EUR", 6),          # far above the payee's usual
    ("REWE", "Groceries", "41.00", "EUR", 6),           # the same charge again the next day
    ("Cafe Luna", "Dining", "9.50", "EUR", 9),
    ("Cafe Luna", "Dining", "35.00", "EUR", 10),        # the week's dining budget crossed
    ("Juwelier Gold", "Shopping", "2500.00", "EUR", 10),  # a large first payment
    ("Kiosk am Eck", "Groceries", "90.00", "EUR", 11),  # a new payee, far above its category
    ("Amazon", "Shopping", "30.00", "USD", 11),
    ("Amazon", "Shopping", "22.00", "EUR", 10),         # counted in the USD budget at the day's rate
    ("Deutsche Bahn", "Travel", "61.00", "EUR", 12),
    ("Bargeld", None, "50.00", "EUR", 12),
    ("EDEKA", "Groceries", "30.00", "EUR", 12),
]


@dataclass
class Home:
    """One household built from the template, with names for its ids."""

    id: uuid.UUID
    account: uuid.UUID
    categories: dict[str, uuid.UUID]
    budgets: dict[str, uuid.UUID]
    recorded: list[uuid.UUID] = field(default_factory=list)

    def names(self) -> dict[Any, str]:
        """Every id of this household by a name that is the same in its twin."""
        return {self.id: "household", self.account: "account", NO_CATEGORY: "no category",
                **{v: f"category {k}" for k, v in self.categories.items()},
                **{v: f"budget {k}" for k, v in self.budgets.items()},
                **{v: f"recorded {n}" for n, v in enumerate(self.recorded)}}


@pytest.fixture
def totals() -> redis.Redis:
    """The run's Redis."""
    return wiring.redis_client()


def _build(name: str) -> Home:
    """A EUR household with categories, budgets, a year of history and the batch's transactions recorded."""
    home = Home(uuid.uuid4(), uuid.uuid4(), {n: uuid.uuid4() for n in CATEGORIES}, {n: uuid.uuid4() for n in BUDGETS})
    with wiring.session_factory()() as session, session.begin():
        add_eur_household(session, home.id, home.account, name)
        for category, parent in CATEGORIES.items():
            session.add(Category(id=home.categories[category], household_id=home.id, name=category,
                                 parent_id=home.categories[parent] if parent else None))
            session.flush()
        for budget, (category, amount, currency, period, thresholds, rollover) in BUDGETS.items():
            session.add(Budget(id=home.budgets[budget], household_id=home.id, category_id=home.categories[category],
                               amount=Decimal(amount), currency=currency, period=period, thresholds=thresholds,
                               rollover=rollover, created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
        for n in range(48):
            payee, category, amount = HISTORY[n % len(HISTORY)]
            _add(session, home, payee, category, amount.format(n % 5), "EUR", dt.date(2020, 3, 1) - dt.timedelta(3 * n))
        for payee, category, amount, currency, day in RECORDED:
            home.recorded.append(_add(session, home, payee, category, amount, currency, dt.date(2020, 3, day)))
    return home


def _add(session: Any, home: Home, payee: str, category: str | None, amount: str, currency: str,
         day: dt.date) -> uuid.UUID:
    value = Decimal(amount)
    base = value if currency == "EUR" else (value * Decimal("0.9")).quantize(Decimal("0.01"))
    txn = Transaction(id=uuid.uuid4(), household_id=home.id, account_id=home.account, type="expense", amount=value,
                      currency=currency, occurred_on=day, payee=payee, description="", status="recorded",
                      category_id=home.categories[category] if category else None, base_currency="EUR",
                      base_amount=base, account_amount=base, fx_status="none" if currency == "EUR" else "converted",
                      fx_rate=None if currency == "EUR" else Decimal("0.9"), correlation_id=f"req-{payee}")
    session.add(txn)
    return txn.id


def _event(home: Home, type: str, n: int, **extra: Any) -> Event:
    """An event about the batch's `n`th transaction, as the ledger publishes it."""
    with wiring.session_factory()() as session:
        txn = session.get(Transaction, home.recorded[n])
    payload = {"transaction_id": str(txn.id), "type": txn.type, "occurred_on": txn.occurred_on.isoformat(), **extra}
    return Event(type, payload, str(home.id), None, f"req-{txn.payee}", None,
                 origin={"client_address": "198.51.100.7", "user_agent": "test"})


def _prime(home: Home, totals: redis.Redis, uow: UnitOfWork) -> None:
    """Running totals in Redis for every period of February and March (a missing one is left for a read to
    build, so without them the batch would not write any)."""
    with wiring.session_factory()() as session:
        budgets = list(session.scalars(select(Budget).where(Budget.household_id == home.id)))
    days = [dt.date(2020, 2, 1) + dt.timedelta(n) for n in range(60)]
    for budget in budgets:
        for start in sorted({period_start(budget.period, day) for day in days}):
            budget_totals.spent(totals, budget.id, start, uow)


def _state(home: Home, totals: redis.Redis) -> dict[str, Any]:
    """Everything the subscribers wrote for a household, with ids replaced by names its twin shares."""
    names = home.names()
    budget_ids = list(home.budgets.values())

    def named(value: Any) -> Any:
        return names.get(value, value) if isinstance(value, uuid.UUID) else value

    with wiring.session_factory()() as session:
        rows = {
            "entries": session.execute(select(BudgetEntry.budget_id, BudgetEntry.transaction_id,
                                              BudgetEntry.period_start, BudgetEntry.amount)
                                       .where(BudgetEntry.budget_id.in_(budget_ids))).all(),
            "alerts": session.execute(select(BudgetAlert.budget_id, BudgetAlert.period_start, BudgetAlert.threshold)
                                      .where(BudgetAlert.budget_id.in_(budget_ids))).all(),
            "days": [_totals(a, a.day) for a in session.scalars(select(DailyAggregate).where(
                DailyAggregate.household_id == home.id))],
            "months": [_totals(a, a.month) for a in session.scalars(select(MonthlyAggregate).where(
                MonthlyAggregate.household_id == home.id))],
            "anomalies": session.execute(select(Anomaly.transaction_id, Anomaly.kind, Anomaly.reason).where(
                Anomaly.household_id == home.id)).all(),
        }
    state = {key: sorted((tuple(named(v) for v in row) for row in found), key=repr) for key, found in rows.items()}
    running = {}
    for key in totals.scan_iter(match="budget:*"):
        budget_id, _, start = key.decode().removeprefix("budget:").partition(":")
        if uuid.UUID(budget_id) in names:
            running[(names[uuid.UUID(budget_id)], start)] = {
                named(_uuid_or(field.decode())): int(units) for field, units in totals.hgetall(key).items()}
    state["running totals"] = running
    return state


def _uuid_or(text: str) -> Any:
    try:
        return uuid.UUID(text)
    except ValueError:
        return text


def _totals(row: Any, period: dt.date) -> tuple:
    return (period, row.account_id, row.category_id, row.kind, row.currency, row.base_currency, row.transactions,
            row.amount, row.base_amount, row.unconverted, row.account_amount)


def _announced(home: Home, published: list[Event]) -> list[tuple]:
    """What was published about a household, ids named, in a stable order. A threshold crossed by a batch is
    checked once, after all of it: its alert names what the period counts then (one by one, what it counted when
    the threshold was crossed), so only which threshold of which period is compared."""
    names = {str(k): v for k, v in home.names().items()}
    only = {"BudgetThresholdCrossed": {"budget_id", "period", "threshold", "limit", "currency"}}
    return sorted(((e.type, e.causation_id is not None, e.origin,
                    tuple(sorted((k, names.get(str(v), v)) for k, v in e.payload.items()
                                 if k in only.get(e.type, e.payload))))
                   for e in published if e.household_id == str(home.id)), key=repr)


def _as_batch(events: list[Event], uow: UnitOfWork, totals: redis.Redis) -> None:
    """What each pool does with a message carrying these events."""
    apply_transactions([(uuid.UUID(e.payload["transaction_id"]), e) for e in events], uow, totals)
    with uow:
        apply_events(events, uow)
        uow.commit()
    detect_anomalies_many([(uuid.UUID(e.payload["transaction_id"]), e) for e in events
                           if e.type == "TransactionRecorded"], uow)


def _one_by_one(events: list[Event], uow: UnitOfWork, totals: redis.Redis) -> None:
    """What each pool did with these events, one message each."""
    for event in events:
        apply_transaction(uuid.UUID(event.payload["transaction_id"]), event, uow, totals)
        apply_event(event, uow)
        if event.type == "TransactionRecorded":
            detect_anomalies(uuid.UUID(event.payload["transaction_id"]), event, uow)


def _change(home: Home) -> list[Event]:
    """Change some of the batch's transactions as users do; the events that announce it (one twice)."""
    moved, deleted, dearer, recategorized = (home.recorded[n] for n in (8, 4, 0, 3))
    with wiring.session_factory()() as session, session.begin():
        session.execute(update(Transaction).where(Transaction.id == moved).values(occurred_on=dt.date(2020, 2, 20)))
        session.execute(update(Transaction).where(Transaction.id == deleted).values(
            deleted_at=dt.datetime(2020, 3, 12, tzinfo=dt.UTC)))
        session.execute(update(Transaction).where(Transaction.id == dearer).values(
            amount=Decimal("141.00"), base_amount=Decimal("141.00"), account_amount=Decimal("141.00")))
        session.execute(update(Transaction).where(Transaction.id == recategorized).values(
            category_id=home.categories["Groceries"]))
    return [_event(home, "TransactionUpdated", 8, changed=["occurred_on"]),
            _event(home, "TransactionDeleted", 4),
            _event(home, "TransactionUpdated", 0, changed=["amount"]),
            _event(home, "TransactionUpdated", 3, changed=["category"]),
            _event(home, "CurrencyConverted", 7),
            _event(home, "TransactionUpdated", 0, changed=["amount"])]


def _interleaved(*lists: list[Event]) -> list[Event]:
    return [e for group in zip(*lists, strict=True) for e in group]


def test_a_batch_gives_what_one_by_one_gives_and_a_redelivered_batch_changes_nothing(uow, published, totals):
    """Given four households built alike, two handled as batches (their events in one message) and two one event
    at a time: after recording, then changing, their budgets, running totals, alerts, aggregates and findings are
    the same, as is what was announced; the same batch again changes and announces nothing."""
    batched, single = [_build(f"batched {n}") for n in range(2)], [_build(f"single {n}") for n in range(2)]
    for home in batched + single:
        _prime(home, totals, uow)
    recorded = {home.id: [_event(home, "TransactionRecorded", n) for n in range(len(RECORDED))]
                for home in batched + single}
    _compare(batched, single, recorded, uow, published, totals)
    first = _state(batched[0], totals)
    assert {kind for _, kind, _ in first["anomalies"]} == {"outlier", "duplicate_charge", "new_payee_large"}
    assert len(first["anomalies"]) == 5
    assert ("budget dining", dt.date(2020, 3, 9), 100) in first["alerts"]
    assert any(name == "budget shopping in USD" for name, *_ in first["entries"])

    _compare(batched, single, {home.id: _change(home) for home in batched + single}, uow, published, totals)
    assert _state(batched[0], totals) != first
    assert ("budget dining", dt.date(2020, 3, 9), 100) not in _state(batched[0], totals)["alerts"]


def _compare(batched: list[Home], single: list[Home], events: dict[uuid.UUID, list[Event]], uow: UnitOfWork,
             published: list[Event], totals: redis.Redis) -> None:
    """Handle the households' events as one batch and one by one: the twins agree; the batch again does nothing."""
    batch = _interleaved(*(events[home.id] for home in batched))
    _as_batch(batch, uow, totals)
    for home in single:
        _one_by_one(events[home.id], uow, totals)
    for twin, home in zip(batched, single, strict=True):
        assert _state(twin, totals) == _state(home, totals)
        assert _announced(twin, published) == _announced(home, published)
    before, announced = [_state(home, totals) for home in batched], len(published)
    _as_batch(batch, uow, totals)
    assert [_state(home, totals) for home in batched] == before
    assert len(published) == announced


def test_the_anomalies_pool_examines_a_message_as_one_batch_and_falls_back_to_one_by_one(uow, published, monkeypatch):
    """Given one message with two households' recorded expenses, the pool examines them in one go; when that
    fails, it examines them one by one and finds the same."""
    from actors import insights_anomalies

    monkeypatch.setattr(wiring, "uow", lambda: uow)
    homes = [_build(f"pool {n}") for n in range(3)]
    message = {home.id: [_event(home, "TransactionRecorded", n).to_dict() for n in range(len(RECORDED))]
               for home in homes}
    insights_anomalies.detect_on_event.fn([e for h in homes[:2] for e in message[h.id]])

    def broken(items: list, uow: UnitOfWork) -> int:
        raise RuntimeError("batch failed")

    monkeypatch.setattr(insights_anomalies, "detect_anomalies_many", broken)
    insights_anomalies.detect_on_event.fn(message[homes[2].id])
    found = [_state(home, wiring.redis_client())["anomalies"] for home in homes]
    assert found[0] == found[1] == found[2] and len(found[0]) == 5
    assert _announced(homes[0], published) == _announced(homes[2], published)


def _payee_history_alone(txn: Transaction, session: Any) -> list[Txn]:
    """The payee's charges around one transaction as its own query read them (ties on a day broken by id)."""
    key, written = payee_key(txn.payee), txn.payee.lower()
    words = sorted((w for w in key.split() if len(w) >= insights.MIN_SEARCH_WORD and w in written), key=len,
                   reverse=True)
    matches = (func.lower(Transaction.payee + " " + Transaction.description).like(f"%{words[0]}%") if words
               else func.lower(Transaction.payee) == written)
    rows = session.execute(select(Transaction.id, Transaction.occurred_on, Transaction.amount, Transaction.type,
                                  Transaction.payee).where(
        Transaction.household_id == txn.household_id, Transaction.status == "recorded",
        Transaction.deleted_at.is_(None), matches, Transaction.currency == txn.currency, Transaction.type == txn.type,
        Transaction.occurred_on.between(txn.occurred_on - dt.timedelta(days=insights.LOOKBACK_DAYS),
                                        txn.occurred_on + dt.timedelta(days=2)),
    ).order_by(Transaction.occurred_on.desc(), Transaction.id.desc()).limit(insights.HISTORY_LIMIT))
    return [Txn(str(i), day, quantize(amount, txn.currency), kind, payee) for i, day, amount, kind, payee in rows
            if payee_key(payee) == key]


def _category_history_alone(txn: Transaction, session: Any) -> list[Decimal]:
    """The category's earlier spending before one transaction as its own query read it (ties broken by id)."""
    if txn.category_id is None:
        return []
    return list(session.scalars(select(Transaction.amount).where(
        Transaction.household_id == txn.household_id, Transaction.status == "recorded",
        Transaction.deleted_at.is_(None), Transaction.category_id == txn.category_id,
        Transaction.currency == txn.currency, Transaction.type == "expense", Transaction.id != txn.id,
        Transaction.occurred_on.between(txn.occurred_on - dt.timedelta(days=insights.LOOKBACK_DAYS), txn.occurred_on),
    ).order_by(Transaction.occurred_on.desc(), Transaction.id.desc()).limit(insights.HISTORY_LIMIT)))


@pytest.mark.parametrize("limit", [1, 2, 5, insights.HISTORY_LIMIT])
def test_histories_read_for_a_batch_are_what_each_transaction_read_alone(uow, monkeypatch, limit):
    """Given every expense of a household examined at once (many on the same day), each one's payee and category
    history is what its own query returns: the same first `limit` charges, itself and later days left out."""
    monkeypatch.setattr(insights, "HISTORY_LIMIT", limit)
    home = _build("histories")
    with uow:
        txns = list(uow.session.scalars(select(Transaction).where(Transaction.household_id == home.id)))
        payees, categories = insights._payee_histories(txns, uow), insights._category_histories(txns, uow)
        assert payees == {txn.id: _payee_history_alone(txn, uow.session) for txn in txns}
        assert categories == {txn.id: _category_history_alone(txn, uow.session) for txn in txns}
    assert limit == insights.HISTORY_LIMIT or any(len(history) == limit for history in categories.values())

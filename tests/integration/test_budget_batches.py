"""The budgets pool's batch path against the run's PostgreSQL and Redis: a batch takes the same few statements
however many households it spans, a transaction counts in the budgets of its category and of those above it, and
the running totals are kept whether or not Redis already holds their script."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
from sqlalchemy import event, select

from config import wiring
from domain.events import Event
from models.budgets import Budget, BudgetEntry
from models.ledger import Category, Transaction
from services import budget_totals
from services.budgets import apply_transactions
from services.uow import UnitOfWork
from tests.support.households import add_eur_household

DAY = dt.date(2020, 3, 12)


def _household(tree: dict[str, str | None], budgets: list[str], amount: str = "100000") -> tuple[uuid.UUID, dict]:
    """A household with categories (name -> parent) and a monthly budget on each named category; its ids by name."""
    household, account = uuid.uuid4(), uuid.uuid4()
    ids = {name: uuid.uuid4() for name in tree}
    with wiring.session_factory()() as session, session.begin():
        add_eur_household(session, household, account, "batch")
        session.add_all(Category(id=ids[name], household_id=household, name=name) for name in tree)
        session.flush()
        for name, parent in tree.items():
            session.get(Category, ids[name]).parent_id = ids[parent] if parent else None
        for name in budgets:
            ids[f"budget {name}"] = uuid.uuid4()
            session.add(Budget(id=ids[f"budget {name}"], household_id=household, category_id=ids[name],
                               amount=Decimal(amount), currency="EUR", period="monthly", thresholds=[50, 100],
                               rollover="none", created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    ids["account"] = account
    return household, ids


def _expense(household: uuid.UUID, ids: dict, category: str, amount: str = "12.50") -> uuid.UUID:
    """A recorded expense in one of the household's categories."""
    txn = Transaction(id=uuid.uuid4(), household_id=household, account_id=ids["account"], type="expense",
                      amount=Decimal(amount), currency="EUR", occurred_on=DAY, payee="Shop", description="",
                      status="recorded", category_id=ids[category], base_currency="EUR", base_amount=Decimal(amount),
                      account_amount=Decimal(amount), fx_status="none", correlation_id="req-batch")
    with wiring.session_factory()() as session, session.begin():
        session.add(txn)
    return txn.id


def _recorded(transaction_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, Event]]:
    return [(t, Event("TransactionRecorded", {"transaction_id": str(t)}, None, None, "req-batch", None))
            for t in transaction_ids]


def _counted_in(budget_id: uuid.UUID) -> set[uuid.UUID]:
    with wiring.session_factory()() as session:
        return set(session.scalars(select(BudgetEntry.transaction_id).where(BudgetEntry.budget_id == budget_id)))


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL statements this process sends while the test runs."""
    sent: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        sent.append(statement)

    event.listen(wiring.engine(), "before_cursor_execute", note)
    yield sent
    event.remove(wiring.engine(), "before_cursor_execute", note)


def test_a_batch_takes_the_same_statements_for_one_household_as_for_many(uow: UnitOfWork, statements: list[str]):
    """Given households with a budget each, counting one household's expenses and counting six households' takes the
    same statements (plans, read, lock, write, check): none per household."""
    homes = [_household({"Groceries": None, "Dining": None}, ["Groceries"]) for _ in range(7)]
    alone = [_expense(*homes[0], "Groceries"), _expense(*homes[0], "Dining")]
    together = [_expense(*home, category) for home in homes[1:] for category in ("Groceries", "Dining")]

    statements.clear()
    apply_transactions(_recorded(alone), uow, wiring.redis_client())
    for_one, statements[:] = list(statements), []
    apply_transactions(_recorded(together), uow, wiring.redis_client())

    assert len(statements) == len(for_one) <= 5
    assert _counted_in(homes[0][1]["budget Groceries"]) == {alone[0]}
    assert all(len(_counted_in(ids["budget Groceries"])) == 1 for _, ids in homes[1:])


def test_an_expense_counts_in_the_budget_of_its_category_and_of_each_above_it(uow: UnitOfWork):
    """Given Food > Groceries > Organic, Dining under Food, and two categories that name each other as parent, with a
    budget on each: an organic expense counts in Organic, Groceries and Food, not in Dining; a Food expense only in
    Food; one in a category of the loop counts in both of the loop's budgets."""
    tree = {"Food": None, "Groceries": "Food", "Organic": "Groceries", "Dining": "Food", "Loop A": "Loop B",
            "Loop B": "Loop A"}
    household, ids = _household(tree, list(tree))
    organic, food, loop = (_expense(household, ids, c) for c in ("Organic", "Food", "Loop A"))

    apply_transactions(_recorded([organic, food, loop]), uow)

    counted = {name: _counted_in(ids[f"budget {name}"]) for name in tree}
    assert counted == {"Food": {organic, food}, "Groceries": {organic}, "Organic": {organic}, "Dining": set(),
                       "Loop A": {loop}, "Loop B": {loop}}


def test_running_totals_move_when_redis_does_not_hold_the_script_yet(monkeypatch: pytest.MonkeyPatch):
    """Given a running total, when Redis does not know the script by its hash (restarted, or a new script), the
    update sends the script itself and moves the total once; sent again it changes nothing."""
    live: redis.Redis = wiring.redis_client()
    budget, start, txn = Budget(id=uuid.uuid4(), currency="EUR"), dt.date(2020, 3, 1), uuid.uuid4()
    live.hset(budget_totals.key(budget.id, start), mapping={budget_totals.TOTAL: 1000})
    monkeypatch.setattr(budget_totals, "_SET_ENTRY_SHA", hashlib.sha1(uuid.uuid4().bytes).hexdigest())

    for _ in range(2):
        budget_totals.record_many(live, [(budget, start, txn, Decimal("12.50"))])

    assert int(live.hget(budget_totals.key(budget.id, start), budget_totals.TOTAL)) == 1000 + 1250
    live.delete(budget_totals.key(budget.id, start))

"""Budgets: creating them, counting recorded spending against them, and alerting on thresholds once."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import redis
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from domain.money import format_amount
from domain.periods import carried_in, crossed, next_start, percent, period_label, period_start, periods_between
from models.budgets import Budget, BudgetAlert, BudgetEntry
from models.ledger import Category, Transaction
from services import budget_totals
from services.accounts import find_category
from services.context import Caller
from services.errors import Invalid, NotFound
from services.fx import amount_in
from services.uow import UnitOfWork


def create_budget(caller: Caller, category: str, amount: Decimal, currency: str, period: str,
                  thresholds: list[int], rollover: str, uow: UnitOfWork) -> Budget:
    """Create a budget for one of the household's categories."""
    if currency != caller.base_currency:
        raise Invalid(f"budgets are kept in your base currency ({caller.base_currency}) for now", field="currency")
    with uow:
        found = find_category(caller.household_id, category, uow)
        if found is None:
            raise Invalid("no such category", field="category")
        budget = Budget(id=uuid.uuid4(), household_id=caller.household_id, category_id=found.id, amount=amount,
                        currency=currency, period=period, thresholds=sorted(set(thresholds)), rollover=rollover)
        uow.session.add(budget)
        uow.emit(Event("BudgetCreated", {"budget_id": str(budget.id), "category": found.name,
                                         "amount": format_amount(amount, currency), "currency": currency,
                                         "period": period}, str(caller.household_id), str(caller.user_id),
                       caller.correlation_id, None))
        uow.commit()
        return budget


def get_budget(caller: Caller, budget_id: uuid.UUID, uow: UnitOfWork) -> tuple[Budget, str]:
    """One of the caller's budgets with its category name; NotFound for any other id."""
    with uow:
        row = uow.session.execute(select(Budget, Category.name).join(Category).where(
            Budget.id == budget_id, Budget.household_id == caller.household_id)).first()
        if row is None:
            raise NotFound("no such budget")
        return row[0], row[1]


def list_budgets(caller: Caller, uow: UnitOfWork) -> list[tuple[Budget, str]]:
    """The caller's budgets with their category names."""
    with uow:
        return [(b, name) for b, name in uow.session.execute(select(Budget, Category.name).join(Category).where(
            Budget.household_id == caller.household_id).order_by(Budget.created_at))]


def apply_transaction(transaction_id: uuid.UUID, cause: Event, uow: UnitOfWork,
                      totals: redis.Redis | None = None) -> None:
    """Count a transaction's current state in every budget it belongs to (SQL, and the running totals in
    Redis); re-check the thresholds of the periods it entered or left. Safe to run twice, in any order."""
    apply_transactions([(transaction_id, cause)], uow, totals)


def apply_transactions(changed: list[tuple[uuid.UUID, Event]], uow: UnitOfWork,
                       totals: redis.Redis | None = None) -> None:
    """`apply_transaction` for many (transaction, cause) pairs in one go: each household's budgets locked once, and
    each period they touched checked against its thresholds once, caused by the last event that touched it."""
    with uow:
        found = {t.id: t for t in uow.session.scalars(select(Transaction).where(
            Transaction.id.in_({transaction_id for transaction_id, _ in changed})))}
        by_household: dict[uuid.UUID, list[tuple[Transaction, Event]]] = {}
        for transaction_id, cause in changed:
            if (txn := found.get(transaction_id)) is not None:
                by_household.setdefault(txn.household_id, []).append((txn, cause))
        for household_id in sorted(by_household):  # the same lock order in every process
            _apply_in_household(household_id, by_household[household_id], uow, totals)
        uow.commit()


def _apply_in_household(household_id: uuid.UUID, changed: list[tuple[Transaction, Event]], uow: UnitOfWork,
                        totals: redis.Redis | None) -> None:
    lineage_of = _lineages(household_id, uow)
    budgets = _budgets_locked(household_id, uow)
    touched: dict[tuple[uuid.UUID, dt.date], tuple[Budget, Event]] = {}
    for txn, cause in changed:
        lineage = (lineage_of.get(txn.category_id) or {txn.category_id}) if txn.category_id else set()
        for budget in budgets:
            for start, amount in _count(budget, txn, lineage, uow).items():
                if totals is not None:
                    budget_totals.record(totals, budget, start, txn.id, amount)
                touched[(budget.id, start)] = (budget, cause)
    for (_, start), (budget, cause) in sorted(touched.items(), key=lambda item: item[0]):
        _alert(budget, start, cause, uow)


def _budgets_locked(household_id: uuid.UUID, uow: UnitOfWork) -> list[Budget]:
    """Budgets of a household, locked in a fixed order so concurrent updates serialize without deadlock."""
    return list(uow.session.scalars(select(Budget).where(Budget.household_id == household_id)
                                    .order_by(Budget.id).with_for_update()))


def _counts(budget: Budget, txn: Transaction, lineage: set[uuid.UUID]) -> bool:
    return (txn.status == "recorded" and txn.deleted_at is None and txn.type == "expense"
            and budget.category_id in lineage)


def _count(budget: Budget, txn: Transaction, lineage: set[uuid.UUID],
           uow: UnitOfWork) -> dict[dt.date, Decimal | None]:
    """Bring the budget's entry for this transaction up to date; the periods it touched, each with the amount
    it now counts there (None: no longer counted)."""
    before = uow.session.scalar(select(BudgetEntry.period_start).where(
        BudgetEntry.budget_id == budget.id, BudgetEntry.transaction_id == txn.id))
    touched: dict[dt.date, Decimal | None] = {before: None} if before else {}
    # A budget kept in another currency than the base (the base changed since) counts at the transaction's rate.
    amount = amount_in(txn, budget.currency, uow.session) if _counts(budget, txn, lineage) else None
    if amount is None:
        if before:
            uow.session.execute(delete(BudgetEntry).where(BudgetEntry.budget_id == budget.id,
                                                          BudgetEntry.transaction_id == txn.id))
        return touched
    start = period_start(budget.period, txn.occurred_on)
    entry = dict(budget_id=budget.id, transaction_id=txn.id, period_start=start, amount=amount)
    uow.session.execute(insert(BudgetEntry).values(**entry).on_conflict_do_update(
        index_elements=["budget_id", "transaction_id"],
        set_={"amount": entry["amount"], "period_start": entry["period_start"]}))
    return {**touched, start: amount}


def spent(budget_id: uuid.UUID, start: dt.date, uow: UnitOfWork) -> Decimal:
    """The exact SQL sum counted in a budget period."""
    total = uow.session.scalar(select(func.coalesce(func.sum(BudgetEntry.amount), 0)).where(
        BudgetEntry.budget_id == budget_id, BudgetEntry.period_start == start))
    return Decimal(total)


def limit_for(budget: Budget, start: dt.date, uow: UnitOfWork) -> tuple[Decimal, Decimal]:
    """The budget's limit in a period and what rollover carried into it from the periods before."""
    if budget.rollover == "none":
        return budget.amount, Decimal(0)
    sums = dict(uow.session.execute(select(BudgetEntry.period_start, func.sum(BudgetEntry.amount)).where(
        BudgetEntry.budget_id == budget.id, BudgetEntry.period_start < start).group_by(BudgetEntry.period_start)
    ).tuples().all())
    first = min([budget.created_at.date(), *sums]) if sums else budget.created_at.date()
    before = [Decimal(sums.get(p, 0)) for p in periods_between(budget.period, first, start)]
    carry = carried_in(budget.amount, before, budget.rollover)
    return budget.amount + carry, carry


def _alert(budget: Budget, start: dt.date, cause: Event, uow: UnitOfWork) -> None:
    total = spent(budget.id, start, uow)
    limit, _ = limit_for(budget, start, uow)
    reached = crossed(total, limit, budget.thresholds) if limit > 0 else set(budget.thresholds) if total > 0 else set()
    alerted = set(uow.session.scalars(select(BudgetAlert.threshold).where(
        BudgetAlert.budget_id == budget.id, BudgetAlert.period_start == start)))
    for threshold in sorted(reached - alerted):
        event = cause.caused("BudgetThresholdCrossed", _crossing(budget, start, threshold, total, limit))
        uow.session.add(BudgetAlert(budget_id=budget.id, period_start=start, threshold=threshold,
                                    event_id=uuid.UUID(event.event_id)))
        uow.emit(event)
    if alerted - reached:
        # Spending fell back under these thresholds: crossing them again alerts again.
        uow.session.execute(delete(BudgetAlert).where(
            BudgetAlert.budget_id == budget.id, BudgetAlert.period_start == start,
            BudgetAlert.threshold.in_(alerted - reached)))


def _crossing(budget: Budget, start: dt.date, threshold: int, total: Decimal, limit: Decimal) -> dict[str, str | int]:
    return {"budget_id": str(budget.id), "period": period_label(budget.period, start), "threshold": threshold,
            "spent": format_amount(total, budget.currency), "limit": format_amount(limit, budget.currency),
            "currency": budget.currency, "percent": str(percent(total, limit)) if limit > 0 else "100.00"}


@dataclass(frozen=True)
class BudgetStatus:
    """Where a budget stands in one period."""

    budget_id: uuid.UUID
    category: str
    period: str
    spent: Decimal
    limit: Decimal
    currency: str
    thresholds_crossed: list[int]
    pending_conversion: int
    carried_in: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        """What is left to spend (negative when over)."""
        return self.limit - self.spent

    @property
    def percent(self) -> Decimal:
        """Spent as a percentage of the limit (of this period, rollover included)."""
        return percent(self.spent, self.limit) if self.limit > 0 else Decimal("100.00")


def status(caller: Caller, budget_id: uuid.UUID, on: dt.date, uow: UnitOfWork,
           totals: redis.Redis | None = None) -> BudgetStatus:
    """The budget's spent (the running total), remaining, rollover and crossed thresholds in the period
    containing `on`."""
    budget, category = get_budget(caller, budget_id, uow)
    start = period_start(budget.period, on)
    used = budget_totals.spent(totals, budget.id, start, uow) if totals is not None else None
    with uow:
        alerted = sorted(uow.session.scalars(select(BudgetAlert.threshold).where(
            BudgetAlert.budget_id == budget.id, BudgetAlert.period_start == start)))
        limit, carry = limit_for(budget, start, uow)
        used = spent(budget.id, start, uow) if used is None else used
        return BudgetStatus(budget.id, category, period_label(budget.period, start), used, limit, budget.currency,
                            alerted, _pending(budget, start, uow), carry)


def _pending(budget: Budget, start: dt.date, uow: UnitOfWork) -> int:
    """Expenses of this category and period still waiting for a rate (left out of `spent`, never guessed)."""
    counted = select(BudgetEntry.transaction_id).where(BudgetEntry.budget_id == budget.id,
                                                       BudgetEntry.transaction_id == Transaction.id)
    return uow.session.scalar(select(func.count()).select_from(Transaction).where(
        Transaction.household_id == budget.household_id, Transaction.category_id == budget.category_id,
        Transaction.type == "expense", Transaction.deleted_at.is_(None),
        Transaction.fx_status.in_(("pending", "missing")) | (Transaction.currency != budget.currency),
        ~counted.exists(), Transaction.status == "recorded",
        Transaction.occurred_on >= start, Transaction.occurred_on < next_start(budget.period, start))) or 0


def rebuild(household_id: uuid.UUID, cause: Event, uow: UnitOfWork, totals: redis.Redis | None = None) -> int:
    """Recompute every budget entry of a household from its transactions in SQL (after a merge, a rule
    applied over history, or to reconcile), then re-check thresholds; returns the entries counted."""
    with uow:
        lineage_of = _lineages(household_id, uow)
        budgets = _budgets_locked(household_id, uow)
        ids = [b.id for b in budgets]
        old = set(uow.session.execute(select(BudgetEntry.budget_id, BudgetEntry.period_start).where(
            BudgetEntry.budget_id.in_(ids))).all())
        uow.session.execute(delete(BudgetEntry).where(BudgetEntry.budget_id.in_(ids)))
        rows = _entries(household_id, budgets, lineage_of, uow)
        if rows:
            uow.session.execute(insert(BudgetEntry), rows)
        _refresh(budgets, old | {(r["budget_id"], r["period_start"]) for r in rows}, cause, uow, totals)
        uow.commit()
        return len(rows)


def apply_import(import_id: uuid.UUID, household_id: uuid.UUID, cause: Event, uow: UnitOfWork,
                 totals: redis.Redis | None = None) -> int:
    """Count every transaction an import added in the budgets it belongs to, then refresh the running totals
    and re-check the thresholds of the periods they entered; returns the entries written. Only the import's
    own rows are read (they are new: nothing else changed). Safe to run twice: entries are upserted."""
    with uow:
        budgets = _budgets_locked(household_id, uow)
        rows = _entries(household_id, budgets, _lineages(household_id, uow), uow,
                        Transaction.import_id == import_id) if budgets else []
        if rows:
            upsert = insert(BudgetEntry)
            uow.session.execute(upsert.on_conflict_do_update(
                index_elements=["budget_id", "transaction_id"],
                set_={"amount": upsert.excluded.amount, "period_start": upsert.excluded.period_start}), rows)
        _refresh(budgets, {(r["budget_id"], r["period_start"]) for r in rows}, cause, uow, totals)
        uow.commit()
        return len(rows)


def _refresh(budgets: list[Budget], periods: set[tuple[uuid.UUID, dt.date]], cause: Event, uow: UnitOfWork,
             totals: redis.Redis | None) -> None:
    """Rebuild the running total and re-check the thresholds of each (budget, period start) in `periods`."""
    for budget in budgets:
        for start in {s for b, s in periods if b == budget.id}:
            if totals is not None:
                budget_totals.rebuild(totals, budget, start, uow)
            _alert(budget, start, cause, uow)


def _lineages(household_id: uuid.UUID, uow: UnitOfWork) -> dict[uuid.UUID, set[uuid.UUID]]:
    parents = dict(uow.session.execute(select(Category.id, Category.parent_id).where(
        Category.household_id == household_id)).all())
    lineages = {}
    for start in parents:
        found, node = set(), start
        while node is not None and node not in found:
            found.add(node)
            node = parents.get(node)
        lineages[start] = found
    return lineages


def _entries(household_id: uuid.UUID, budgets: list[Budget], lineage_of: dict[uuid.UUID, set[uuid.UUID]],
             uow: UnitOfWork, *only: ColumnElement[bool]) -> list[dict]:
    """The budget entries of the household's transactions (`only` those that match every extra condition)."""
    txns = uow.session.execute(select(
        Transaction.id, Transaction.household_id, Transaction.category_id, Transaction.occurred_on,
        Transaction.amount, Transaction.currency, Transaction.base_amount, Transaction.base_currency,
        Transaction.fx_rate).where(
        Transaction.household_id == household_id, Transaction.status == "recorded", Transaction.type == "expense",
        Transaction.deleted_at.is_(None), *only)).all()
    rates: dict = {}
    counted = ((t, b, amount_in(t, b.currency, uow.session, rates)) for t in txns for b in budgets
               if b.category_id in lineage_of.get(t.category_id, set()))
    return [dict(budget_id=b.id, transaction_id=t.id, period_start=period_start(b.period, t.occurred_on),
                 amount=amount) for t, b, amount in counted if amount is not None]

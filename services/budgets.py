"""Budgets: creating them, counting recorded spending against them, and alerting on thresholds once."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import redis
from sqlalchemy import ColumnElement, delete, func, select, text, tuple_
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


#: A (budget, transaction) pair: the key of a budget entry.
_Pair = tuple[uuid.UUID, uuid.UUID]
#: A budget entry's period start and amount.
_Entry = tuple[dt.date, Decimal]


#: Upsert many entries in one statement whose text does not depend on how many (arrays, not a VALUES row each).
_UPSERT_ENTRIES = text("""
    INSERT INTO budget_entries (budget_id, transaction_id, period_start, amount)
    SELECT * FROM unnest(CAST(:budgets AS uuid[]), CAST(:transactions AS uuid[]), CAST(:starts AS date[]),
                         CAST(:amounts AS numeric[]))
    ON CONFLICT (budget_id, transaction_id) DO UPDATE
       SET amount = EXCLUDED.amount, period_start = EXCLUDED.period_start""")


@dataclass
class _Counting:
    """What counting a household's changed transactions does: the entries as they were in SQL and as they are
    now, the running-total updates in order, and each (budget, period) touched with the last event touching it."""

    stored: dict[_Pair, _Entry]
    entries: dict[_Pair, _Entry | None]
    totals: list[budget_totals.Update] = field(default_factory=list)
    touched: dict[tuple[uuid.UUID, dt.date], tuple[Budget, Event]] = field(default_factory=dict)
    #: Rates looked up for amounts in another currency, shared by the whole batch.
    rates: dict = field(default_factory=dict)


def _apply_in_household(household_id: uuid.UUID, changed: list[tuple[Transaction, Event]], uow: UnitOfWork,
                        totals: redis.Redis | None) -> None:
    """Count the transactions in the household's budgets with a constant number of statements: their entries
    read at once, then written by one upsert and one delete, the running totals in one Redis pipeline."""
    budgets = _budgets_locked(household_id, uow)
    if not budgets:
        return
    lineage_of = _lineages(household_id, uow)
    stored = _stored_entries(budgets, {txn.id for txn, _ in changed}, uow)
    counting = _Counting(stored, dict(stored))
    for txn, cause in changed:
        lineage = (lineage_of.get(txn.category_id) or {txn.category_id}) if txn.category_id else set()
        for budget in budgets:
            _count(budget, txn, lineage, cause, counting, uow)
    _write(counting, uow)
    if totals is not None:
        # Once committed: a reader never sees a running total ahead of the entries and alerts in SQL. Should Redis
        # fail then, the message is retried, and counting again writes the same totals.
        uow.after_commit(partial(budget_totals.record_many, totals, counting.totals))
    _check_thresholds(counting.touched, uow)


def _budgets_locked(household_id: uuid.UUID, uow: UnitOfWork) -> list[Budget]:
    """Budgets of a household, locked in a fixed order so concurrent updates serialize without deadlock."""
    return list(uow.session.scalars(select(Budget).where(Budget.household_id == household_id)
                                    .order_by(Budget.id).with_for_update()))


def _counts(budget: Budget, txn: Transaction, lineage: set[uuid.UUID]) -> bool:
    return (txn.status == "recorded" and txn.deleted_at is None and txn.type == "expense"
            and budget.category_id in lineage)


def _stored_entries(budgets: list[Budget], transaction_ids: set[uuid.UUID], uow: UnitOfWork) -> dict[_Pair, _Entry]:
    """The entries the budgets have for these transactions, in one query."""
    rows = uow.session.execute(select(BudgetEntry.budget_id, BudgetEntry.transaction_id, BudgetEntry.period_start,
                                      BudgetEntry.amount).where(BudgetEntry.budget_id.in_([b.id for b in budgets]),
                                                                BudgetEntry.transaction_id.in_(transaction_ids)))
    return {(budget_id, txn_id): (start, amount) for budget_id, txn_id, start, amount in rows}


def _count(budget: Budget, txn: Transaction, lineage: set[uuid.UUID], cause: Event, counting: _Counting,
           uow: UnitOfWork) -> None:
    """Bring the budget's entry for this transaction up to date (in `counting`, written later); note the periods
    it touched, each with the amount it now counts there (None: no longer counted)."""
    pair = (budget.id, txn.id)
    before = counting.entries.get(pair)
    # A budget kept in another currency than the base (the base changed since) counts at the transaction's rate.
    amount = amount_in(txn, budget.currency, uow.session, counting.rates) if _counts(budget, txn, lineage) else None
    now = None if amount is None else (period_start(budget.period, txn.occurred_on), amount)
    counting.entries[pair] = now
    touched: dict[dt.date, Decimal | None] = {before[0]: None} if before else {}
    if now:
        touched[now[0]] = amount
    for start, counted in touched.items():
        counting.totals.append((budget, start, txn.id, counted))
        counting.touched[(budget.id, start)] = (budget, cause)


def _write(counting: _Counting, uow: UnitOfWork) -> None:
    """Write the entries that changed: one multi-row upsert, one delete for those no longer counted."""
    changed = {pair: now for pair, now in counting.entries.items() if now != counting.stored.get(pair)}
    upserts = [(*pair, *now) for pair, now in changed.items() if now is not None]
    if upserts:
        budget_ids, txn_ids, starts, amounts = (list(column) for column in zip(*upserts, strict=True))
        uow.session.execute(_UPSERT_ENTRIES, {"budgets": budget_ids, "transactions": txn_ids, "starts": starts,
                                              "amounts": amounts})
    gone = [pair for pair, now in changed.items() if now is None]
    if gone:
        uow.session.execute(delete(BudgetEntry).where(
            tuple_(BudgetEntry.budget_id, BudgetEntry.transaction_id).in_(gone)))


def spent(budget_id: uuid.UUID, start: dt.date, uow: UnitOfWork) -> Decimal:
    """The exact SQL sum counted in a budget period."""
    total = uow.session.scalar(select(func.coalesce(func.sum(BudgetEntry.amount), 0)).where(
        BudgetEntry.budget_id == budget_id, BudgetEntry.period_start == start))
    return Decimal(total)


def limit_for(budget: Budget, start: dt.date, uow: UnitOfWork) -> tuple[Decimal, Decimal]:
    """The budget's limit in a period and what rollover carried into it from the periods before."""
    if budget.rollover == "none":
        return budget.amount, Decimal(0)
    return _limit(budget, start, _sums_before({budget.id: start}, uow).get(budget.id, {}))


def _sums_before(first_after: dict[uuid.UUID, dt.date], uow: UnitOfWork) -> dict[uuid.UUID, dict[dt.date, Decimal]]:
    """Per budget, what each of its periods before the given start counted (one query for all budgets)."""
    sums: dict[uuid.UUID, dict[dt.date, Decimal]] = {}
    if not first_after:
        return sums
    rows = uow.session.execute(select(BudgetEntry.budget_id, BudgetEntry.period_start, func.sum(BudgetEntry.amount))
                               .where(BudgetEntry.budget_id.in_(first_after),
                                      BudgetEntry.period_start < max(first_after.values()))
                               .group_by(BudgetEntry.budget_id, BudgetEntry.period_start))
    for budget_id, start, total in rows:
        if start < first_after[budget_id]:
            sums.setdefault(budget_id, {})[start] = total
    return sums


def _limit(budget: Budget, start: dt.date, sums: dict[dt.date, Decimal]) -> tuple[Decimal, Decimal]:
    """`limit_for` from what the budget's periods counted (those from `start` on are ignored)."""
    if budget.rollover == "none":
        return budget.amount, Decimal(0)
    sums = {p: total for p, total in sums.items() if p < start}
    first = min([budget.created_at.date(), *sums]) if sums else budget.created_at.date()
    before = [Decimal(sums.get(p, 0)) for p in periods_between(budget.period, first, start)]
    carry = carried_in(budget.amount, before, budget.rollover)
    return budget.amount + carry, carry


def _check_thresholds(touched: dict[tuple[uuid.UUID, dt.date], tuple[Budget, Event]], uow: UnitOfWork) -> None:
    """Re-check the thresholds of each touched (budget, period start), caused by its event; what the periods
    counted, their limits and the alerts already sent are read in three queries for all of them."""
    periods = sorted(touched)
    if not periods:
        return
    totals = _spent_in(periods, uow)
    # Periods are sorted: each rolling budget keeps its latest start, before which every period's sum is read.
    sums = _sums_before({b: start for b, start in periods if touched[(b, start)][0].rollover != "none"}, uow)
    alerted = _alerted_in(periods, uow)
    for budget_id, start in periods:
        budget, cause = touched[(budget_id, start)]
        limit, _ = _limit(budget, start, sums.get(budget_id, {}))
        _alert(budget, start, cause, totals.get((budget_id, start), Decimal(0)), limit,
               alerted.get((budget_id, start), set()), uow)


def _spent_in(periods: list[tuple[uuid.UUID, dt.date]], uow: UnitOfWork) -> dict[tuple[uuid.UUID, dt.date], Decimal]:
    """`spent` in each (budget, period start), in one query (a period without entries is left out)."""
    rows = uow.session.execute(select(BudgetEntry.budget_id, BudgetEntry.period_start, func.sum(BudgetEntry.amount))
                               .where(tuple_(BudgetEntry.budget_id, BudgetEntry.period_start).in_(periods))
                               .group_by(BudgetEntry.budget_id, BudgetEntry.period_start))
    return {(budget_id, start): Decimal(total) for budget_id, start, total in rows}


def _alerted_in(periods: list[tuple[uuid.UUID, dt.date]], uow: UnitOfWork) -> dict[tuple[uuid.UUID, dt.date], set[int]]:
    """The thresholds already alerted in each (budget, period start), in one query."""
    alerted: dict[tuple[uuid.UUID, dt.date], set[int]] = {}
    for budget_id, start, threshold in uow.session.execute(select(
            BudgetAlert.budget_id, BudgetAlert.period_start, BudgetAlert.threshold).where(
            tuple_(BudgetAlert.budget_id, BudgetAlert.period_start).in_(periods))):
        alerted.setdefault((budget_id, start), set()).add(threshold)
    return alerted


def _alert(budget: Budget, start: dt.date, cause: Event, total: Decimal, limit: Decimal, alerted: set[int],
           uow: UnitOfWork) -> None:
    """Alert each threshold the period's spending reached that was not alerted yet; forget those it fell under."""
    reached = crossed(total, limit, budget.thresholds) if limit > 0 else set(budget.thresholds) if total > 0 else set()
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
    by_id = {budget.id: budget for budget in budgets}
    touched = {(budget_id, start): (by_id[budget_id], cause) for budget_id, start in periods}
    if totals is not None:
        for (_, start), (budget, _) in sorted(touched.items(), key=lambda item: item[0]):
            budget_totals.rebuild(totals, budget, start, uow)
    _check_thresholds(touched, uow)


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

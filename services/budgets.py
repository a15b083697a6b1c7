"""Budgets: creating them, counting recorded spending against them, and alerting on thresholds once."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

import redis
from sqlalchemy import ColumnClause, ColumnElement, Row, column, delete, func, select, text
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
    """`apply_transaction` for many (transaction, cause) pairs in one go, with a constant number of statements: the
    transactions read at once, every household's budgets locked by one statement, the entries written by another
    (which also answers what they were), each period they touched checked against its thresholds once (caused by
    the last event that touched it), and the running totals updated in one Redis pipeline."""
    with uow:
        connection = uow.session.connection()
        connection.exec_driver_sql(_GENERIC_PLANS)
        found = {t.id: t for t in connection.execute(_TRANSACTIONS, {"ids": list({i for i, _ in changed})})}
        by_household: dict[uuid.UUID, list[tuple[Row, Event]]] = {}
        for transaction_id, cause in changed:
            if (txn := found.get(transaction_id)) is not None:
                by_household.setdefault(txn.household_id, []).append((txn, cause))
        budgets: dict[uuid.UUID, list[Row]] = {}
        if by_household:
            for budget in connection.execute(_BUDGETS_LOCKED, {"households": sorted(by_household)}):
                budgets.setdefault(budget.household_id, []).append(budget)
        # Households in the order their budgets were locked: the order every process locks them in.
        counted = [(budgets[h], by_household[h]) for h in sorted(budgets)]
        if counted:
            _count(counted, uow, totals)
        uow.commit()


#: A (budget, transaction) pair: the key of a budget entry.
_Pair = tuple[uuid.UUID, uuid.UUID]
#: A budget entry's period start and amount.
_Entry = tuple[dt.date, Decimal]
#: A budget: the ORM object, or the row of its columns the batch reads (attributes of the same names; no ORM
#: instances to build).
_AnyBudget = Budget | Row
#: Each (budget, period start) touched, with the budget and the last event touching it.
_Touched = dict[tuple[uuid.UUID, dt.date], tuple[_AnyBudget, Event]]


def _columns(names: str) -> list[ColumnClause]:
    """A textual statement's result columns, in order and untyped (the driver's values as they come): SQLAlchemy then
    keeps their description with the cached statement instead of reading it from every result again."""
    return [column(name) for name in names.split()]


#: The statements below take arrays, whose length a generic plan cannot know: PostgreSQL would plan them again on
#: every execution (a custom plan looks cheaper), which cost more than running them. Their generic plans are the ones
#: wanted (index lookups per element), so the batch's transaction keeps them.
_GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"

#: The columns of the changed transactions that counting reads.
_TRANSACTIONS = text("""
    SELECT id, household_id, category_id, status, deleted_at, type, occurred_on, amount, currency, base_amount,
           base_currency, fx_rate
      FROM transactions WHERE id = ANY(CAST(:ids AS uuid[]))""").columns(*_columns(
    "id household_id category_id status deleted_at type occurred_on amount currency base_amount base_currency fx_rate"))

#: The households' budgets, locked in a fixed order (household, then budget) so concurrent updates serialize without
#: deadlock; each with the categories it counts: its own and those under it in the household (a transaction counts
#: in a budget whose category is its own or one above it).
_BUDGETS_LOCKED = text("""
    SELECT b.id, b.household_id, b.category_id, b.amount, b.currency, b.period, b.thresholds, b.rollover,
           b.created_at,
           ARRAY(WITH RECURSIVE below(id) AS (
                     SELECT b.category_id
                     UNION SELECT c.id FROM categories c JOIN below ON c.parent_id = below.id
                            WHERE c.household_id = b.household_id)
                 SELECT id FROM below) AS categories
      FROM budgets b WHERE b.household_id = ANY(CAST(:households AS uuid[]))
     ORDER BY b.household_id, b.id
       FOR UPDATE OF b""").columns(*_columns(
    "id household_id category_id amount currency period thresholds rollover created_at categories"))

#: Bring the entries of (budget, transaction) pairs to what they count now (a NULL amount: nothing, deleted) and
#: answer what they were. Every part reads the snapshot from before the statement; unchanged rows are left alone.
_WRITE_ENTRIES = text("""
    WITH now AS (
        SELECT * FROM unnest(CAST(:budgets AS uuid[]), CAST(:transactions AS uuid[]), CAST(:starts AS date[]),
                             CAST(:amounts AS numeric[])) AS now(budget_id, transaction_id, period_start, amount)),
    before AS (
        SELECT e.budget_id, e.transaction_id, e.period_start, e.amount
          FROM budget_entries e JOIN now USING (budget_id, transaction_id)),
    gone AS (
        DELETE FROM budget_entries e USING now
         WHERE e.budget_id = now.budget_id AND e.transaction_id = now.transaction_id AND now.amount IS NULL),
    kept AS (
        INSERT INTO budget_entries (budget_id, transaction_id, period_start, amount)
        SELECT budget_id, transaction_id, period_start, amount FROM now WHERE amount IS NOT NULL
        ON CONFLICT (budget_id, transaction_id) DO UPDATE
           SET amount = EXCLUDED.amount, period_start = EXCLUDED.period_start
         WHERE (budget_entries.period_start, budget_entries.amount)
               IS DISTINCT FROM (EXCLUDED.period_start, EXCLUDED.amount))
    SELECT budget_id, transaction_id, period_start, amount FROM before""").columns(*_columns(
    "budget_id transaction_id period_start amount"))


def _count(counted: list[tuple[list[Row], list[tuple[Row, Event]]]], uow: UnitOfWork,
           totals: redis.Redis | None) -> None:
    """Bring every budget entry of the changed transactions up to date, then the running totals (once committed)
    and the thresholds of each period an entry entered or left."""
    rates: dict = {}  # rates looked up for amounts in another currency, shared by the whole batch
    now: dict[_Pair, _Entry | None] = {}
    for budgets, changed in counted:
        for txn, _ in changed:
            for budget in budgets:
                if (budget.id, txn.id) not in now:
                    now[(budget.id, txn.id)] = _entry(budget, txn, uow, rates)
    entries = _write(now, uow)
    # Replayed event by event, as if each had its own message: each moves a total from the period its entry left
    # to the one it entered, and the last event touching a period is what its alerts answer.
    updates: list[budget_totals.Update] = []
    touched: _Touched = {}
    for budgets, changed in counted:
        for txn, cause in changed:
            for budget in budgets:
                pair = (budget.id, txn.id)
                before, entries[pair] = entries.get(pair), now[pair]
                moved: dict[dt.date, Decimal | None] = {before[0]: None} if before else {}
                if now[pair]:
                    moved[now[pair][0]] = now[pair][1]
                for start, amount in moved.items():
                    updates.append((budget, start, txn.id, amount))
                    touched[(budget.id, start)] = (budget, cause)
    if totals is not None:
        # Once committed: a reader never sees a running total ahead of the entries and alerts in SQL. Should Redis
        # fail then, the message is retried, and counting again writes the same totals.
        uow.after_commit(partial(budget_totals.record_many, totals, updates))
    _check_thresholds(touched, uow)


def _entry(budget: Row, txn: Row, uow: UnitOfWork, rates: dict) -> _Entry | None:
    """What the budget counts of this transaction now: (period start, amount), or None."""
    if not (txn.status == "recorded" and txn.deleted_at is None and txn.type == "expense"
            and txn.category_id in budget.categories):
        return None
    # A budget kept in another currency than the base (the base changed since) counts at the transaction's rate.
    amount = amount_in(txn, budget.currency, uow.session, rates)
    return None if amount is None else (period_start(budget.period, txn.occurred_on), amount)


def _write(now: dict[_Pair, _Entry | None], uow: UnitOfWork) -> dict[_Pair, _Entry]:
    """Write the entries as they are now in one statement; returns what they were."""
    starts = [entry[0] if entry else None for entry in now.values()]
    amounts = [entry[1] if entry else None for entry in now.values()]
    rows = uow.session.connection().execute(_WRITE_ENTRIES, {
        "budgets": [budget_id for budget_id, _ in now], "transactions": [txn_id for _, txn_id in now],
        "starts": starts, "amounts": amounts})
    return {(budget_id, txn_id): (start, amount) for budget_id, txn_id, start, amount in rows}


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


def _limit(budget: _AnyBudget, start: dt.date, sums: dict[dt.date, Decimal]) -> tuple[Decimal, Decimal]:
    """`limit_for` from what the budget's periods counted (those from `start` on are ignored)."""
    if budget.rollover == "none":
        return budget.amount, Decimal(0)
    sums = {p: total for p, total in sums.items() if p < start}
    first = min([budget.created_at.date(), *sums]) if sums else budget.created_at.date()
    before = [Decimal(sums.get(p, 0)) for p in periods_between(budget.period, first, start)]
    carry = carried_in(budget.amount, before, budget.rollover)
    return budget.amount + carry, carry


#: What re-checking thresholds reads, in one statement for every period touched: what each counted ("spent"), the
#: thresholds already alerted in it ("alerted"), and for each rolling budget what its periods before the latest
#: touched one counted ("before", for the rollover).
_THRESHOLD_FACTS = text("""
    WITH touched AS (
        SELECT * FROM unnest(CAST(:budgets AS uuid[]), CAST(:starts AS date[])) AS touched(budget_id, period_start)),
    rolling AS (
        SELECT * FROM unnest(CAST(:rolling AS uuid[]), CAST(:latest AS date[])) AS rolling(budget_id, latest))
    SELECT 'spent' AS fact, e.budget_id, e.period_start, sum(e.amount)
      FROM budget_entries e JOIN touched USING (budget_id, period_start)
     GROUP BY e.budget_id, e.period_start
    UNION ALL
    SELECT 'before', e.budget_id, e.period_start, sum(e.amount)
      FROM budget_entries e JOIN rolling ON e.budget_id = rolling.budget_id AND e.period_start < rolling.latest
     GROUP BY e.budget_id, e.period_start
    UNION ALL
    SELECT 'alerted', a.budget_id, a.period_start, a.threshold
      FROM budget_alerts a JOIN touched USING (budget_id, period_start)""").columns(*_columns(
    "fact budget_id period_start value"))

#: Alerts raised, and alerts whose threshold spending fell back under, each written by one statement for the lot.
_INSERT_ALERTS = text("""
    INSERT INTO budget_alerts (budget_id, period_start, threshold, event_id)
    SELECT * FROM unnest(CAST(:budgets AS uuid[]), CAST(:starts AS date[]), CAST(:thresholds AS integer[]),
                         CAST(:events AS uuid[]))""")
_DELETE_ALERTS = text("""
    DELETE FROM budget_alerts a
     USING unnest(CAST(:budgets AS uuid[]), CAST(:starts AS date[]), CAST(:thresholds AS integer[]))
           AS fallen(budget_id, period_start, threshold)
     WHERE a.budget_id = fallen.budget_id AND a.period_start = fallen.period_start
       AND a.threshold = fallen.threshold""")
#: An alert: (budget id, period start, threshold).
_Alert = tuple[uuid.UUID, dt.date, int]


def _check_thresholds(touched: _Touched, uow: UnitOfWork) -> None:
    """Re-check the thresholds of each touched (budget, period start), caused by its event; what the periods
    counted, their limits and the alerts already sent are read by one statement for all of them."""
    if not touched:
        return
    # Household by household, as their budgets were locked; each budget's periods in order.
    periods = sorted(touched, key=lambda period: (touched[period][0].household_id, period))
    # Periods sorted: each rolling budget keeps its latest start, before which every period's sum is read.
    latest = {budget_id: start for budget_id, start in sorted(touched)
              if touched[(budget_id, start)][0].rollover != "none"}
    counted: dict[tuple[uuid.UUID, dt.date], Decimal] = {}
    sums: dict[uuid.UUID, dict[dt.date, Decimal]] = {}
    alerted: dict[tuple[uuid.UUID, dt.date], set[int]] = {}
    for fact, budget_id, start, value in uow.session.connection().execute(_THRESHOLD_FACTS, {
            "budgets": [budget_id for budget_id, _ in periods], "starts": [start for _, start in periods],
            "rolling": list(latest), "latest": list(latest.values())}):
        if fact == "spent":
            counted[(budget_id, start)] = Decimal(value)
        elif fact == "before":
            sums.setdefault(budget_id, {})[start] = value
        else:
            alerted.setdefault((budget_id, start), set()).add(int(value))
    raised: list[tuple[uuid.UUID, dt.date, int, uuid.UUID]] = []
    fallen: list[_Alert] = []
    for budget_id, start in periods:
        budget, cause = touched[(budget_id, start)]
        limit, _ = _limit(budget, start, sums.get(budget_id, {}))
        _alert(budget, start, cause, counted.get((budget_id, start), Decimal(0)), limit,
               alerted.get((budget_id, start), set()), uow, raised, fallen)
    if raised:
        budget_ids, starts, thresholds, event_ids = (list(column) for column in zip(*raised, strict=True))
        uow.session.connection().execute(_INSERT_ALERTS, {"budgets": budget_ids, "starts": starts,
                                                          "thresholds": thresholds, "events": event_ids})
    if fallen:
        budget_ids, starts, thresholds = (list(column) for column in zip(*fallen, strict=True))
        uow.session.connection().execute(_DELETE_ALERTS, {"budgets": budget_ids, "starts": starts,
                                                          "thresholds": thresholds})


def _alert(budget: _AnyBudget, start: dt.date, cause: Event, total: Decimal, limit: Decimal, alerted: set[int],
           uow: UnitOfWork, raised: list[tuple[uuid.UUID, dt.date, int, uuid.UUID]], fallen: list[_Alert]) -> None:
    """Alert each threshold the period's spending reached that was not alerted yet (noted in `raised`, written
    later); note in `fallen` those it fell under."""
    reached = crossed(total, limit, budget.thresholds) if limit > 0 else set(budget.thresholds) if total > 0 else set()
    for threshold in sorted(reached - alerted):
        event = cause.caused("BudgetThresholdCrossed", _crossing(budget, start, threshold, total, limit))
        raised.append((budget.id, start, threshold, uuid.UUID(event.event_id)))
        uow.emit(event)
    # Spending fell back under these thresholds: crossing them again alerts again.
    fallen.extend((budget.id, start, threshold) for threshold in sorted(alerted - reached))


def _crossing(budget: _AnyBudget, start: dt.date, threshold: int, total: Decimal,
              limit: Decimal) -> dict[str, str | int]:
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


def _budgets_locked(household_id: uuid.UUID, uow: UnitOfWork) -> list[Budget]:
    """Budgets of a household, locked in a fixed order so concurrent updates serialize without deadlock."""
    return list(uow.session.scalars(select(Budget).where(Budget.household_id == household_id)
                                    .order_by(Budget.id).with_for_update()))


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

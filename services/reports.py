"""Monthly and yearly reports in the household's base currency, read from the monthly aggregates.

Income and expenses are the converted amounts of recorded transactions (transfers are neither); a transaction
without a conversion into the current base currency is counted in `unconverted`, never as 1:1. Categories roll
their children up; every figure comes with the previous period's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

import redis
from sqlalchemy import select, text

from domain.fx import convert
from domain.money import quantize
from domain.periods import months_between
from models.identity import Household
from models.insights import NO_CATEGORY
from models.ledger import Account, Category
from services import budgets as budget_service
from services.context import Caller
from services.fx_rates import offline_rate
from services.uow import UnitOfWork

_CENT = Decimal("0.01")
#: Signs of each kind on an account's balance.
_BALANCE_SIGN = {"income": 1, "expense": -1, "transfer_in": 1, "transfer_out": -1}

#: One month's totals per account, category and kind in each base currency (income and expenses only).
MONTH_ROWS = text("""
    SELECT month, account_id, category_id, kind, base_currency, sum(base_amount) AS base_amount,
           sum(transactions) AS transactions, sum(unconverted) AS unconverted
      FROM insights_monthly_aggregates
     WHERE household_id = :household AND month BETWEEN :first AND :last AND kind IN ('income', 'expense')
     GROUP BY month, account_id, category_id, kind, base_currency""")

#: The same without accounts (trends need categories only): fewer rows over long windows.
CATEGORY_MONTH_ROWS = text("""
    SELECT month, category_id, kind, base_currency, sum(base_amount) AS base_amount,
           sum(transactions) AS transactions, sum(unconverted) AS unconverted
      FROM insights_monthly_aggregates
     WHERE household_id = :household AND month BETWEEN :first AND :last AND kind IN ('income', 'expense')
     GROUP BY month, category_id, kind, base_currency""")

#: Every account's balance movements per month, in the account's currency.
_ACCOUNT_FLOWS = text("""
    SELECT account_id, month, kind, sum(account_amount) AS amount
      FROM insights_monthly_aggregates
     WHERE household_id = :household AND month <= :last
     GROUP BY account_id, month, kind""")


def percent_of(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole in percent, two places half-even; None when the whole is zero."""
    if whole == 0:
        return None
    return (part * 100 / whole).quantize(_CENT, rounding=ROUND_HALF_EVEN)


@dataclass
class Totals:
    """Income and expenses of a period (of a category, an account, or everything), in the base currency."""

    income: Decimal = Decimal(0)
    expenses: Decimal = Decimal(0)
    transactions: int = 0
    #: Transactions left out because they have no conversion into the base currency (yet).
    unconverted: int = 0

    @property
    def net(self) -> Decimal:
        """Income minus expenses."""
        return self.income - self.expenses

    @property
    def savings_rate(self) -> Decimal | None:
        """Net as a percentage of income (None without income)."""
        return percent_of(self.net, self.income)

    def add(self, kind: str, amount: Decimal, transactions: int, unconverted: int) -> None:
        """Count one aggregate row."""
        if kind == "income":
            self.income += amount
        else:
            self.expenses += amount
        self.transactions += transactions
        self.unconverted += unconverted


@dataclass
class Line:
    """A category or an account with its totals in the period and in the one before."""

    id: uuid.UUID | None
    name: str
    current: Totals = field(default_factory=Totals)
    previous: Totals = field(default_factory=Totals)
    parent_id: uuid.UUID | None = None
    currency: str | None = None


@dataclass(frozen=True)
class BudgetLine:
    """A budget against the period: its limit (rollover included) and what was spent."""

    budget_id: uuid.UUID
    category: str
    period: str
    limit: Decimal
    spent: Decimal
    currency: str
    pending_conversion: int


@dataclass(frozen=True)
class NetWorthPoint:
    """The sum of every account's balance at the end of a month (as recorded so far), in the base currency."""

    on: dt.date
    amount: Decimal
    #: Accounts whose balance has no rate into the base currency on that day (left out).
    unconverted_accounts: list[str]


@dataclass
class Report:
    """A monthly or yearly report."""

    period: str
    previous_period: str
    first: dt.date
    last: dt.date
    currency: str
    current: Totals
    previous: Totals
    categories: list[Line]
    accounts: list[Line]
    budgets: list[BudgetLine]
    months: list[tuple[dt.date, Totals]] = field(default_factory=list)
    net_worth: list[NetWorthPoint] = field(default_factory=list)


def month_start(day: dt.date, months: int = 0) -> dt.date:
    """The first day of the month `months` after (or before) `day`'s."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(day: dt.date) -> dt.date:
    """The last day of `day`'s month."""
    return month_start(day, 1) - dt.timedelta(days=1)


def monthly_report(caller: Caller, month: dt.date, uow: UnitOfWork, totals: redis.Redis | None = None) -> Report:
    """The report of the calendar month that starts on `month`, with the month before it."""
    first, previous = month_start(month), month_start(month, -1)
    report = _report(caller, (first, month_end(first)), (previous, first - dt.timedelta(days=1)), uow)
    report.period, report.previous_period = first.strftime("%Y-%m"), previous.strftime("%Y-%m")
    report.budgets = _budgets(caller, report, "monthly", [first], uow, totals)
    return report


def yearly_report(caller: Caller, year: int, uow: UnitOfWork, totals: redis.Redis | None = None) -> Report:
    """The report of a calendar year, with the year before, month by month, and net worth at each month's end."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    report = _report(caller, (first, last), (dt.date(year - 1, 1, 1), dt.date(year - 1, 12, 31)), uow,
                     by_month=True)
    report.period, report.previous_period = str(year), str(year - 1)
    starts = [dt.date(year, m, 1) for m in range(1, 13)]
    report.budgets = (_budgets(caller, report, "yearly", [first], uow, totals)
                      + _budgets(caller, report, "monthly", starts, uow, totals))
    report.net_worth = net_worth(caller, [month_end(s) for s in starts if s <= today()], uow)
    return report


def today() -> dt.date:
    """Today's date (UTC)."""
    return dt.datetime.now(dt.UTC).date()


def _report(caller: Caller, current: tuple[dt.date, dt.date], previous: tuple[dt.date, dt.date], uow: UnitOfWork,
            *, by_month: bool = False) -> Report:
    with uow:
        base = uow.session.scalar(select(Household.base_currency).where(Household.id == caller.household_id))
        rows = uow.session.execute(MONTH_ROWS, {"household": caller.household_id, "first": previous[0],
                                                 "last": current[1]}).all()
        categories = {c.id: c for c in uow.session.scalars(select(Category).where(
            Category.household_id == caller.household_id))}
        accounts = {a.id: a for a in uow.session.scalars(select(Account).where(
            Account.household_id == caller.household_id))}
    report = Report("", "", current[0], current[1], base, Totals(), Totals(), [], [], [])
    by_category: dict[uuid.UUID, Line] = {}
    account_lines: dict[uuid.UUID, Line] = {}
    months: dict[dt.date, Totals] = defaultdict(Totals)
    for row in rows:
        now = row.month >= current[0]
        amount, unconverted = in_base(row, base)
        targets = [report.current if now else report.previous]
        targets += [_side(line, now) for line in category_lines(row.category_id, categories, by_category)]
        targets.append(_side(_account_line(row.account_id, accounts, account_lines), now))
        if now and by_month:
            targets.append(months[row.month])
        for totals in targets:
            totals.add(row.kind, amount, row.transactions, unconverted)
    report.categories = sorted(by_category.values(), key=lambda x: (-x.current.expenses, -x.current.income,
                                                                         x.name))
    report.accounts = sorted(account_lines.values(), key=lambda x: x.name)
    if by_month:
        report.months = [(start, months[start]) for start in months_between(current[0], current[1])]
    return report


def in_base(row: object, base: str) -> tuple[Decimal, int]:
    """A row's amount in the base currency and the transactions it leaves out; rows still in a former base
    currency (a re-conversion under way) count as unconverted, never at face value."""
    if row.base_currency != base:  # type: ignore[attr-defined]
        return Decimal(0), row.transactions  # type: ignore[attr-defined]
    return Decimal(row.base_amount), row.unconverted  # type: ignore[attr-defined]


def _side(line: Line, now: bool) -> Totals:
    return line.current if now else line.previous


def category_lines(category_id: uuid.UUID, categories: dict[uuid.UUID, Category],
                    lines: dict[uuid.UUID, Line]) -> list[Line]:
    """The lines a row counts in: its category and every category above it (children roll up)."""
    found: list[Line] = []
    seen: set[uuid.UUID] = set()
    node: uuid.UUID | None = category_id
    while node is not None and node not in seen:
        seen.add(node)
        category = categories.get(node)
        if node not in lines:
            name = category.name if category else ("(no category)" if node == NO_CATEGORY else "(deleted)")
            lines[node] = Line(None if node == NO_CATEGORY else node, name,
                               parent_id=category.parent_id if category else None)
        found.append(lines[node])
        node = category.parent_id if category else None
    return found


def _account_line(account_id: uuid.UUID, accounts: dict[uuid.UUID, Account], lines: dict[uuid.UUID, Line]) -> Line:
    if account_id not in lines:
        account = accounts.get(account_id)
        lines[account_id] = Line(account_id, account.name if account else "(deleted)",
                                 currency=account.currency if account else None)
    return lines[account_id]


def _budgets(caller: Caller, report: Report, period: str, starts: Iterable[dt.date], uow: UnitOfWork,
             totals: redis.Redis | None) -> list[BudgetLine]:
    """Each budget of this period kind over the report's period (a monthly budget over a year: its twelve limits).
    Spent is the report's own figure for the budget's category (children included) when the budget is in the base
    currency; a budget left in a former base currency is asked for its own status."""
    by_category = {line.id: line for line in report.categories if line.id}
    starts = list(starts)
    lines = []
    for budget, category in budget_service.list_budgets(caller, uow):
        if budget.period != period:
            continue
        if budget.currency == report.currency:
            line = by_category.get(budget.category_id)
            with uow:
                limit = sum((budget_service.limit_for(budget, start, uow)[0] for start in starts), Decimal(0))
            spent, pending = (line.current.expenses, line.current.unconverted) if line else (Decimal(0), 0)
        else:
            statuses = [budget_service.status(caller, budget.id, start, uow, totals) for start in starts]
            limit = sum((s.limit for s in statuses), Decimal(0))
            spent = sum((s.spent for s in statuses), Decimal(0))
            pending = sum(s.pending_conversion for s in statuses)
        lines.append(BudgetLine(budget.id, category, period, limit, spent, budget.currency, pending))
    return lines


def net_worth(caller: Caller, days: list[dt.date], uow: UnitOfWork) -> list[NetWorthPoint]:
    """The household's net worth at the end of each day: every open account's opening balance plus what moved
    it until then (from the aggregates), converted into the base currency at that day's rate."""
    if not days:
        return []
    with uow:
        base = uow.session.scalar(select(Household.base_currency).where(Household.id == caller.household_id))
        accounts = list(uow.session.scalars(select(Account).where(
            Account.household_id == caller.household_id, Account.deleted_at.is_(None))))
        flows = uow.session.execute(_ACCOUNT_FLOWS, {"household": caller.household_id, "last": max(days)}).all()
        points = [_point(day, base, accounts, flows, uow) for day in days]
    return points


def _point(day: dt.date, base: str, accounts: list[Account], flows: list, uow: UnitOfWork) -> NetWorthPoint:
    moved: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
    for flow in flows:
        if flow.month <= day:
            moved[flow.account_id] += _BALANCE_SIGN[flow.kind] * Decimal(flow.amount)
    total, missing = Decimal(0), []
    for account in accounts:
        balance = account.opening_balance + moved[account.id]
        if account.currency == base:
            total += balance
        elif rate := offline_rate(uow.session, account.household_id, account.currency, base, day):
            total += convert(balance, rate.value, base)
        else:
            missing.append(account.name)
    return NetWorthPoint(day, quantize(total, base), missing)

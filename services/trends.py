"""Spending trends: per category over N months, with the change from each month to the next."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from models.identity import Household
from models.ledger import Category
from services.accounts import find_category
from services.context import Caller
from services.errors import Invalid
from services.reports import CATEGORY_MONTH_ROWS, Line, Totals, category_lines, in_base, month_start, percent_of
from services.uow import UnitOfWork

#: The longest window a trend may ask for (ten years).
MAX_MONTHS = 120


@dataclass(frozen=True)
class Point:
    """One month of a series: its totals and the change of expenses from the month before."""

    month: dt.date
    totals: Totals
    change: Decimal
    change_percent: Decimal | None


@dataclass
class Series:
    """A category's months (its children rolled up), or the household's (id None, name "Total")."""

    id: uuid.UUID | None
    name: str
    parent_id: uuid.UUID | None
    points: list[Point] = field(default_factory=list)

    @property
    def expenses(self) -> Decimal:
        """Expenses over the whole window."""
        return sum((p.totals.expenses for p in self.points), Decimal(0))

    @property
    def income(self) -> Decimal:
        """Income over the whole window."""
        return sum((p.totals.income for p in self.points), Decimal(0))


@dataclass(frozen=True)
class Trends:
    """Every series of a window of months ending with `months[-1]`."""

    currency: str
    months: list[dt.date]
    total: Series
    categories: list[Series]
    #: The category asked for, when one was.
    category: uuid.UUID | None = None


def trends(caller: Caller, last: dt.date, months: int, category: str | None, uow: UnitOfWork) -> Trends:
    """Per category (children rolled up) over `months` months ending with `last`'s month; with `category`, that
    category and the categories below it only."""
    window = [month_start(last, i) for i in range(-months + 1, 1)]
    before = month_start(window[0], -1)  # the month before the window: the first change needs it
    with uow:
        base = uow.session.scalar(select(Household.base_currency).where(Household.id == caller.household_id))
        categories = {c.id: c for c in uow.session.scalars(select(Category).where(
            Category.household_id == caller.household_id))}
        root = _root(caller, category, uow)
        rows = uow.session.execute(CATEGORY_MONTH_ROWS, {"household": caller.household_id, "first": before,
                                                 "last": window[-1]}).all()
    by_month: dict[uuid.UUID | None, dict[dt.date, Totals]] = {}
    lines: dict[uuid.UUID, Line] = {}
    for row in rows:
        amount, unconverted = in_base(row, base)
        keys: list[uuid.UUID | None] = [None] + [line.id or row.category_id
                                                 for line in category_lines(row.category_id, categories, lines)]
        for key in keys:
            by_month.setdefault(key, {}).setdefault(row.month, Totals()).add(row.kind, amount, row.transactions,
                                                                             unconverted)
    total = _series(None, "Total", None, by_month.get(None, {}), before, window)
    wanted = [key for key in lines if root is None or _under(key, root, categories)]
    series = [_series(lines[key].id, lines[key].name, lines[key].parent_id, by_month[key], before, window)
              for key in wanted]
    series.sort(key=lambda s: (-s.expenses, -s.income, s.name))
    return Trends(base, window, total, series, root)


def _root(caller: Caller, category: str | None, uow: UnitOfWork) -> uuid.UUID | None:
    if category is None:
        return None
    found = find_category(caller.household_id, category, uow)
    if found is None:
        raise Invalid("no such category", field="category")
    return found.id


def _under(key: uuid.UUID, root: uuid.UUID, categories: dict[uuid.UUID, Category]) -> bool:
    """Whether a category is `root` or below it."""
    seen: set[uuid.UUID] = set()
    node: uuid.UUID | None = key
    while node is not None and node not in seen:
        if node == root:
            return True
        seen.add(node)
        node = categories[node].parent_id if node in categories else None
    return False


def _series(ident: uuid.UUID | None, name: str, parent_id: uuid.UUID | None, months: dict[dt.date, Totals],
            before: dt.date, window: list[dt.date]) -> Series:
    series = Series(ident, name, parent_id)
    previous = months.get(before, Totals())
    for month in window:
        totals = months.get(month, Totals())
        change = totals.expenses - previous.expenses
        series.points.append(Point(month, totals, change, percent_of(change, previous.expenses)))
        previous = totals
    return series

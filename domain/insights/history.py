"""The transactions insight algorithms read: one currency, amounts positive, expense or income."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from domain.insights.payees import payee_key


@dataclass(frozen=True)
class Txn:
    """One transaction as insights see it: a positive amount in one currency, spent (expense) or received."""

    id: str
    occurred_on: dt.date
    amount: Decimal
    type: str = "expense"
    payee: str = ""
    category: str | None = None

    @property
    def payee_key(self) -> str:
        """The normalized payee."""
        return payee_key(self.payee)


def month_of(day: dt.date) -> dt.date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the end of a shorter month (Jan 31 + 1 -> Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, days_in_month(year, month + 1)))


def days_in_month(year: int, month: int) -> int:
    """How many days a month has."""
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first days of every month from `first`'s to `last`'s, both included."""
    months, current = [], month_of(first)
    while current <= last:
        months.append(current)
        current = add_months(current, 1)
    return months

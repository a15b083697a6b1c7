"""Budget periods: where one starts, how it is named, and threshold crossings."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Supported budget periods.
PERIODS = ("weekly", "monthly", "yearly")
#: Default alert thresholds, in percent of the budget.
DEFAULT_THRESHOLDS = (50, 80, 100)

#: Period labels in ASCII digits only, matched whole (no trailing newline, no full-width digits).
_LABEL = {
    "monthly": re.compile(r"([0-9]{4})-([0-9]{2})"),
    "yearly": re.compile(r"([0-9]{4})"),
    "weekly": re.compile(r"([0-9]{4})-W([0-9]{2})"),
}


def local_today(now: dt.datetime, timezone: str) -> dt.date:
    """The date it is in `timezone` at the moment `now` (an aware datetime)."""
    return now.astimezone(ZoneInfo(timezone)).date()


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone (Europe/Berlin, Pacific/Auckland, UTC)."""
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return "/" in name or name == "UTC"


def period_start(period: str, day: dt.date) -> dt.date:
    """The first day of the period that contains `day`."""
    if period == "monthly":
        return day.replace(day=1)
    if period == "yearly":
        return day.replace(month=1, day=1)
    if period == "weekly":
        return day - dt.timedelta(days=day.weekday())
    raise ValueError(f"unknown period {period!r}")


def period_label(period: str, start: dt.date) -> str:
    """A person's name for a period: 2026-11, 2026, 2026-W47."""
    if period == "monthly":
        return start.strftime("%Y-%m")
    if period == "yearly":
        return str(start.year)
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


def parse_label(period: str, label: str) -> dt.date:
    """The first day of the period a label names; ValueError when it names none."""
    match = _LABEL[period].fullmatch(label)
    if not match:
        raise ValueError(f"expected a {period} period like {period_label(period, dt.date(2026, 11, 2))}")
    year, part = int(match.group(1)), int(match.group(2)) if match.lastindex == 2 else 1
    if period == "weekly":
        return dt.date.fromisocalendar(year, part, 1)
    return dt.date(year, part, 1)


def crossed(spent: Decimal, limit: Decimal, thresholds: list[int]) -> set[int]:
    """The thresholds (percent of limit) that spending has reached."""
    return {t for t in thresholds if spent * 100 >= limit * t}


def percent(spent: Decimal, limit: Decimal) -> Decimal:
    """Spending as a percentage of the limit, to two places."""
    return (spent * 100 / limit).quantize(Decimal("0.01"))


def next_start(period: str, start: dt.date) -> dt.date:
    """The first day of the period after the one starting on `start`."""
    if period == "weekly":
        return start + dt.timedelta(days=7)
    if period == "yearly":
        return start.replace(year=start.year + 1)
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


#: How unspent or overspent money moves into the next period.
ROLLOVERS = ("none", "surplus", "surplus_and_deficit")


def carried_in(limit: Decimal, spent_before: list[Decimal], mode: str) -> Decimal:
    """What earlier periods carry into this one: with `surplus` only money left over (never negative),
    with `surplus_and_deficit` overspending too, with `none` nothing. `spent_before` runs oldest first."""
    carry = Decimal(0)
    if mode == "none":
        return carry
    for spent in spent_before:
        left = limit + carry - spent
        carry = max(left, Decimal(0)) if mode == "surplus" else left
    return carry


def periods_between(period: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """The starts of every period from the one containing `first` up to, not including, the one of `last`."""
    starts, start, end = [], period_start(period, first), period_start(period, last)
    while start < end:
        starts.append(start)
        start = next_start(period, start)
    return starts


# --- calendar months -----------------------------------------------------------------------------


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

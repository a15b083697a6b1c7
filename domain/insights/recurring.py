"""Recurring payments and subscriptions: a cadence found in the dates, a level in the amounts, what comes next."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from domain.insights.history import Txn
from domain.periods import add_months, days_in_month

#: Cadence name -> (days between charges it accepts, the nominal step in days).
CADENCES: dict[str, tuple[range, int]] = {
    "weekly": (range(5, 10), 7),              # a weekend can move a charge by a day or two
    "monthly": (range(25, 36), 30),           # 28 to 31 days, plus weekend shifts
    "yearly": (range(350, 381), 365),
}
#: Charges at least needed per cadence (a yearly one shows only once a year).
MIN_CHARGES = {"weekly": 4, "monthly": 3, "yearly": 2}
#: Share of gaps that must fit the cadence (one late or skipped charge is forgiven).
FIT_SHARE = Decimal("0.75")
#: Amounts within this share of each other are one price level.
AMOUNT_TOLERANCE = Decimal("0.05")
#: How long after its expected date a payment still counts as active, per cadence.
GRACE_DAYS = {"weekly": 4, "monthly": 10, "yearly": 45}


@dataclass(frozen=True)
class Recurring:
    """A recurring payment found in one payee's history."""

    payee_key: str
    type: str
    cadence: str
    charges: int
    first_date: dt.date
    last_date: dt.date
    next_date: dt.date
    #: The current price level: what the next charge is expected to be.
    amount: Decimal
    #: The earlier level when the last charge(s) rose above it beyond the tolerance.
    previous_amount: Decimal | None
    category: str | None

    @property
    def price_increased(self) -> bool:
        """Whether the last charge(s) cost more than the earlier level."""
        return self.previous_amount is not None and self.amount > self.previous_amount

    def active_on(self, day: dt.date) -> bool:
        """Whether the payment still runs on `day` (its next charge is not long overdue)."""
        return day <= self.next_date + dt.timedelta(days=GRACE_DAYS[self.cadence])

    def dates_between(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """The expected charge dates from `start` to `end`, both included."""
        dates, day, step = [], self.next_date, 0
        while day <= end:
            if day >= start:
                dates.append(day)
            step += 1
            day = _step(self.cadence, self.next_date, step)
        return dates


#: The fewest days between two charges that any cadence accepts (a weekly one's shortest gap).
SHORTEST_GAP = min(accepted.start for accepted, _ in CADENCES.values())


def may_recur(charges: int, span_days: int) -> bool:
    """Whether so many charges of one payee within `span_days` can form a recurring payment at all: a cadence needs
    FIT_SHARE of the gaps between them to be at least SHORTEST_GAP days, and all the gaps fit in the span. A payee
    charged more often (groceries, coffee) is ruled out by its count alone, so its charges need not be read."""
    return SHORTEST_GAP * math.ceil(FIT_SHARE * (charges - 1)) <= span_days


def find_recurring(history: Iterable[Txn]) -> list[Recurring]:
    """Every recurring payment in a history, grouped by normalized payee and type; most recent first."""
    groups: dict[tuple[str, str], list[Txn]] = defaultdict(list)
    for txn in history:
        groups[(txn.payee_key, txn.type)].append(txn)
    found = [r for txns in groups.values() if (r := detect(txns)) is not None]
    return sorted(found, key=lambda r: (r.last_date, r.payee_key), reverse=True)


def detect(charges: list[Txn]) -> Recurring | None:
    """The recurring payment these charges of one payee form, or None when dates or amounts do not repeat."""
    ordered = sorted(charges, key=lambda t: (t.occurred_on, t.id))
    cadence = cadence_of([t.occurred_on for t in ordered])
    if cadence is None or len(ordered) < MIN_CHARGES[cadence]:
        return None
    levels = price_levels([t.amount for t in ordered])
    if levels is None:
        return None
    current, previous = levels
    last = ordered[-1]
    return Recurring(last.payee_key, last.type, cadence, len(ordered), ordered[0].occurred_on, last.occurred_on,
                     next_date(cadence, [t.occurred_on for t in ordered]), current, previous,
                     statistics.mode([t.category for t in ordered]))


def cadence_of(dates: list[dt.date]) -> str | None:
    """The cadence (weekly, monthly, yearly) most gaps between the sorted dates fit, or None."""
    gaps = [(b - a).days for a, b in zip(dates, dates[1:], strict=False)]
    if not gaps:
        return None
    for name, (accepted, _) in CADENCES.items():
        fitting = sum(1 for g in gaps if g in accepted)
        if statistics.median_low(gaps) in accepted and fitting >= FIT_SHARE * len(gaps):
            return name
    return None


def price_levels(amounts: list[Decimal]) -> tuple[Decimal, Decimal | None] | None:
    """(current level, earlier level or None): the last charges form one level; the charges before them, if
    any, another. None when the earlier charges do not hold one level either (spending, not a subscription)."""
    last = amounts[-1]
    split = len(amounts)
    while split > 0 and _same_level(amounts[split - 1], last):
        split -= 1
    current = statistics.median(amounts[split:])
    if split == 0:
        return current, None
    earlier = amounts[:split]
    level = statistics.median(earlier)
    if len(earlier) < 2 or not all(_same_level(a, level) for a in earlier):
        return None
    return current, level


def _same_level(amount: Decimal, level: Decimal) -> bool:
    return abs(amount - level) <= AMOUNT_TOLERANCE * level


def next_date(cadence: str, dates: list[dt.date]) -> dt.date:
    """When the next charge is due: a week or a year after the last, or the usual day of the next month."""
    last = dates[-1]
    if cadence == "monthly":
        # the most common day of the month (a weekend moves some charges by a day or two, into the next month)
        usual_day = max(statistics.multimode([d.day for d in dates[-12:]]))
        following = add_months(last.replace(day=1), 1)
        return following.replace(day=min(usual_day, days_in_month(following.year, following.month)))
    return _step(cadence, last, 1)


def _step(cadence: str, start: dt.date, steps: int) -> dt.date:
    """`steps` cadences after `start` (a month or year later on the same day, clamped to a shorter month)."""
    if cadence == "weekly":
        return start + dt.timedelta(days=7 * steps)
    return add_months(start, steps * (12 if cadence == "yearly" else 1))

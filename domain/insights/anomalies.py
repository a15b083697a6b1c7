"""Unusual transactions: robust outliers per payee or category, a new payee with a large amount, a duplicate charge."""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from domain.insights.history import Txn
from domain.money import format_amount

#: Iglewicz and Hoaglin's modified z-score: 0.6745 (x - median) / MAD above this is an outlier.
Z_THRESHOLD = Decimal("3.5")
#: The normal distribution's MAD-to-deviation constant, as the modified z-score uses it.
MAD_CONSTANT = Decimal("0.6745")
#: The MAD never counts as less than this share of the median: a history of identical charges (a subscription)
#: must not make a few cents more an outlier.
MAD_FLOOR = Decimal("0.10")
#: Past charges needed before a payee's or category's statistics are trusted.
MIN_HISTORY = 5
#: A first charge from a payee is large above this quantile of the household's recent spending...
LARGE_QUANTILE = 95
#: ... and at least this many times its median.
LARGE_FACTOR = Decimal(5)
#: Household spending needed to tell what is large.
MIN_SPENDING_HISTORY = 20
#: The same payee and amount this many days apart or closer is a duplicate charge...
DUPLICATE_WINDOW_DAYS = 2
#: ... unless the payee is usually charged this often anyway (a daily coffee).
FREQUENT_GAP_DAYS = 3

KINDS = ("outlier", "new_payee_large", "duplicate_charge")


@dataclass(frozen=True)
class Finding:
    """One reason a transaction looks unusual."""

    kind: str
    reason: str


def modified_z(amount: Decimal, history: list[Decimal]) -> Decimal:
    """The modified z-score of `amount` against `history` (median and MAD, the MAD floored)."""
    ordered = sorted(history)
    median = statistics.median(ordered)
    mad = statistics.median(_deviations(ordered, median))
    scale = max(mad, MAD_FLOOR * abs(median), Decimal("0.01"))
    return MAD_CONSTANT * (amount - median) / scale


def _deviations(ordered: list[Decimal], median: Decimal) -> list[Decimal]:
    """|a - median| for each of the sorted amounts, as two ascending runs (those below the median, then the rest):
    sorting them is one merge, not a full sort of 500 amounts for every transaction examined."""
    split = bisect.bisect_left(ordered, median)
    below = [median - a for a in reversed(ordered[:split])]
    return below + [a - median for a in ordered[split:]]


def outlier(txn: Txn, payee_history: list[Decimal], category_history: list[Decimal], currency: str,
            ) -> Finding | None:
    """An unusually large amount against the payee's past charges, or the category's when the payee's are too few.
    Only the high side counts: spending less than usual is not a problem."""
    if len(payee_history) >= MIN_HISTORY:
        history, what = payee_history, f"at {txn.payee or 'this payee'}"
    elif len(category_history) >= MIN_HISTORY and txn.category:
        history, what = category_history, f"in {txn.category}"
    else:
        return None
    z = modified_z(txn.amount, history)
    if z <= Z_THRESHOLD:
        return None
    median = format_amount(statistics.median(history), currency)
    return Finding("outlier", f"{_money(txn.amount, currency)} {what} is far above the usual {median} {currency} "
                              f"(modified z-score {z.quantize(Decimal('0.1'))}, over {len(history)} past charges)")


def quantile(values: list[Decimal], percent: int) -> Decimal:
    """The `percent` quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Spending:
    """What a household usually spends per transaction: how many it had, the median and the 95th percentile."""

    count: int
    median: Decimal
    p95: Decimal

    @classmethod
    def of(cls, amounts: list[Decimal]) -> Spending:
        """The profile of some amounts."""
        if not amounts:
            return cls(0, Decimal(0), Decimal(0))
        return cls(len(amounts), statistics.median(amounts), quantile(amounts, LARGE_QUANTILE))


def new_payee_large(txn: Txn, payee_seen_before: bool, spending: Spending, currency: str) -> Finding | None:
    """A first charge from a payee that is large for this household (above its 95th percentile and 5x its
    median spending)."""
    if payee_seen_before or spending.count < MIN_SPENDING_HISTORY:
        return None
    bound = max(spending.p95, LARGE_FACTOR * spending.median)
    if txn.amount <= bound:
        return None
    return Finding("new_payee_large", f"first payment to {txn.payee or 'a new payee'}, {_money(txn.amount, currency)}, "
                                      f"is larger than 95% of your recent spending (above {_money(bound, currency)})")


def duplicate_charge(txn: Txn, payee_history: list[Txn], currency: str) -> Finding | None:
    """The same payee charged the same amount within two days before, for a payee not usually charged that often.
    Only the later charge of a pair is flagged (by date, then id), whichever of them is examined first."""
    twin = next((t for t in payee_history if t.amount == txn.amount and t.type == txn.type
                 and (t.occurred_on, t.id) < (txn.occurred_on, txn.id)
                 and (txn.occurred_on - t.occurred_on).days <= DUPLICATE_WINDOW_DAYS), None)
    if twin is None or _usually_frequent([t.occurred_on for t in payee_history if t.id != txn.id]):
        return None
    return Finding("duplicate_charge", f"{txn.payee or 'This payee'} charged {_money(txn.amount, currency)} "
                                       f"twice within {DUPLICATE_WINDOW_DAYS} days ({twin.occurred_on.isoformat()} and "
                                       f"{txn.occurred_on.isoformat()})")


def _money(amount: Decimal, currency: str) -> str:
    return f"{format_amount(amount, currency)} {currency}"


def _usually_frequent(dates: list[dt.date]) -> bool:
    """Whether these past charges come every few days anyway (then two close together are normal)."""
    ordered = sorted(dates)
    gaps = [(b - a).days for a, b in zip(ordered, ordered[1:], strict=False)]
    return len(gaps) >= MIN_HISTORY - 1 and statistics.median(gaps) <= FREQUENT_GAP_DAYS


def examine(txn: Txn, payee_history: list[Txn], category_history: list[Decimal],
            spending: Callable[[], Spending], currency: str) -> list[Finding]:
    """Every reason `txn` looks unusual, given the payee's other charges (any date; `txn` itself is skipped), the
    category's earlier amounts and, asked only for a payee never seen before, the household's usual spending.
    Only expenses are examined; a large first charge from a payee is not also reported as a category outlier."""
    if txn.type != "expense":
        return []
    earlier = [t.amount for t in payee_history if t.id != txn.id and t.type == txn.type]
    first_large = None if earlier else new_payee_large(txn, False, spending(), currency)
    # a large first charge is one alert, not also an outlier of its category
    found = [first_large or outlier(txn, earlier, category_history, currency),
             duplicate_charge(txn, payee_history, currency)]
    return [f for f in found if f is not None]

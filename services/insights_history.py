"""What recurring payments and the forecast read of a household's history, in its base currency: monthly totals
from SQL, and one by one only the transactions of payees that may be recurring.

A payee charged more often than any cadence allows (groceries, coffee: `domain.insights.recurring.may_recur`)
cannot be recurring, so its transactions count only in the monthly totals, which SQL sums. At a million
transactions that leaves out nearly every row: reading them all took seconds, most of it making Python values.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, text

from domain.insights.forecast import Summary
from domain.insights.history import Txn
from domain.insights.payees import payee_key
from domain.insights.recurring import may_recur
from domain.money import quantize
from services.context import Caller
from services.uow import UnitOfWork

#: A household's recorded income and expenses since a day (transfers are not spending).
_LIVE = """t.household_id = :household_id AND t.status = 'recorded' AND t.deleted_at IS NULL
           AND t.type IN ('expense', 'income') AND t.occurred_on >= :since"""
#: Converted into the base currency: the rest is left out, never counted 1:1.
_CONVERTED = "t.base_amount IS NOT NULL AND t.base_currency IS NOT DISTINCT FROM CAST(:base AS text)"

#: How many converted transactions each (payee as written, type) has up to the day.
_PAYEE_COUNTS = text(f"""
    SELECT t.payee, t.type, count(*) FROM transactions t
     WHERE {_LIVE} AND {_CONVERTED} AND t.occurred_on <= :on
     GROUP BY t.payee, t.type""")
#: Per (month, type, up to the day or after it): the converted sum, how many were not converted, the first day.
_MONTHS = text(f"""
    SELECT CAST(date_trunc('month', t.occurred_on) AS date), t.type, t.occurred_on <= :on,
           sum(t.base_amount) FILTER (WHERE {_CONVERTED}), count(*) FILTER (WHERE NOT ({_CONVERTED})),
           min(t.occurred_on) FILTER (WHERE {_CONVERTED})
      FROM transactions t WHERE {_LIVE}
     GROUP BY 1, 2, 3""")
#: The converted transactions of some payees up to the day, each as the driver's tuple.
_CHARGES = text(f"""
    SELECT CAST(t.id AS text), t.occurred_on, t.base_amount, t.type, t.payee, c.name
      FROM transactions t LEFT JOIN categories c ON c.id = t.category_id
     WHERE {_LIVE} AND {_CONVERTED} AND t.occurred_on <= :on AND t.payee = ANY(CAST(:payees AS text[]))""")


@dataclass(frozen=True)
class History:
    """A household's history up to a day, as recurring payments and the forecast read it."""

    summary: Summary
    #: Month -> income less spending, every converted transaction since the first day read (later ones too).
    flows: dict[dt.date, Decimal]
    #: Transactions without a conversion into the base currency (yet): left out, never counted 1:1.
    unconverted: int


def read_history(caller: Caller, since: dt.date, on: dt.date, uow: UnitOfWork) -> History:
    """The household's income and spending from `since`: monthly totals, and the transactions up to `on` of every
    payee that may be recurring."""
    params = {"household_id": caller.household_id, "since": since, "on": on, "base": caller.base_currency}
    connection = uow.session.connection()
    kept = _payees_that_may_recur(connection.execute(_PAYEE_COUNTS, params).all(), (on - since).days)
    totals, flows, first_day, unconverted = _months(connection.execute(_MONTHS, params).all(), caller.base_currency)
    txns = _charges(connection, params, kept, caller.base_currency) if kept else []
    return History(Summary(txns, totals, first_day), flows, unconverted)


def _payees_that_may_recur(counts: list[tuple], span_days: int) -> set[tuple[str, str]]:
    """The (payee as written, type) pairs whose group (normalized payee, type) is not charged too often to recur."""
    grouped = [(payee, kind, (payee_key(payee), kind), count) for payee, kind, count in counts]
    per_group: dict[tuple[str, str], int] = defaultdict(int)
    for _, _, group, count in grouped:
        per_group[group] += count
    return {(payee, kind) for payee, kind, group, _ in grouped if may_recur(per_group[group], span_days)}


def _months(rows: list[tuple], base: str
            ) -> tuple[dict[tuple[dt.date, str], Decimal], dict[dt.date, Decimal], dt.date | None, int]:
    """(totals up to the day per (month, type), net flows per month, the first day up to it, unconverted)."""
    totals: dict[tuple[dt.date, str], Decimal] = {}
    flows: dict[dt.date, Decimal] = defaultdict(Decimal)
    first_days, unconverted = [], 0
    for month, kind, known, total, left_out, first in rows:
        unconverted += left_out
        if total is None:
            continue
        total = quantize(total, base)
        flows[month] += total if kind == "income" else -total
        if known:
            totals[(month, kind)] = total
            first_days.append(first)
    return totals, dict(flows), min(first_days, default=None), unconverted


def _charges(connection: Connection, params: dict, kept: set[tuple[str, str]], base: str) -> list[Txn]:
    """The transactions of the kept (payee, type) pairs (a payee's other type may be too frequent: left out)."""
    result = connection.execute(_CHARGES, {**params, "payees": sorted({payee for payee, _ in kept})})
    rows: list[tuple] = result.cursor.fetchall()  # the driver's tuples: no Row for each
    result.close()
    make = tuple.__new__
    return [make(Txn, (ident, day, quantize(amount, base), kind, payee, category))
            for ident, day, amount, kind, payee, category in rows if (payee, kind) in kept]

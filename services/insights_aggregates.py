"""Keeping the daily and monthly aggregates in step with the ledger: recomputed from SQL, the truth.

Every event names the days it touched (a transaction's date, an import's date range) or, for events that move
history at large (a merge, a rule applied over history, a reverted import, a new base currency), the whole
household. Those days are recomputed from the transactions in one statement, then the months that hold them
from the days. Recomputing is idempotent and order-free: a redelivered or reordered event writes the same rows.
A per-household advisory lock, taken before either statement reads, makes the last writer also the one that
read last, so concurrent workers never leave an older picture behind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import text

from domain.events import Event
from models.insights import NO_CATEGORY
from services.uow import UnitOfWork

#: The widest range: a whole household's history.
EVERYTHING = (dt.date(1, 1, 1), dt.date(9999, 12, 31))
#: Events about one transaction: its day (or days) are recomputed.
TRANSACTION_EVENTS = frozenset({"TransactionRecorded", "TransactionUpdated", "TransactionDeleted",
                                "CurrencyConverted", "CurrencyConversionMissing"})
#: Events that may move any part of a household's history: all of it is recomputed.
HOUSEHOLD_EVENTS = frozenset({"ImportReverted", "RuleApplied", "HistoryReconverted", "BaseCurrencyChanged"})
#: Namespace of the advisory locks taken here (the first key of PostgreSQL's two-key form).
_LOCK_SPACE = 9009

_KEY = "account_id, category_id, kind, currency, base_currency"
_TOTALS = "transactions, amount, base_amount, unconverted, account_amount"

#: Each recorded transaction as the legs it moves: one, or two for a transfer (out of one account, into another).
_LEGS = f"""
    SELECT t.occurred_on AS day, t.account_id, coalesce(t.category_id, '{NO_CATEGORY}') AS category_id,
           CASE WHEN t.type = 'transfer' THEN 'transfer_out' ELSE t.type END AS kind,
           t.currency, t.base_currency, t.amount, t.base_amount, t.account_amount
      FROM transactions t
     WHERE t.household_id = :household AND t.occurred_on BETWEEN :first AND :last
       AND t.status = 'recorded' AND t.deleted_at IS NULL
    UNION ALL
    SELECT t.occurred_on, t.counter_account_id, coalesce(t.category_id, '{NO_CATEGORY}'), 'transfer_in',
           t.currency, t.base_currency, t.amount, t.base_amount, t.account_amount
      FROM transactions t
     WHERE t.household_id = :household AND t.occurred_on BETWEEN :first AND :last
       AND t.status = 'recorded' AND t.deleted_at IS NULL AND t.type = 'transfer'
       AND t.counter_account_id IS NOT NULL"""

_EXCLUDED = ", ".join("EXCLUDED." + column for column in _TOTALS.split(", "))
_CURRENT = ", ".join("a." + column for column in _TOTALS.split(", "))


def _replacing(table: str, period: str, fresh: str) -> str:
    """A statement that makes `table`'s rows of one household between :first and :last (by its `period` column)
    equal to the rows of the query `fresh`: rows no longer there deleted, changed ones updated, equal ones left
    untouched (no dead tuple for a redelivered event)."""
    return f"""
    WITH fresh AS ({fresh}
    ), gone AS (
        DELETE FROM {table} a
         WHERE a.household_id = :household AND a.{period} BETWEEN :first AND :last
           AND NOT EXISTS (SELECT 1 FROM fresh f WHERE (f.{period}, f.account_id, f.category_id, f.kind, f.currency,
                           f.base_currency) = (a.{period}, a.account_id, a.category_id, a.kind, a.currency,
                           a.base_currency))
    )
    INSERT INTO {table} AS a (household_id, {period}, {_KEY}, {_TOTALS})
    SELECT household_id, {period}, {_KEY}, {_TOTALS} FROM fresh
    ON CONFLICT (household_id, {period}, {_KEY}) DO UPDATE
       SET ({_TOTALS}) = ({_EXCLUDED})
     WHERE ({_CURRENT}) IS DISTINCT FROM ({_EXCLUDED})"""


#: Recompute the daily rows of a household's date range from its transactions.
_RECOMPUTE_DAYS = text(_replacing("insights_daily_aggregates", "day", f"""
        SELECT CAST(:household AS uuid) AS household_id, day, {_KEY}, count(*) AS transactions,
               sum(amount) AS amount, coalesce(sum(base_amount), 0) AS base_amount,
               count(*) FILTER (WHERE base_amount IS NULL) AS unconverted,
               coalesce(sum(account_amount), 0) AS account_amount
          FROM ({_LEGS}) AS legs
         GROUP BY day, {_KEY}"""))

#: Recompute the monthly rows of a household's months from its daily rows.
_RECOMPUTE_MONTHS = text(_replacing("insights_monthly_aggregates", "month", f"""
        SELECT household_id, CAST(date_trunc('month', day) AS date) AS month, {_KEY},
               sum(transactions) AS transactions, sum(amount) AS amount, sum(base_amount) AS base_amount,
               sum(unconverted) AS unconverted, sum(account_amount) AS account_amount
          FROM insights_daily_aggregates
         WHERE household_id = :household AND day BETWEEN :first AND :last
         GROUP BY household_id, month, {_KEY}"""))


@dataclass(frozen=True)
class Span:
    """An inclusive range of days of one household to recompute."""

    household_id: uuid.UUID
    first: dt.date
    last: dt.date


def month_bounds(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The first day of `first`'s month and the last day of `last`'s month."""
    start = first.replace(day=1)
    if last.month == 12:
        end = last.replace(day=31)
    else:
        end = last.replace(month=last.month + 1, day=1) - dt.timedelta(days=1)
    return start, end


def recompute(span: Span, uow: UnitOfWork) -> None:
    """Recompute the daily rows of a span from the transactions, then the months holding it. Idempotent."""
    with uow:
        _lock(span.household_id, uow)
        _recompute_locked(span, uow)
        uow.commit()


def _lock(household_id: uuid.UUID, uow: UnitOfWork) -> None:
    """Serialize recomputes of one household until the end of the transaction."""
    key = int.from_bytes(household_id.bytes[:4], "big", signed=True)
    uow.session.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _LOCK_SPACE, "key": key})


def _recompute_locked(span: Span, uow: UnitOfWork) -> None:
    params: dict[str, Any] = {"household": span.household_id, "first": span.first, "last": span.last}
    uow.session.execute(_RECOMPUTE_DAYS, params)
    first, last = month_bounds(span.first, span.last)
    uow.session.execute(_RECOMPUTE_MONTHS, {**params, "first": first, "last": last})


def rebuild_household(household_id: uuid.UUID, uow: UnitOfWork) -> None:
    """Recompute a household's whole history."""
    recompute(Span(household_id, *EVERYTHING), uow)


def rebuild_all(uow: UnitOfWork) -> int:
    """Recompute every household's aggregates (the operator CLI; the benchmark); how many households."""
    with uow:
        households = list(uow.session.scalars(text("SELECT id FROM households ORDER BY id")))
    for household_id in households:
        rebuild_household(household_id, uow)
    return len(households)


def spans_for(event: Event, uow: UnitOfWork) -> list[Span]:
    """The days of its household an event may have changed (none for events that change no total)."""
    return _spans(event, uow, _days_now([event], uow))


def _spans(event: Event, uow: UnitOfWork, days_now: dict[uuid.UUID, dt.date]) -> list[Span]:
    """`spans_for`, given the day of each transaction the events name as it is now in SQL."""
    if event.household_id is None:
        return []
    household = uuid.UUID(event.household_id)
    payload = event.payload or {}
    if event.type in HOUSEHOLD_EVENTS:
        return [] if event.type == "RuleApplied" and not payload.get("changed") else [Span(household, *EVERYTHING)]
    if event.type == "TransactionUpdated" and "occurred_on" in payload.get("changed", []):
        return [Span(household, *EVERYTHING)]  # the date it left is not in the event: recompute it all
    if event.type in TRANSACTION_EVENTS:
        return [Span(household, day, day) for day in _transaction_days(payload, days_now)]
    if event.type == "ImportFinished":
        return _import_span(household, payload["import_id"], uow)
    if event.type == "CategoriesMerged":
        return _orphaned_span(household, uow)
    return []


def _days_now(events: list[Event], uow: UnitOfWork) -> dict[uuid.UUID, dt.date]:
    """The day in SQL of each transaction the events about one transaction name, in one query for all."""
    ids = {uuid.UUID(e.payload["transaction_id"]) for e in events
           if e.household_id is not None and e.type in TRANSACTION_EVENTS and (e.payload or {}).get("transaction_id")}
    if not ids:
        return {}
    with uow:
        return dict(uow.session.execute(text("SELECT id, occurred_on FROM transactions WHERE id = ANY(:ids)"),
                                        {"ids": list(ids)}).tuples().all())


def _transaction_days(payload: dict[str, Any], days_now: dict[uuid.UUID, dt.date]) -> list[dt.date]:
    """The day in the event and the transaction's day now in SQL (they differ after a later date change)."""
    days = {dt.date.fromisoformat(payload["occurred_on"])} if payload.get("occurred_on") else set()
    now = days_now.get(uuid.UUID(payload["transaction_id"]))
    return sorted(days | ({now} if now else set()))


def _import_span(household: uuid.UUID, import_id: str, uow: UnitOfWork) -> list[Span]:
    """The date range an import's rows landed in."""
    with uow:
        first, last = uow.session.execute(text(
            "SELECT min(occurred_on), max(occurred_on) FROM transactions WHERE import_id = :id"),
            {"id": uuid.UUID(import_id)}).one()
    return [Span(household, first, last)] if first else []


def _orphaned_span(household: uuid.UUID, uow: UnitOfWork) -> list[Span]:
    """The days whose rows still name a category that no longer exists (merged into another)."""
    with uow:
        first, last = uow.session.execute(text(f"""
            SELECT min(day), max(day) FROM insights_daily_aggregates a
             WHERE a.household_id = :household AND a.category_id <> '{NO_CATEGORY}'
               AND NOT EXISTS (SELECT 1 FROM categories c WHERE c.id = a.category_id)"""),
            {"household": household}).one()
    return [Span(household, first, last)] if first else []


def apply_event(event: Event, uow: UnitOfWork) -> int:
    """Bring the aggregates up to date with one ledger event; how many spans were recomputed. Safe to run twice."""
    return apply_events([event], uow)


def apply_events(events: list[Event], uow: UnitOfWork) -> int:
    """Bring the aggregates up to date with ledger events, each span they touched recomputed once, household by
    household (the same lock order in every process), in one transaction; how many spans were recomputed. Safe
    to run twice."""
    days_now = _days_now(events, uow)
    spans = sorted({span for event in events for span in _spans(event, uow, days_now)},
                   key=lambda s: (s.household_id, s.first, s.last))
    if not spans:
        return 0
    with uow:
        for household_id, group in groupby(spans, key=lambda s: s.household_id):
            _lock(household_id, uow)
            for span in group:
                _recompute_locked(span, uow)
        uow.commit()
    return len(spans)

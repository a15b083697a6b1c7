"""Keeping the daily and monthly aggregates in step with the ledger: recomputed from SQL, the truth.

Every event names the days it touched (a transaction's date, an import's date range) or, for events that move
history at large (a merge, a rule applied over history, a reverted import, a new base currency), the whole
household. The days of a whole batch of events are recomputed from the transactions, and the months that hold
them from the days, in one statement. Recomputing is idempotent and order-free: a redelivered or reordered event
writes the same rows. A per-household advisory lock, taken before that statement reads, makes the last writer
also the one that read last, so concurrent workers never leave an older picture behind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
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
_EXCLUDED = ", ".join("EXCLUDED." + column for column in _TOTALS.split(", "))
_CURRENT = ", ".join("a." + column for column in _TOTALS.split(", "))


def _replacing(name: str, table: str, period: str, ranges: str, fresh: str) -> str:
    """CTEs that make `table`'s rows (by its `period` column) within the CTE `ranges` (household_id, first, last;
    disjoint) equal to the rows of the CTE `fresh`: rows no longer there deleted, changed ones updated, equal ones
    left untouched (no dead tuple for a redelivered event)."""
    key = f"household_id, {period}, {_KEY}".split(", ")
    stored, gone = ", ".join("a." + column for column in key), ", ".join("g." + column for column in key)
    # The rows no longer there are found by EXCEPT (hashed or sorted): an anti-join against a CTE, whose size the
    # planner cannot know, may become a nested loop comparing every stored row with every fresh one.
    return f"""
    {name}_gone AS (
        DELETE FROM {table} a USING (
            SELECT {stored} FROM {ranges} r JOIN {table} a
                ON a.household_id = r.household_id AND a.{period} BETWEEN r.first AND r.last
            EXCEPT
            SELECT {", ".join(key)} FROM {fresh}
        ) g
         WHERE ({stored}) = ({gone})
    ), {name}_kept AS (
        INSERT INTO {table} AS a ({", ".join(key)}, {_TOTALS})
        SELECT {", ".join(key)}, {_TOTALS} FROM {fresh}
        ON CONFLICT ({", ".join(key)}) DO UPDATE SET ({_TOTALS}) = ({_EXCLUDED})
         WHERE ({_CURRENT}) IS DISTINCT FROM ({_EXCLUDED})
    )"""


#: Recompute, for each (household, first day, last day) of the spans (disjoint), the daily rows from the
#: transactions, each as the legs it moves (one, or two for a transfer: out of one account, into another); and for
#: each (household, first day, last day) of the months holding them (disjoint) the monthly rows from the daily
#: ones; in one statement. Its parts all read the snapshot taken before it, so the months add up the daily rows
#: the statement leaves: the fresh ones inside the spans and the stored ones outside them.
_RECOMPUTE = text(f"""
    WITH spans AS (
        SELECT * FROM unnest(CAST(:households AS uuid[]), CAST(:firsts AS date[]), CAST(:lasts AS date[]))
               AS s(household_id, first, last)
    ), months AS (
        SELECT * FROM unnest(CAST(:month_households AS uuid[]), CAST(:month_firsts AS date[]),
                             CAST(:month_lasts AS date[])) AS m(household_id, first, last)
    ), days AS (
        SELECT t.household_id, t.occurred_on AS day, l.account_id,
               coalesce(t.category_id, '{NO_CATEGORY}') AS category_id, l.kind, t.currency, t.base_currency,
               count(*) AS transactions, sum(t.amount) AS amount, coalesce(sum(t.base_amount), 0) AS base_amount,
               count(*) FILTER (WHERE t.base_amount IS NULL) AS unconverted,
               coalesce(sum(t.account_amount), 0) AS account_amount
          FROM spans s
          JOIN transactions t ON t.household_id = s.household_id AND t.occurred_on BETWEEN s.first AND s.last
         CROSS JOIN LATERAL (VALUES (t.account_id, CASE WHEN t.type = 'transfer' THEN 'transfer_out' ELSE t.type END),
                                    (t.counter_account_id, 'transfer_in')) AS l(account_id, kind)
         WHERE t.status = 'recorded' AND t.deleted_at IS NULL
           AND (l.kind <> 'transfer_in' OR t.type = 'transfer' AND t.counter_account_id IS NOT NULL)
         GROUP BY t.household_id, t.occurred_on, l.account_id, t.category_id, l.kind, t.currency, t.base_currency
    ),{_replacing("d", "insights_daily_aggregates", "day", "spans", "days")}, month_days AS (
        SELECT d.household_id, d.day, {_KEY}, {_TOTALS}
          FROM months m
          JOIN insights_daily_aggregates d ON d.household_id = m.household_id AND d.day BETWEEN m.first AND m.last
         WHERE NOT EXISTS (SELECT FROM spans s WHERE s.household_id = d.household_id
                                                 AND d.day BETWEEN s.first AND s.last)
        UNION ALL
        SELECT household_id, day, {_KEY}, {_TOTALS} FROM days
    ), by_month AS (
        SELECT household_id, CAST(date_trunc('month', day) AS date) AS month, {_KEY},
               sum(transactions) AS transactions, sum(amount) AS amount, sum(base_amount) AS base_amount,
               sum(unconverted) AS unconverted, sum(account_amount) AS account_amount
          FROM month_days
         GROUP BY household_id, month, {_KEY}
    ),{_replacing("m", "insights_monthly_aggregates", "month", "months", "by_month")}
    SELECT""")

#: Serialize recomputes of these households (in this order) until the end of the transaction.
_LOCK = text("SELECT pg_advisory_xact_lock(:space, key) FROM unnest(CAST(:keys AS integer[])) AS key")

#: The day in SQL of each of these transactions.
_DAYS_NOW = text("SELECT id, occurred_on FROM transactions WHERE id = ANY(:ids)")


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
        _recompute_all([span], uow)
        uow.commit()


def _recompute_all(spans: list[Span], uow: UnitOfWork) -> None:
    """Lock the spans' households, then recompute their days and months in one statement."""
    households = sorted({span.household_id for span in spans})  # the same lock order in every process
    uow.session.execute(_LOCK, {"space": _LOCK_SPACE, "keys": [_lock_key(h) for h in households]})
    days = _disjoint([(span.household_id, span.first, span.last) for span in spans])
    months = _disjoint([(household, *month_bounds(first, last)) for household, first, last in days])
    uow.session.execute(_RECOMPUTE, {
        "households": [h for h, _, _ in days], "firsts": [f for _, f, _ in days], "lasts": [la for _, _, la in days],
        "month_households": [h for h, _, _ in months], "month_firsts": [f for _, f, _ in months],
        "month_lasts": [la for _, _, la in months]})


def _lock_key(household_id: uuid.UUID) -> int:
    return int.from_bytes(household_id.bytes[:4], "big", signed=True)


def _disjoint(ranges: list[tuple[uuid.UUID, dt.date, dt.date]]) -> list[tuple[uuid.UUID, dt.date, dt.date]]:
    """The same days of each household as disjoint ranges (overlapping ones merged): in the statement, a day
    joined to two ranges would be counted twice."""
    merged: list[tuple[uuid.UUID, dt.date, dt.date]] = []
    for household, first, last in sorted(ranges):
        if merged and merged[-1][0] == household and first <= merged[-1][2]:
            merged[-1] = (household, merged[-1][1], max(last, merged[-1][2]))
        else:
            merged.append((household, first, last))
    return merged


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
    if not _transaction_ids([event]):
        return _spans(event, uow, {})
    with uow:
        return _spans(event, uow, _days_now([event], uow))


def _spans(event: Event, uow: UnitOfWork, days_now: dict[uuid.UUID, dt.date]) -> list[Span]:
    """`spans_for`, given the day of each transaction the events name as it is now in SQL."""
    if event.household_id is None:
        return []
    household = uuid.UUID(event.household_id)
    payload = event.payload or {}
    if event.type in HOUSEHOLD_EVENTS:
        return [] if event.type == "RuleApplied" and not payload.get("changed") else [Span(household, *EVERYTHING)]
    if event.type == "TransactionUpdated" and "occurred_on" in payload.get("changed", []) \
            and not payload.get("previous_occurred_on"):
        return [Span(household, *EVERYTHING)]  # an event from before the day it left was carried: recompute it all
    if event.type in TRANSACTION_EVENTS:
        return [Span(household, day, day) for day in _transaction_days(payload, days_now)]
    if event.type == "ImportFinished":
        return _import_span(household, payload["import_id"], uow)
    if event.type == "CategoriesMerged":
        return _orphaned_span(household, uow)
    return []


def _transaction_ids(events: list[Event]) -> set[uuid.UUID]:
    """The transactions named by the events about one transaction."""
    return {uuid.UUID(e.payload["transaction_id"]) for e in events
            if e.household_id is not None and e.type in TRANSACTION_EVENTS and (e.payload or {}).get("transaction_id")}


def _days_now(events: list[Event], uow: UnitOfWork) -> dict[uuid.UUID, dt.date]:
    """The day in SQL of each transaction the events about one transaction name, in one query for all, in the
    unit of work's open transaction."""
    ids = _transaction_ids(events)
    if not ids:
        return {}
    return dict(uow.session.execute(_DAYS_NOW, {"ids": list(ids)}).tuples().all())


def _transaction_days(payload: dict[str, Any], days_now: dict[uuid.UUID, dt.date]) -> list[dt.date]:
    """The day in the event, the day a date change moved it from, and the transaction's day now in SQL (they differ
    after a later date change)."""
    days = {dt.date.fromisoformat(payload[key]) for key in ("occurred_on", "previous_occurred_on") if payload.get(key)}
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
    """Bring the aggregates up to date with ledger events, in one transaction: the days they touched (each once)
    and the months holding them recomputed in one statement, their households locked first in one (in the same
    order in every process); how many spans were recomputed. Safe to run twice."""
    with uow:
        days_now = _days_now(events, uow)
        spans = {span for event in events for span in _spans(event, uow, days_now)}
        if not spans:
            return 0
        _recompute_all(list(spans), uow)
        uow.commit()
    return len(spans)

"""Insights on a household's history: recurring payments, unusual transactions (flagged as they land) and the
forecast, read from SQL in the base currency (a transaction without a conversion is left out, never taken 1:1;
transfers are not spending)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from domain.insights.anomalies import DUPLICATE_WINDOW_DAYS, Finding, Spending, examine
from domain.insights.forecast import Forecast, forecast
from domain.insights.history import Txn
from domain.insights.payees import payee_key
from domain.insights.recurring import Recurring, find_recurring
from domain.money import format_amount, quantize
from domain.periods import local_today
from models.anomalies import Anomaly
from models.ledger import Account, Category, Transaction
from services.context import Caller
from services.fx_rates import offline_rate
from services.transaction_queries import MAX_LIMIT, decode_cursor, encode_cursor
from services.uow import UnitOfWork

#: How far back detection reads a payee's and a category's charges.
LOOKBACK_DAYS = 365
#: At most this many past charges per payee or category (the most recent).
HISTORY_LIMIT = 500
#: The household's usual spending (asked only for a payee never seen before) is read over this many days...
SPENDING_DAYS = 90
#: ... from at most this many of its most recent expenses.
SPENDING_SAMPLE = 1000
#: Imported expenses this recent are examined when their import finishes...
IMPORT_RECENT_DAYS = 35
#: ... at most this many of them.
IMPORT_EXAMINE_LIMIT = 500
#: Months of history recurring payments and the forecast read.
HISTORY_MONTHS = 25
#: The shortest word of a payee key the text index is searched by.
MIN_SEARCH_WORD = 3


def today(caller: Caller) -> dt.date:
    """Today in the caller's time zone."""
    return local_today(dt.datetime.now(dt.UTC), caller.timezone)


# --- unusual transactions, as they land ---------------------------------------------------------------------------


def _live(query: Select, household_id: uuid.UUID) -> Select:
    """Only the household's recorded transactions that still exist."""
    return query.where(Transaction.household_id == household_id, Transaction.status == "recorded",
                       Transaction.deleted_at.is_(None))


def _as_txn(txn: Transaction, category: str | None) -> Txn:
    return Txn(str(txn.id), txn.occurred_on, quantize(txn.amount, txn.currency), txn.type, txn.payee, category)


def _payee_history(txn: Transaction, key: str, uow: UnitOfWork) -> list[Txn]:
    """The payee's charges in the transaction's currency around it (by the trigram index on the payee's text,
    then by normalized payee)."""
    written = txn.payee.lower()  # a key word as the payee writes it ("E.ON" is "eon" in the key, not in the text)
    words = sorted((w for w in key.split() if len(w) >= MIN_SEARCH_WORD and w in written), key=len, reverse=True)
    text = func.lower(Transaction.payee + " " + Transaction.description)
    matches = (text.like("%" + words[0].replace("%", "").replace("_", "\\_") + "%") if words
               else func.lower(Transaction.payee) == written)
    rows = uow.session.execute(_live(select(Transaction.id, Transaction.occurred_on, Transaction.amount,
                                            Transaction.type, Transaction.payee), txn.household_id).where(
        matches, Transaction.currency == txn.currency, Transaction.type == txn.type,
        Transaction.occurred_on.between(txn.occurred_on - dt.timedelta(days=LOOKBACK_DAYS),
                                        txn.occurred_on + dt.timedelta(days=DUPLICATE_WINDOW_DAYS)),
    ).order_by(Transaction.occurred_on.desc()).limit(HISTORY_LIMIT))
    return [Txn(str(ident), day, quantize(amount, txn.currency), kind, payee)
            for ident, day, amount, kind, payee in rows if payee_key(payee) == key]


def _category_history(txn: Transaction, uow: UnitOfWork) -> list[Decimal]:
    """The category's earlier spending in the transaction's currency."""
    if txn.category_id is None:
        return []
    return list(uow.session.scalars(_live(select(Transaction.amount), txn.household_id).where(
        Transaction.category_id == txn.category_id, Transaction.currency == txn.currency,
        Transaction.type == "expense", Transaction.id != txn.id,
        Transaction.occurred_on.between(txn.occurred_on - dt.timedelta(days=LOOKBACK_DAYS), txn.occurred_on),
    ).order_by(Transaction.occurred_on.desc()).limit(HISTORY_LIMIT)))


def _spending(txn: Transaction, uow: UnitOfWork) -> Spending:
    """The household's usual spending per transaction in this currency: its last 1,000 expenses of the 90 days
    before (one backward index range, however large the household)."""
    recent = _live(select(Transaction.amount.label("amount")), txn.household_id).where(
        Transaction.type == "expense", Transaction.currency == txn.currency, Transaction.id != txn.id,
        Transaction.occurred_on.between(txn.occurred_on - dt.timedelta(days=SPENDING_DAYS), txn.occurred_on),
    ).order_by(Transaction.occurred_on.desc()).limit(SPENDING_SAMPLE).subquery()
    count, median, p95 = uow.session.execute(select(
        func.count(), func.percentile_disc(0.5).within_group(recent.c.amount),
        func.percentile_disc(0.95).within_group(recent.c.amount))).one()
    return Spending(count, median or Decimal(0), p95 or Decimal(0))


def anomaly_payload(txn: Transaction, finding: Finding) -> dict[str, str]:
    """What an AnomalyDetected event says."""
    return {"transaction_id": str(txn.id), "account_id": str(txn.account_id), "kind": finding.kind,
            "reason": finding.reason, "payee": txn.payee, "amount": format_amount(txn.amount, txn.currency),
            "currency": txn.currency, "occurred_on": txn.occurred_on.isoformat()}


def _flag(txn: Transaction, finding: Finding, cause: Event, uow: UnitOfWork) -> bool:
    """Store a finding and announce it, unless this (transaction, kind) was flagged before."""
    event = Event(type="AnomalyDetected", payload=anomaly_payload(txn, finding), household_id=str(txn.household_id),
                  user_id=str(txn.user_id) if txn.user_id else None, correlation_id=txn.correlation_id,
                  causation_id=cause.event_id)
    stored = uow.session.execute(insert(Anomaly).values(
        id=uuid.uuid4(), household_id=txn.household_id, transaction_id=txn.id, account_id=txn.account_id,
        kind=finding.kind, reason=finding.reason, payee=txn.payee, amount=txn.amount, currency=txn.currency,
        occurred_on=txn.occurred_on, event_id=uuid.UUID(event.event_id),
    ).on_conflict_do_nothing(constraint="uq_insights_anomalies_transaction_kind").returning(Anomaly.id)).first()
    if stored is not None:
        uow.emit(event)
    return stored is not None


def detect_anomalies(transaction_id: uuid.UUID, cause: Event, uow: UnitOfWork) -> int:
    """Examine one recorded expense; store and announce what is unusual about it, once per kind. Safe to run
    twice. Reads only that payee's and category's recent charges (and, for a new payee, one aggregate)."""
    with uow:
        txn = uow.session.get(Transaction, transaction_id)
        if txn is None or txn.status != "recorded" or txn.deleted_at is not None or txn.type != "expense":
            return 0
        category = uow.session.scalar(select(Category.name).where(Category.id == txn.category_id))
        findings = examine(_as_txn(txn, category), _payee_history(txn, payee_key(txn.payee), uow),
                           _category_history(txn, uow), lambda: _spending(txn, uow), txn.currency)
        flagged = sum(_flag(txn, f, cause, uow) for f in findings)
        uow.commit()
        return flagged


def detect_in_import(import_id: uuid.UUID, cause: Event, uow: UnitOfWork, on: dt.date | None = None) -> int:
    """Examine a finished import's recent expenses (the last 35 days, at most 500): a statement of last week
    alerts like purchases entered by hand; older history raises nothing. Safe to run twice."""
    since = (on or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=IMPORT_RECENT_DAYS)
    with uow:
        ids = list(uow.session.scalars(select(Transaction.id).where(
            Transaction.import_id == import_id, Transaction.type == "expense", Transaction.occurred_on >= since,
        ).order_by(Transaction.occurred_on.desc(), Transaction.id).limit(IMPORT_EXAMINE_LIMIT)))
    return sum(detect_anomalies(ident, cause, uow) for ident in ids)


@dataclass(frozen=True)
class AnomalyPage:
    """One page of flagged transactions and the cursor of the next, if any."""

    items: list[Anomaly]
    next_cursor: str | None


def list_anomalies(caller: Caller, kind: str | None, cursor: str | None, limit: int, uow: UnitOfWork) -> AnomalyPage:
    """The household's flagged transactions (still existing), newest first."""
    query = select(Anomaly).join(Transaction, Transaction.id == Anomaly.transaction_id).where(
        Anomaly.household_id == caller.household_id, Transaction.deleted_at.is_(None))
    if kind:
        query = query.where(Anomaly.kind == kind)
    if cursor:
        day, ident = decode_cursor(cursor)
        query = query.where(tuple_(Anomaly.occurred_on, Anomaly.id) < tuple_(day, ident))
    limit = min(limit, MAX_LIMIT)
    with uow:
        rows = list(uow.session.scalars(query.order_by(Anomaly.occurred_on.desc(), Anomaly.id.desc())
                                        .limit(limit + 1)))
    return AnomalyPage(rows[:limit], encode_cursor(rows[limit - 1]) if len(rows) > limit else None)


# --- recurring payments and the forecast -------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """A household's income and spending in its base currency, and what had to be left out."""

    txns: list[Txn]
    #: Transactions without a conversion into the base currency (yet): left out, never counted 1:1.
    unconverted: int


def base_history(caller: Caller, since: dt.date, uow: UnitOfWork) -> History:
    """The household's recorded income and expenses since a day, in its base currency (transfers excluded)."""
    rows = uow.session.execute(_live(select(
        Transaction.id, Transaction.occurred_on, Transaction.base_amount, Transaction.base_currency,
        Transaction.type, Transaction.payee, Category.name,
    ).outerjoin(Category, Category.id == Transaction.category_id), caller.household_id).where(
        Transaction.type.in_(("expense", "income")), Transaction.occurred_on >= since))
    txns, unconverted = [], 0
    for ident, day, amount, currency, kind, payee, category in rows:
        if amount is None or currency != caller.base_currency:
            unconverted += 1
            continue
        txns.append(Txn(str(ident), day, quantize(amount, currency), kind, payee, category))
    return History(txns, unconverted)


def _since(on: dt.date) -> dt.date:
    index = on.year * 12 + on.month - 1 - HISTORY_MONTHS
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class RecurringView:
    """The household's recurring payments as of a day."""

    on: dt.date
    currency: str
    items: list[Recurring]
    unconverted: int


def recurring_payments(caller: Caller, uow: UnitOfWork, on: dt.date | None = None) -> RecurringView:
    """Recurring payments and income found in the last two years, active ones first."""
    on = on or today(caller)
    with uow:
        history = base_history(caller, _since(on), uow)
    found = find_recurring([t for t in history.txns if t.occurred_on <= on])
    found.sort(key=lambda r: not r.active_on(on))
    return RecurringView(on, caller.base_currency, found, history.unconverted)


@dataclass(frozen=True)
class ForecastView:
    """The forecast and the starting balance it ran from."""

    forecast: Forecast
    currency: str
    balance: Decimal
    #: Accounts whose balance has no rate into the base currency today: left out of the balance.
    accounts_left_out: list[uuid.UUID]
    unconverted: int
    #: The history it was computed from (base currency).
    history: list[Txn]


def _balance(caller: Caller, on: dt.date, uow: UnitOfWork) -> tuple[Decimal, list[uuid.UUID]]:
    """The household's balance across open accounts in the base currency; accounts without a rate left out."""
    total, left_out = Decimal(0), []
    for account in uow.session.scalars(select(Account).where(Account.household_id == caller.household_id,
                                                             Account.deleted_at.is_(None)).order_by(Account.id)):
        rate = offline_rate(uow.session, caller.household_id, account.currency, caller.base_currency, on)
        if rate is None:
            left_out.append(account.id)
        else:
            total += quantize(account.balance * rate.value, caller.base_currency)
    return total, left_out


def forecast_for(caller: Caller, uow: UnitOfWork, on: dt.date | None = None) -> ForecastView:
    """Income, spending and balance for the next three months with their 90% intervals."""
    on = on or today(caller)
    with uow:
        history = base_history(caller, _since(on), uow)
        balance, left_out = _balance(caller, on, uow)
    return ForecastView(forecast(history.txns, on, balance), caller.base_currency, balance, left_out,
                        history.unconverted, history.txns)

"""Insights on a household's history: recurring payments, unusual transactions (flagged as they land) and the
forecast, read from SQL in the base currency (a transaction without a conversion is left out, never taken 1:1;
transfers are not spending)."""

from __future__ import annotations

import bisect
import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache, partial
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import ARRAY, Select, TextClause, Uuid, any_, bindparam, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from domain.insights.anomalies import DUPLICATE_WINDOW_DAYS, Finding, Spending, examine
from domain.insights.forecast import Forecast, forecast_from
from domain.insights.history import Txn
from domain.insights.payees import payee_key
from domain.insights.recurring import Recurring, find_recurring
from domain.money import format_amount, quantize
from domain.periods import local_today
from models.anomalies import Anomaly
from models.ledger import Account, Category, Transaction
from services.context import Caller
from services.fx_rates import offline_rate
from services.insights_history import read_history
from services.transaction_queries import MAX_LIMIT, decode_cursor, encode_cursor
from services.uow import UnitOfWork

#: How far back detection reads a payee's and a category's charges.
LOOKBACK_DAYS = 365
#: At most this many past charges per payee or category (the most recent): enough to pin the median and MAD (their
#: standard error at 200 is about 9% of the spread, 6% at 500), quicker to follow a price change, and on a busy
#: stack each purchase examined converts 200 rows instead of 500 (the pool's hot loop).
HISTORY_LIMIT = 200
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


class _Expense(NamedTuple):
    """A recorded expense to examine, with its category's name: what detection reads of a transaction."""

    id: uuid.UUID
    household_id: uuid.UUID
    account_id: uuid.UUID
    user_id: uuid.UUID | None
    amount: Decimal
    currency: str
    occurred_on: dt.date
    payee: str
    category_id: uuid.UUID | None
    category: str | None
    correlation_id: str


#: The recorded expenses that still exist among some transactions (the only ones examined), with their categories'
#: names: one statement whatever their number.
_EXPENSES = select(
    Transaction.id, Transaction.household_id, Transaction.account_id, Transaction.user_id, Transaction.amount,
    Transaction.currency, Transaction.occurred_on, Transaction.payee, Transaction.category_id, Category.name,
    Transaction.correlation_id,
).outerjoin(Category, Category.id == Transaction.category_id).where(
    Transaction.id == any_(bindparam("ids", type_=ARRAY(Uuid))), Transaction.status == "recorded",
    Transaction.deleted_at.is_(None), Transaction.type == "expense")


def _as_txn(txn: _Expense) -> Txn:
    return Txn(str(txn.id), txn.occurred_on, quantize(txn.amount, txn.currency), "expense", txn.payee, txn.category)


def _history_query(matches: str, columns: tuple[str, ...]) -> TextClause:
    """For each group (household, currency, key) and the day range its members' windows cover, the household's
    live expenses that `matches` the key, newest first (by day, then id): every one after the day the earliest
    member's window ends, and the first `:limit` up to that day. That holds the first `:limit` rows of every
    member's window (one fewer than it holds when a member skips itself): what per member the query of one window
    returned, read once for the group. Ids come as text (compared, never parsed)."""
    live = f"""t.household_id = g.household_id AND t.status = 'recorded' AND t.deleted_at IS NULL
               AND t.currency = g.currency AND t.type = 'expense' AND {matches}"""
    inner = ", ".join(["t.id AS uid", "CAST(t.id AS text) AS id", "t.occurred_on", *(f"t.{c}" for c in columns)])
    outer = ", ".join(["g.n", "h.occurred_on", "h.id", *(f"h.{c}" for c in columns)])
    return text(f"""
    SELECT {outer}
      FROM unnest(CAST(:households AS uuid[]), CAST(:currencies AS text[]), CAST(:keys AS text[]),
                  CAST(:firsts AS date[]), CAST(:splits AS date[]), CAST(:lasts AS date[]))
           WITH ORDINALITY AS g(household_id, currency, key, first, split, last, n)
     CROSS JOIN LATERAL (
        (SELECT {inner} FROM transactions t WHERE {live} AND t.occurred_on > g.split AND t.occurred_on <= g.last)
        UNION ALL
        (SELECT {inner} FROM transactions t WHERE {live} AND t.occurred_on BETWEEN g.first AND g.split
          ORDER BY t.occurred_on DESC, t.id DESC LIMIT :limit)
    ) h
    ORDER BY g.n, h.occurred_on DESC, h.uid DESC""")


#: Payees' charges found by a word of their key in the payee's text (the trigram index's expression)...
_PAYEE_BY_WORD = _history_query("lower(t.payee || ' ' || t.description) LIKE g.key", ("amount", "payee"))
#: ... or, for a payee without such a word, by the payee's text itself.
_PAYEE_BY_TEXT = _history_query("lower(t.payee) = g.key", ("amount", "payee"))
#: Categories' spending (the key is the category's id).
_CATEGORY = _history_query("t.category_id = CAST(g.key AS uuid)", ("amount",))


def _payee_search(txn: _Txn, key: str) -> tuple[str, bool]:
    """How the payee's charges are found: a LIKE pattern of the longest key word as the payee writes it ("E.ON" is
    "eon" in the key, not in the text), True; else the lowercased payee itself, False."""
    written = txn.payee.lower()
    words = sorted((w for w in key.split() if len(w) >= MIN_SEARCH_WORD and w in written), key=len, reverse=True)
    if words:
        return "%" + words[0].replace("%", "").replace("_", "\\_") + "%", True
    return written, False


#: A group of transactions whose histories one query reads: (household, currency, key).
_Group = tuple[uuid.UUID, str, str]
#: A group's members' windows: (first day, last day).
_Windows = dict[_Group, list[tuple[dt.date, dt.date]]]
#: What detection reads of a transaction (the examined expenses; the tests' ORM transactions).
_Txn = _Expense | Transaction


class _Rows:
    """One group's rows, newest first: a value for each, their ids (if asked) and their days (kept oldest first,
    for bisect)."""

    def __init__(self, days: list[dt.date], values: list[Any], ids: list[str] | None = None) -> None:
        self.ascending = days[::-1]
        self.values = values
        self.ids = ids

    def window(self, first: dt.date, last: dt.date, limit: int, skip: str | None = None) -> list[Any]:
        """The values of the first `limit` rows from `first` to `last`, the row `skip` left out: what the query of
        this one window returns."""
        count = len(self.ascending)
        start = count - bisect.bisect_right(self.ascending, last)
        end = min(count - bisect.bisect_left(self.ascending, first), start + limit + (skip is not None))
        if skip is None:
            return self.values[start:end]
        assert self.ids is not None
        kept = [v for ident, v in zip(self.ids[start:end], self.values[start:end], strict=True) if ident != skip]
        return kept[:limit]


#: Makes one group's rows (n, day, id, then the query's columns) into its _Rows, given the group's currency.
_Convert = Callable[[list[tuple], str], _Rows]


def _grouped(query: TextClause, windows: _Windows, limit: int, convert: _Convert, uow: UnitOfWork
             ) -> dict[_Group, _Rows]:
    """Per group, the rows `query` reads for the windows of its members, newest first."""
    groups = list(windows)
    if not groups:
        return {}
    result = uow.session.execute(query, {
        "households": [g[0] for g in groups], "currencies": [g[1] for g in groups], "keys": [g[2] for g in groups],
        "firsts": [min(first for first, _ in windows[g]) for g in groups],
        "splits": [min(last for _, last in windows[g]) for g in groups],
        "lasts": [max(last for _, last in windows[g]) for g in groups], "limit": limit})
    rows: list[tuple] = result.cursor.fetchall()  # the driver's tuples: up to 500 charges a group, no Row for each
    result.close()
    found = {n: list(members) for n, members in groupby(rows, key=itemgetter(0))}  # ordered by n
    return {group: convert(found.get(n, []), group[1]) for n, group in enumerate(groups, start=1)}


def _payee_window(txn: _Txn) -> tuple[dt.date, dt.date]:
    return (txn.occurred_on - dt.timedelta(days=LOOKBACK_DAYS),
            txn.occurred_on + dt.timedelta(days=DUPLICATE_WINDOW_DAYS))


def _category_window(txn: _Txn) -> tuple[dt.date, dt.date]:
    return txn.occurred_on - dt.timedelta(days=LOOKBACK_DAYS), txn.occurred_on


def _payee_histories(txns: Sequence[_Txn], uow: UnitOfWork) -> dict[uuid.UUID, list[Txn]]:
    """Each payee's charges in the transaction's currency around it (by the trigram index on the payee's text,
    then by normalized payee): one query for all, per search a group."""
    searches = {txn.id: _payee_search(txn, payee_key(txn.payee)) for txn in txns}
    windows: dict[bool, _Windows] = {True: {}, False: {}}
    for txn in txns:
        pattern, by_word = searches[txn.id]
        windows[by_word].setdefault((txn.household_id, txn.currency, pattern), []).append(_payee_window(txn))
    rows = {by_word: _grouped(query, windows[by_word], HISTORY_LIMIT, _payee_charges, uow)
            for by_word, query in ((True, _PAYEE_BY_WORD), (False, _PAYEE_BY_TEXT))}
    histories = {}
    for txn in txns:
        (pattern, by_word), key = searches[txn.id], payee_key(txn.payee)
        charges = rows[by_word][(txn.household_id, txn.currency, pattern)].window(*_payee_window(txn), HISTORY_LIMIT)
        histories[txn.id] = [charge for charge, charge_key in charges if charge_key == key]
    return histories


def _payee_charges(rows: list[tuple], currency: str) -> _Rows:
    """A payee group's charges (expenses in the group's currency), each with its payee's key."""
    # The hot loop of detection (up to 500 charges a transaction, for every batch): tuples unpacked, lookups
    # remembered, each Txn made as Txn._make makes it (tuple.__new__) but without its Python frame.
    make = tuple.__new__
    return _Rows([row[1] for row in rows], [
        (make(Txn, (ident, day, _quantized(amount, currency), "expense", payee, None)), payee_key(payee))
        for _, day, ident, amount, payee in rows])


@lru_cache(maxsize=4096)
def _quantized(amount: Decimal, currency: str) -> Decimal:
    """`quantize`, remembered: a payee's charges repeat a few amounts, read again for every batch."""
    return quantize(amount, currency)


def _category_histories(txns: Sequence[_Txn], uow: UnitOfWork) -> dict[uuid.UUID, list[Decimal]]:
    """Each category's earlier spending in the transaction's currency: one query for all, per category a group."""
    windows: _Windows = {}
    for txn in txns:
        if txn.category_id is not None:
            windows.setdefault(_category_group(txn), []).append(_category_window(txn))
    rows = _grouped(_CATEGORY, windows, HISTORY_LIMIT + 1, _category_amounts, uow)  # +1: a member skips itself
    return {txn.id: [] if txn.category_id is None else rows[_category_group(txn)].window(
        *_category_window(txn), HISTORY_LIMIT, skip=str(txn.id)) for txn in txns}


def _category_amounts(rows: list[tuple], currency: str) -> _Rows:
    return _Rows([row[1] for row in rows], [row[3] for row in rows], [row[2] for row in rows])


def _category_group(txn: _Txn) -> _Group:
    return txn.household_id, txn.currency, str(txn.category_id)


def _spending(txn: _Expense, uow: UnitOfWork) -> Spending:
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


def anomaly_payload(txn: _Txn, finding: Finding) -> dict[str, str]:
    """What an AnomalyDetected event says."""
    return {"transaction_id": str(txn.id), "account_id": str(txn.account_id), "kind": finding.kind,
            "reason": finding.reason, "payee": txn.payee, "amount": format_amount(txn.amount, txn.currency),
            "currency": txn.currency, "occurred_on": txn.occurred_on.isoformat()}


#: Stores findings, each (transaction, kind) once; which of them were new.
_STORE = insert(Anomaly.__table__).on_conflict_do_nothing(constraint="uq_insights_anomalies_transaction_kind") \
    .returning(Anomaly.__table__.c.transaction_id, Anomaly.__table__.c.kind)


def _flag(flags: list[tuple[_Expense, Finding, Event]], uow: UnitOfWork) -> int:
    """Store findings, in one statement, and announce those whose (transaction, kind) was not flagged before; how
    many were new. Only the first of a (transaction, kind) in `flags` counts, as when flagged one by one."""
    events: dict[tuple[uuid.UUID, str], tuple[_Expense, Finding, Event]] = {}
    for txn, finding, cause in flags:
        if (txn.id, finding.kind) not in events:
            events[(txn.id, finding.kind)] = (txn, finding, _detected(txn, finding, cause))
    if not events:
        return 0
    stored = set(uow.session.execute(_STORE, [{
        "id": uuid.uuid4(), "household_id": txn.household_id, "transaction_id": txn.id, "account_id": txn.account_id,
        "kind": finding.kind, "reason": finding.reason, "payee": txn.payee, "amount": txn.amount,
        "currency": txn.currency, "occurred_on": txn.occurred_on, "event_id": uuid.UUID(event.event_id),
    } for txn, finding, event in events.values()]).tuples())
    for key, (_, _, event) in events.items():
        if key in stored:
            uow.emit(event)
    return len(stored)


def _detected(txn: _Expense, finding: Finding, cause: Event) -> Event:
    """The AnomalyDetected event of a finding."""
    # The request that recorded the transaction is where its anomaly came from, as for events caused in its context.
    origin = cause.origin if cause.origin and cause.correlation_id == txn.correlation_id else None
    return Event(type="AnomalyDetected", payload=anomaly_payload(txn, finding), household_id=str(txn.household_id),
                 user_id=str(txn.user_id) if txn.user_id else None, correlation_id=txn.correlation_id,
                 causation_id=cause.event_id, origin=origin)


def detect_anomalies(transaction_id: uuid.UUID, cause: Event, uow: UnitOfWork) -> int:
    """Examine one recorded expense; store and announce what is unusual about it, once per kind. Safe to run
    twice. Reads only that payee's and category's recent charges (and, for a new payee, one aggregate)."""
    return detect_anomalies_many([(transaction_id, cause)], uow)


def detect_anomalies_many(items: list[tuple[uuid.UUID, Event]], uow: UnitOfWork) -> int:
    """`detect_anomalies` for many (transaction, cause) pairs, in order, in one transaction: the transactions with
    their categories' names, their payees' and their categories' charges each read in one query for all, the
    findings stored in one; how many findings were new. Safe to run twice."""
    if not items:
        return 0
    with uow:
        found = {txn.id: txn for txn in map(_Expense._make, uow.session.execute(
            _EXPENSES, {"ids": list({transaction_id for transaction_id, _ in items})}))}
        examined = [(txn, cause) for transaction_id, cause in items if (txn := found.get(transaction_id)) is not None]
        if not examined:
            return 0
        findings = _findings(list({txn.id: txn for txn, _ in examined}.values()), uow)
        flagged = _flag([(txn, finding, cause) for txn, cause in examined for finding in findings[txn.id]], uow)
        uow.commit()
        return flagged


class _HistoryNeeded(Exception):
    """`examine` read a history it was not given."""


class _Unread(Sequence[Decimal]):
    """A history not read yet: `examine` touching it raises _HistoryNeeded."""

    def __len__(self) -> int:
        raise _HistoryNeeded

    def __getitem__(self, index: Any) -> Any:
        raise _HistoryNeeded

    def __iter__(self) -> Iterator[Decimal]:
        raise _HistoryNeeded


def _findings(txns: list[_Expense], uow: UnitOfWork) -> dict[uuid.UUID, list[Finding]]:
    """What is unusual about each transaction. A category's charges only matter when the payee's are few (a
    transaction's findings may not depend on them): `examine`, a pure function, first gets a category history it
    cannot read, and runs again with the real one (read for all of them in one query) where it tried."""
    payees = _payee_histories(txns, uow)
    spending = {txn.id: cache(partial(_spending, txn, uow)) for txn in txns}  # asked once, whatever runs twice

    def run(txn: _Expense, categories: Sequence[Decimal]) -> list[Finding]:
        return examine(_as_txn(txn), payees[txn.id], cast(list[Decimal], categories), spending[txn.id],
                       txn.currency)

    findings, waiting = {}, []
    for txn in txns:
        try:
            findings[txn.id] = run(txn, _Unread())
        except _HistoryNeeded:
            waiting.append(txn)
    categories = _category_histories(waiting, uow)
    for txn in waiting:
        findings[txn.id] = run(txn, categories[txn.id])
    return findings


def detect_in_import(import_id: uuid.UUID, cause: Event, uow: UnitOfWork, on: dt.date | None = None) -> int:
    """Examine a finished import's recent expenses (the last 35 days, at most 500): a statement of last week
    alerts like purchases entered by hand; older history raises nothing. Safe to run twice."""
    since = (on or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=IMPORT_RECENT_DAYS)
    with uow:
        ids = list(uow.session.scalars(select(Transaction.id).where(
            Transaction.import_id == import_id, Transaction.type == "expense", Transaction.occurred_on >= since,
        ).order_by(Transaction.occurred_on.desc(), Transaction.id).limit(IMPORT_EXAMINE_LIMIT)))
    return detect_anomalies_many([(ident, cause) for ident in ids], uow)


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
        history = read_history(caller, _since(on), on, uow)
    found = find_recurring(history.summary.txns)
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
    #: Month -> income less spending (base currency), for the chart of past month-end balances.
    flows: dict[dt.date, Decimal]


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
        history = read_history(caller, _since(on), on, uow)
        balance, left_out = _balance(caller, on, uow)
    return ForecastView(forecast_from(history.summary, on, balance), caller.base_currency, balance, left_out,
                        history.unconverted, history.flows)

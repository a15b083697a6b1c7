"""Converting transactions into the household's base currency at the rate of their date: when they are recorded,
when a rate arrives later (the breaker closed again, a manual rate, the periodic sweep), and over the whole
history when the base currency changes. A missing rate is flagged, never replaced by 1:1.

Rates are looked up outside any database transaction (a slow provider never holds a row lock); the row is then
locked and converted only if it still is what was looked up.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from domain.events import Event
from domain.fx import MAX_RATE_AGE_DAYS, Rate, compose, convert
from domain.money import format_amount
from models.fx import FxRate, FxReconversion
from models.identity import Household
from models.ledger import Account, Transaction
from services.balances import move
from services.context import Caller
from services.fx_breaker import BreakerState
from services.fx_rates import MANUAL_SOURCE, offline_rate, set_manual_rate
from services.uow import UnitOfWork

#: Transactions handled per sweep or re-conversion command.
SWEEP_BATCH = 100
RECONVERT_BATCH = 100
#: Redis key that lets one fx process per FX_SWEEP_SECONDS start the periodic sweep.
SWEEP_LEASE = "fx:sweep:lease"
#: A running re-conversion that has not moved for this long is resumed by the sweep.
STALLED_AFTER = dt.timedelta(minutes=5)
#: Sends a command to the fx pool; raises when RabbitMQ did not confirm it.
SendCommand = Callable[[dict[str, Any]], None]


class RateSource(Protocol):
    """Anything that answers a rate for a date (the household's own rates first), or None when it has none."""

    def rate(self, base: str, quote: str, on: dt.date, household_id: uuid.UUID | None = None) -> Rate | None:
        """The rate to convert one `base` into `quote` on a date."""


@dataclass(frozen=True)
class Cause:
    """What started a conversion: the events it emits carry its correlation and causation ids."""

    correlation_id: str
    causation_id: str | None = None

    @classmethod
    def of(cls, event: Event) -> Cause:
        """The cause an event makes."""
        return cls(event.correlation_id, event.event_id)


def _event(txn: Transaction, type: str, payload: dict[str, Any], cause: Cause) -> Event:
    return Event(type, payload, str(txn.household_id), str(txn.user_id) if txn.user_id else None,
                 cause.correlation_id, cause.causation_id)


# --- one transaction -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Looked:
    """What a transaction was when its rates were looked up."""

    key: tuple[str, str, dt.date, str | None]
    household_id: uuid.UUID
    account_currency: str | None


def _key(txn: Transaction, account_currency: str | None) -> tuple[str, str, dt.date, str | None]:
    return txn.currency, txn.base_currency, txn.occurred_on, account_currency


def _live(txn: Transaction | None) -> bool:
    return txn is not None and txn.status == "recorded" and txn.deleted_at is None


def _needs_base(txn: Transaction, revalue: bool) -> bool:
    return txn.fx_status in ("pending", "missing") or (revalue and txn.fx_status == "converted")


def _needs_account(txn: Transaction, account_currency: str | None) -> bool:
    return txn.account_amount is None and account_currency is not None and account_currency != txn.currency


def convert_transaction(transaction_id: uuid.UUID, rates: RateSource, cause: Event | Cause, uow: UnitOfWork, *,
                        revalue: bool = False) -> str | None:
    """Convert a recorded transaction that waits for a rate (with `revalue`, also one converted at a rate that is
    no longer the one that applies); flag it when no rate exists. Returns "converted", "missing" or None (nothing
    to do). Safe to run twice."""
    cause = Cause.of(cause) if isinstance(cause, Event) else cause
    with uow:
        txn = uow.session.get(Transaction, transaction_id)
        if not _live(txn):
            return None
        account_currency = uow.session.scalar(select(Account.currency).where(Account.id == txn.account_id))
        if not (_needs_base(txn, revalue) or _needs_account(txn, account_currency)):
            return None
        looked = _Looked(_key(txn, account_currency), txn.household_id, account_currency)
        wants_base, wants_account = _needs_base(txn, revalue), _needs_account(txn, account_currency)
    currency, base, on, _ = looked.key
    base_rate = rates.rate(currency, base, on, looked.household_id) if wants_base else None
    account_rate = None
    if wants_account:
        account_rate = base_rate if wants_base and account_currency == base else rates.rate(
            currency, account_currency, on, looked.household_id)
    with uow:
        txn = uow.session.get(Transaction, transaction_id, with_for_update={"key_share": True}, populate_existing=True)
        if not _live(txn) or _key(txn, looked.account_currency) != looked.key:
            return None  # changed meanwhile: the change's own event converts it
        # Only what was looked up above: anything that started waiting since has its own event on the way.
        outcome = _base(txn, base_rate, cause, uow) if wants_base and _needs_base(txn, revalue) else None
        if account_rate is not None and _needs_account(txn, account_currency):
            txn.account_amount = convert(txn.amount, account_rate.value, account_currency)
            move(txn, +1, uow)
        uow.commit()
        return outcome


def _base(txn: Transaction, rate: Rate | None, cause: Cause, uow: UnitOfWork) -> str | None:
    if rate is None:
        return None if txn.fx_status == "converted" else _flag_missing(txn, cause, uow)
    if txn.fx_status == "converted" and (txn.fx_rate, txn.fx_rate_date, txn.fx_source) == (
            rate.value, rate.on, rate.source):
        return None
    _apply(txn, rate, cause, uow)
    return "converted"


def _flag_missing(txn: Transaction, cause: Cause, uow: UnitOfWork) -> str:
    if txn.fx_status != "missing":
        txn.fx_status = "missing"
        uow.emit(_event(txn, "CurrencyConversionMissing", {
            "transaction_id": str(txn.id), "currency": txn.currency, "base_currency": txn.base_currency,
            "occurred_on": txn.occurred_on.isoformat()}, cause))
    return "missing"


def _apply(txn: Transaction, rate: Rate, cause: Cause, uow: UnitOfWork) -> None:
    txn.base_amount = convert(txn.amount, rate.value, txn.base_currency)
    txn.fx_rate, txn.fx_rate_date, txn.fx_source, txn.fx_status = rate.value, rate.on, rate.source, "converted"
    uow.emit(_event(txn, "CurrencyConverted", {
        "transaction_id": str(txn.id), "amount": format_amount(txn.amount, txn.currency), "currency": txn.currency,
        "base_amount": format_amount(txn.base_amount, txn.base_currency), "base_currency": txn.base_currency,
        "rate": f"{rate.value:f}", "rate_date": rate.on.isoformat(), "source": rate.source,
        "stale": rate.stale}, cause))


# --- when rates arrive later -----------------------------------------------------------------------------------


def waiting_for_rates(after: uuid.UUID | None, session: Session, limit: int = SWEEP_BATCH) -> list[uuid.UUID]:
    """Recorded transactions still waiting for a rate (to the base or to their account's currency), by id."""
    query = select(Transaction.id).where(
        Transaction.status == "recorded", Transaction.deleted_at.is_(None),
        or_(Transaction.fx_status == "missing", Transaction.account_amount.is_(None)))
    if after is not None:
        query = query.where(Transaction.id > after)
    return list(session.scalars(query.order_by(Transaction.id).limit(limit)))


@dataclass(frozen=True)
class Sweep:
    """The command: try again to convert what waits for a rate, from `after` on."""

    reason: str
    after: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sweep:
        """The command from a message payload."""
        return cls(data["reason"], data.get("after"))


def sweep(cmd: Sweep, rates: RateSource, uow: UnitOfWork) -> Sweep | None:
    """Convert the next batch of transactions waiting for a rate; the command for the next batch, or None."""
    with uow:
        ids = waiting_for_rates(uuid.UUID(cmd.after) if cmd.after else None, uow.session)
    cause = Cause(f"fx-sweep:{cmd.reason}")
    for transaction_id in ids:
        convert_transaction(transaction_id, rates, cause, uow)
    return Sweep(cmd.reason, str(ids[-1])) if len(ids) == SWEEP_BATCH else None


def stalled_reconversions(uow: UnitOfWork, now: dt.datetime | None = None) -> list[Reconvert]:
    """Commands that resume re-conversions that stopped moving (a command lost to a crash)."""
    moment = (now or dt.datetime.now(dt.UTC)) - STALLED_AFTER
    with uow:
        jobs = uow.session.scalars(select(FxReconversion).where(
            FxReconversion.status == "running", func.coalesce(FxReconversion.updated_at,
                                                              FxReconversion.created_at) < moment))
        return [Reconvert(str(job.id), job.batches) for job in jobs]


# --- manual rates --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualRate:
    """The command: a household set its own rate; convert again what it applies to."""

    household_id: str
    user_id: str | None
    base: str
    quote: str
    date: str
    rate: str
    written_at: str
    correlation_id: str

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManualRate:
        """The command from a message payload."""
        return cls(**data)


def submit_manual_rate(caller: Caller, base: str, quote: str, on: dt.date, value: Decimal, uow: UnitOfWork,
                       send: SendCommand) -> tuple[FxRate, bool]:
    """Create or replace the household's rate for a date, and have the fx pool convert what it applies to.
    Nothing stays if RabbitMQ does not confirm the command; (rate, created)."""
    with uow:
        row, created = set_manual_rate(caller.household_id, caller.user_id, base, quote, on, value, uow.session)
        uow.session.flush()
        written = row.updated_at
        uow.emit(Event("ManualRateSet", {"base": base, "quote": quote, "date": on.isoformat(), "rate": f"{value:f}",
                                         "replaced": not created}, str(caller.household_id), str(caller.user_id),
                       caller.correlation_id, None))
        send(ManualRate(str(caller.household_id), str(caller.user_id), base, quote, on.isoformat(), f"{value:f}",
                        written.isoformat(), caller.correlation_id).to_dict())
        uow.commit()
        return row, created


def apply_manual_rate(cmd: ManualRate, rates: RateSource, uow: UnitOfWork) -> int:
    """Make sure the rate is there (waiting for the API's write if it is still in flight), then convert again
    every transaction of the household it may apply to; returns how many changed. Safe to run twice."""
    household_id, on = uuid.UUID(cmd.household_id), dt.date.fromisoformat(cmd.date)
    written = dt.datetime.fromisoformat(cmd.written_at)
    with uow:
        values = dict(id=uuid.uuid4(), household_id=household_id, base=cmd.base, quote=cmd.quote, rate_date=on,
                      rate=Decimal(cmd.rate), source=MANUAL_SOURCE, updated_at=written,
                      created_by=uuid.UUID(cmd.user_id) if cmd.user_id else None)
        statement = insert(FxRate).values(**values)
        uow.session.execute(statement.on_conflict_do_update(
            constraint="uq_fx_rates_owner_pair_date", set_={"rate": statement.excluded.rate,
                                                            "updated_at": statement.excluded.updated_at},
            where=func.coalesce(FxRate.updated_at, FxRate.created_at) < statement.excluded.updated_at))
        ids = list(uow.session.scalars(select(Transaction.id).where(
            Transaction.household_id == household_id, Transaction.status == "recorded",
            Transaction.deleted_at.is_(None), Transaction.currency.in_((cmd.base, cmd.quote)),
            Transaction.occurred_on >= on, Transaction.occurred_on <= on + dt.timedelta(days=MAX_RATE_AGE_DAYS),
        ).order_by(Transaction.id)))
        uow.commit()
    cause = Cause(cmd.correlation_id)
    return sum(convert_transaction(i, rates, cause, uow, revalue=True) == "converted" for i in ids)


# --- a new base currency: the whole history, in batches ------------------------------------------------------------


@dataclass(frozen=True)
class Reconvert:
    """The command: re-convert the next batch of a household's history; `batch` is the number it expects."""

    job_id: str
    batch: int

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reconvert:
        """The command from a message payload."""
        return cls(data["job_id"], int(data["batch"]))


def start_reconversion(household_id: uuid.UUID, user_id: uuid.UUID | None, old: str, new: str,
                       correlation_id: str, uow: UnitOfWork) -> FxReconversion:
    """Within the caller's unit of work: record the job and the BaseCurrencyChanged event that starts it."""
    job = FxReconversion(id=uuid.uuid4(), household_id=household_id, from_currency=old, to_currency=new,
                         status="running", batches=0, converted=0, missing=0, user_id=user_id,
                         correlation_id=correlation_id)
    uow.session.add(job)
    uow.emit(Event("BaseCurrencyChanged", {"job_id": str(job.id), "from": old, "to": new}, str(household_id),
                   str(user_id) if user_id else None, correlation_id, None))
    return job


def reconvert_batch(cmd: Reconvert, rates: RateSource, uow: UnitOfWork) -> Reconvert | None:
    """Re-convert the next batch of the household's transactions into its new base currency; the next command,
    or None when the history is done (then HistoryReconverted has budgets rebuilt). Safe to run twice."""
    with uow:
        job = _job(cmd, uow)
        if job is None:
            return None
        rows = uow.session.execute(select(Transaction.id, Transaction.currency, Transaction.occurred_on,
                                          Transaction.status).where(
            Transaction.household_id == job.household_id, Transaction.base_currency != job.to_currency,
            *([Transaction.id > job.after] if job.after else [])).order_by(Transaction.id)
            .limit(RECONVERT_BATCH)).all()
        household_id, target = job.household_id, job.to_currency
    wanted = {(r.currency, r.occurred_on) for r in rows if r.status == "recorded" and r.currency != target}
    found = {key: rates.rate(key[0], target, key[1], household_id) for key in wanted}
    with uow:
        job = _job(cmd, uow, lock=True)
        if job is None:
            return None
        txns = uow.session.scalars(select(Transaction).where(Transaction.id.in_([r.id for r in rows]))
                                   .order_by(Transaction.id).with_for_update(key_share=True))
        outcomes = [_rebase(txn, target, found.get((txn.currency, txn.occurred_on))) for txn in txns]
        job.converted += outcomes.count("converted")
        job.missing += outcomes.count("missing")
        job.after = rows[-1].id if rows else job.after
        job.batches += 1
        job.updated_at = dt.datetime.now(dt.UTC)
        done = len(rows) < RECONVERT_BATCH and not _stragglers(job, uow)
        if done:
            _finish(job, uow)
        elif len(rows) < RECONVERT_BATCH:
            job.after = None  # recorded meanwhile in the old base currency: go round once more
        uow.commit()
        return None if done else Reconvert(str(job.id), job.batches)


def _job(cmd: Reconvert, uow: UnitOfWork, *, lock: bool = False) -> FxReconversion | None:
    """The running job this command continues, or None (done, superseded, a duplicate command)."""
    job = uow.session.get(FxReconversion, uuid.UUID(cmd.job_id), with_for_update=lock, populate_existing=lock)
    if job is None or job.status != "running" or job.batches != cmd.batch:
        return None
    base = uow.session.scalar(select(Household.base_currency).where(Household.id == job.household_id))
    if base != job.to_currency:
        job.status, job.finished_at = "superseded", dt.datetime.now(dt.UTC)
        uow.commit()
        return None
    return job


def _stragglers(job: FxReconversion, uow: UnitOfWork) -> bool:
    """Transactions of the household still in another base currency (recorded meanwhile with a lower id)."""
    uow.session.flush()
    return bool(uow.session.scalar(select(exists().where(
        Transaction.household_id == job.household_id, Transaction.base_currency != job.to_currency))))


def _rebase(txn: Transaction, target: str, rate: Rate | None) -> str | None:
    """Put one transaction into the new base currency: its own amount, converted at its date, or flagged."""
    txn.base_currency = target
    if txn.status != "recorded":
        return None  # pending ones are valued when recorded; rejected ones never count
    txn.fx_rate, txn.fx_rate_date, txn.fx_source = None, None, None
    if txn.currency == target:
        txn.base_amount, txn.fx_status = txn.amount, "none"
        return "same"
    if rate is None:
        txn.base_amount, txn.fx_status = None, "missing"
        return "missing"
    txn.base_amount = convert(txn.amount, rate.value, target)
    txn.fx_rate, txn.fx_rate_date, txn.fx_source, txn.fx_status = rate.value, rate.on, rate.source, "converted"
    return "converted"


def _finish(job: FxReconversion, uow: UnitOfWork) -> None:
    job.status, job.finished_at = "done", dt.datetime.now(dt.UTC)
    uow.emit(Event("HistoryReconverted", {"job_id": str(job.id), "from": job.from_currency,
                                          "to": job.to_currency, "converted": job.converted,
                                          "missing": job.missing}, str(job.household_id),
                   str(job.user_id) if job.user_id else None, job.correlation_id, None))


# --- the breaker's transitions ---------------------------------------------------------------------------------------

#: The events a breaker transition publishes: (from, to) -> type. Half-open, and a failed trial that opens it again,
#: are only logged: one outage is one CircuitOpened and one CircuitClosed, however many trials it took.
BREAKER_EVENTS = {("closed", "open"): "CircuitOpened", ("half-open", "closed"): "CircuitClosed",
                  ("open", "closed"): "CircuitClosed"}


def announce_breaker(breaker: str, old: str, new: str, state: BreakerState, uow: UnitOfWork) -> Event | None:
    """Publish CircuitOpened or CircuitClosed (through the outbox, so it is audited); the event, if any."""
    type = BREAKER_EVENTS.get((old, new))
    if type is None:
        return None
    now = dt.datetime.now(dt.UTC)
    event = Event(type, {"breaker": breaker, "from": old, "to": new, "failures": state.failures,
                         "opened_at": state.opened_at.isoformat() if state.opened_at else None,
                         "reset_seconds": state.reset_seconds}, None, None,
                  f"{breaker}:{new}:{now.isoformat(timespec='seconds')}", None)
    with uow:
        uow.emit(event)
        uow.commit()
    return event


# --- budgets kept in another currency than the transaction's base -----------------------------------------------------


def amount_in(txn: Any, currency: str, session: Session, cache: dict | None = None) -> Decimal | None:
    """What an expense amounts to in `currency` (a budget's): its own amount when in that currency, its stored
    conversion when that is the base, else converted at its date by the household's rates without the live
    provider (manual, stored, ECB; directly, or through the stored base conversion). None when no rate exists."""
    if txn.currency == currency:
        return txn.amount
    if txn.base_currency == currency:
        return txn.base_amount
    cache = {} if cache is None else cache

    def rate(base: str, on: dt.date) -> Rate | None:
        key = (txn.household_id, base, currency, on)
        if key not in cache:
            cache[key] = offline_rate(session, txn.household_id, base, currency, on)
        return cache[key]

    direct = rate(txn.currency, txn.occurred_on)
    if direct is not None:
        return convert(txn.amount, direct.value, currency)
    if txn.base_amount is None or txn.fx_rate is None:
        return None
    via = rate(txn.base_currency, txn.occurred_on)
    return None if via is None else convert(txn.amount, compose(txn.fx_rate, via.value), currency)

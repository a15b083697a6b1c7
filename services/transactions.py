"""Transactions: the record command, recording it in the categorization pool, and reading one back."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from domain.money import format_amount
from domain.rules import RuleSet
from models.identity import Household
from models.ledger import Account, Category, Transaction
from services.balances import signed
from services.categorization import decide, households_rules
from services.context import Caller
from services.errors import NotFound
from services.uow import UnitOfWork

log = logging.getLogger(__name__)

#: The transactions table, for Core statements.
TABLE = Transaction.__table__

#: Sends the command to its pool; raises when RabbitMQ did not confirm it.
SendCommand = Callable[[dict[str, Any]], None]
#: Transaction types.
TYPES = ("expense", "income", "transfer")


@dataclass(frozen=True)
class RecordTransaction:
    """The command: record this transaction."""

    transaction_id: str
    household_id: str
    user_id: str
    account_id: str
    type: str
    amount: str
    currency: str
    occurred_on: str
    payee: str
    description: str
    notes: str
    category: str | None
    correlation_id: str
    counter_account_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordTransaction:
        """The command from a message payload."""
        return cls(**data)


def record_transaction(cmd: RecordTransaction, uow: UnitOfWork) -> None:
    """Categorize and record a submitted transaction. Safe to run twice."""
    record_transactions([cmd], uow)


def record_transactions(cmds: list[RecordTransaction], uow: UnitOfWork,
                        origins: dict[str, dict[str, str]] | None = None) -> None:
    """Categorize and record submitted transactions in one database transaction, in a constant number of
    statements whatever their number; `origins` (by transaction id) says which request each came from. Safe to
    run twice."""
    with uow:
        batch = _Batch.load(cmds, uow)
        for txn in batch.pending:
            account = batch.accounts.get(txn.account_id)
            if account is None or account.deleted_at is not None or account.household_id != txn.household_id:
                _reject(txn, "the account no longer exists", uow, origins)
            else:
                _record(txn, account, batch, uow, origins)
        uow.commit()


@dataclass
class _Batch:
    """What recording a batch needs, each loaded in one statement: the pending rows (locked), their accounts
    (locked, in id order), the households' base currencies, rules and categories."""

    pending: list[Transaction]
    accounts: dict[uuid.UUID, Account]
    bases: dict[uuid.UUID, str]
    rules: dict[uuid.UUID, RuleSet]
    categories: dict[tuple[uuid.UUID, Any], Row]

    @classmethod
    def load(cls, cmds: list[RecordTransaction], uow: UnitOfWork) -> _Batch:
        """Insert what the API never committed (and drop it again), then lock and load the rest."""
        households = sorted({uuid.UUID(c.household_id) for c in cmds})
        bases = dict(uow.session.execute(select(Household.id, Household.base_currency).where(
            Household.id.in_(households))).tuples().all())
        dropped = _drop_orphans(cmds, bases, uow)
        ids = [uuid.UUID(c.transaction_id) for c in cmds if c.transaction_id not in dropped]
        found = {t.id: t for t in uow.session.scalars(select(Transaction).where(Transaction.id.in_(ids)).order_by(
            Transaction.id).with_for_update(key_share=True).execution_options(populate_existing=True))}
        pending = [found[i] for i in dict.fromkeys(ids) if i in found and found[i].status == "pending"]
        account_ids = {t.account_id for t in pending} | {t.counter_account_id for t in pending if t.counter_account_id}
        accounts = {a.id: a for a in uow.session.scalars(select(Account).where(Account.id.in_(account_ids)).order_by(
            Account.id).with_for_update(key_share=True))}
        rules = households_rules({t.household_id for t in pending}, uow)
        return cls(pending, accounts, bases, rules, _categories({t.household_id for t in pending}, uow))


def _drop_orphans(cmds: list[RecordTransaction], bases: dict[uuid.UUID, str], uow: UnitOfWork) -> set[str]:
    """Insert each command's pending row unless the API's is there; the ids that had none, whose rows are removed
    again in this transaction.

    The API inserts the pending row before it sends the command; if its commit is still in flight this insert
    waits for it, then does nothing. If it does insert, the API rolled back after sending (it answered an error,
    e.g. the publisher confirm was lost with the connection): the client was not told 2xx and retries under its
    Idempotency-Key, so recording this orphan would record the purchase twice."""
    rows = list({c.transaction_id: _pending_row(c, bases) for c in cmds}.values())
    # Core executemany: one statement compiled once (and cached) for any number of rows.
    orphans = set(uow.session.connection().execute(insert(TABLE).on_conflict_do_nothing(
        index_elements=["id"]).returning(TABLE.c.id), rows).scalars())
    if orphans:
        uow.session.execute(delete(Transaction).where(Transaction.id.in_(orphans)))
        for orphan in orphans:
            log.warning("transaction %s: its request was rolled back after the command was sent; dropped", orphan)
    return {str(o) for o in orphans}


def _pending_row(cmd: RecordTransaction, bases: dict[uuid.UUID, str]) -> dict[str, Any]:
    household_id = uuid.UUID(cmd.household_id)
    return dict(
        id=uuid.UUID(cmd.transaction_id), household_id=household_id, user_id=uuid.UUID(cmd.user_id),
        account_id=uuid.UUID(cmd.account_id), type=cmd.type, amount=Decimal(cmd.amount), currency=cmd.currency,
        occurred_on=dt.date.fromisoformat(cmd.occurred_on), payee=cmd.payee, description=cmd.description,
        notes=cmd.notes, requested_category=cmd.category, status="pending",
        base_currency=bases.get(household_id) or cmd.currency, correlation_id=cmd.correlation_id, fx_status="none",
        counter_account_id=uuid.UUID(cmd.counter_account_id) if cmd.counter_account_id else None,
    )


def _categories(households: set[uuid.UUID], uow: UnitOfWork) -> dict[tuple[uuid.UUID, Any], Row]:
    """The households' categories (id and name) by (household, id) and by (household, lowercase name)."""
    # Plain rows, not ORM objects: a batch reads every category of every household in it, and only the id and name
    # of the few it picks are used.
    found: dict[tuple[uuid.UUID, Any], Row] = {}
    for category in uow.session.execute(_CATEGORIES, {"households": list(households)}):
        found[(category.household_id, category.id)] = category
        found.setdefault((category.household_id, category.name.lower()), category)
    return found


_CATEGORIES = select(Category.id, Category.household_id, Category.name).where(
    Category.household_id.in_(bindparam("households", expanding=True))).order_by(Category.name)


def _category(batch: _Batch, household_id: uuid.UUID, name_or_id: str) -> Row | None:
    """A category by id or by name (case-insensitive), as `find_category` finds it."""
    try:
        return batch.categories.get((household_id, uuid.UUID(name_or_id)))
    except ValueError:
        return batch.categories.get((household_id, name_or_id.strip().lower()))


def _reject(txn: Transaction, reason: str, uow: UnitOfWork, origins: dict[str, dict[str, str]] | None) -> None:
    txn.status, txn.reject_reason = "rejected", reason
    uow.emit(_event(txn, "TransactionRejected", {"transaction_id": str(txn.id), "reason": reason}, origins))


def _record(txn: Transaction, account: Account, batch: _Batch, uow: UnitOfWork,
            origins: dict[str, dict[str, str]] | None) -> None:
    # The base currency of the moment of recording (it may have changed since the API accepted the command).
    txn.base_currency = batch.bases.get(txn.household_id) or txn.base_currency
    decision = decide(txn, batch.rules[txn.household_id])
    category = _category(batch, txn.household_id, decision.category) or _category(
        batch, txn.household_id, "Uncategorized")
    txn.category_id, txn.category_source, txn.category_rule_id = (category.id if category else None,
                                                                  decision.source, decision.rule_id)
    txn.payee, txn.tags = decision.payee, list(decision.tags)
    if decision.source == "user":
        txn.locked = sorted({*(txn.locked or []), "category"})  # chosen by hand: no rule may change it later
    if txn.currency == txn.base_currency:
        txn.base_amount, txn.fx_status = txn.amount, "none"
    else:
        txn.fx_status = "pending"
    if txn.currency == account.currency:
        txn.account_amount = txn.amount
        account.balance += signed(txn.type, txn.amount)
        if txn.type == "transfer" and txn.counter_account_id and txn.counter_account_id in batch.accounts:
            batch.accounts[txn.counter_account_id].balance += txn.amount
    txn.status, txn.recorded_at = "recorded", dt.datetime.now(dt.UTC)
    uow.emit(_event(txn, "TransactionRecorded", transaction_payload(txn, category.name if category else None),
                    origins))


def transaction_payload(txn: Transaction, category: str | None) -> dict[str, Any]:
    """What a TransactionRecorded event says about a transaction."""
    return {
        "transaction_id": str(txn.id), "account_id": str(txn.account_id), "type": txn.type,
        "amount": format_amount(txn.amount, txn.currency), "currency": txn.currency,
        "occurred_on": txn.occurred_on.isoformat(), "payee": txn.payee, "category": category,
        "category_source": txn.category_source, "fx_status": txn.fx_status, "base_currency": txn.base_currency,
        "base_amount": format_amount(txn.base_amount, txn.base_currency) if txn.base_amount is not None else None,
        "counter_account_id": str(txn.counter_account_id) if txn.counter_account_id else None,
        "tags": list(txn.tags or []),
    }


def _event(txn: Transaction, type: str, payload: dict[str, Any],
           origins: dict[str, dict[str, str]] | None = None) -> Event:
    return Event(type, payload, str(txn.household_id), str(txn.user_id) if txn.user_id else None,
                 txn.correlation_id, str(txn.id),  # the command is identified by the transaction id
                 origin=(origins or {}).get(str(txn.id)))


def get_transaction(caller: Caller, transaction_id: uuid.UUID, uow: UnitOfWork) -> Transaction:
    """One of the caller's transactions; NotFound for any other id."""
    with uow:
        txn = uow.session.scalar(select(Transaction).where(
            Transaction.id == transaction_id, Transaction.household_id == caller.household_id))
        if txn is None:
            raise NotFound("no such transaction")
        return txn


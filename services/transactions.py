"""Transactions: the record command, recording it in the categorization pool, and reading one back."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from domain.money import format_amount
from models.identity import Household
from models.ledger import Account, Transaction
from services.accounts import find_category
from services.balances import move
from services.categorization import decide, household_rules
from services.context import Caller
from services.errors import NotFound
from services.uow import UnitOfWork

log = logging.getLogger(__name__)

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
    with uow:
        txn = _lock_or_insert(cmd, uow)
        if txn is None or txn.status != "pending":
            return
        account = uow.session.get(Account, txn.account_id, with_for_update=True)
        if account is None or account.deleted_at is not None or account.household_id != txn.household_id:
            _reject(txn, "the account no longer exists", uow)
        else:
            _record(txn, account, uow)
        uow.commit()


def _lock_or_insert(cmd: RecordTransaction, uow: UnitOfWork) -> Transaction | None:
    base = uow.session.scalar(select(Household.base_currency).where(Household.id == uuid.UUID(cmd.household_id)))
    values = dict(
        id=uuid.UUID(cmd.transaction_id), household_id=uuid.UUID(cmd.household_id), user_id=uuid.UUID(cmd.user_id),
        account_id=uuid.UUID(cmd.account_id), type=cmd.type, amount=Decimal(cmd.amount), currency=cmd.currency,
        occurred_on=dt.date.fromisoformat(cmd.occurred_on), payee=cmd.payee, description=cmd.description,
        notes=cmd.notes, requested_category=cmd.category, status="pending", base_currency=base or cmd.currency,
        correlation_id=cmd.correlation_id, fx_status="none",
        counter_account_id=uuid.UUID(cmd.counter_account_id) if cmd.counter_account_id else None,
    )
    # The API inserts the pending row before it sends the command; if its commit is still in flight
    # this insert waits for it, then does nothing. If it does insert, the API rolled back after sending (it
    # answered an error, e.g. the publisher confirm was lost with the connection): the client was not told
    # 2xx and retries under its Idempotency-Key, so recording this orphan would record the purchase twice.
    orphan = uow.session.execute(insert(Transaction).values(**values).on_conflict_do_nothing(index_elements=["id"])
                                 .returning(Transaction.id)).first()
    if orphan is not None:
        log.warning("transaction %s: its request was rolled back after the command was sent; dropped",
                    cmd.transaction_id)
        return None  # leaving the unit of work rolls the insert back
    return uow.session.get(Transaction, values["id"], with_for_update=True, populate_existing=True)


def _reject(txn: Transaction, reason: str, uow: UnitOfWork) -> None:
    txn.status, txn.reject_reason = "rejected", reason
    uow.emit(_event(txn, "TransactionRejected", {"transaction_id": str(txn.id), "reason": reason}))


def _record(txn: Transaction, account: Account, uow: UnitOfWork) -> None:
    # The base currency of the moment of recording (it may have changed since the API accepted the command).
    txn.base_currency = uow.session.scalar(select(Household.base_currency).where(
        Household.id == txn.household_id)) or txn.base_currency
    decision = decide(txn, household_rules(txn.household_id, uow))
    category = find_category(txn.household_id, decision.category, uow) or find_category(
        txn.household_id, "Uncategorized", uow)
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
        move(txn, +1, uow)
    txn.status, txn.recorded_at = "recorded", dt.datetime.now(dt.UTC)
    uow.emit(_event(txn, "TransactionRecorded", transaction_payload(txn, category.name if category else None)))


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


def _event(txn: Transaction, type: str, payload: dict[str, Any]) -> Event:
    return Event(type, payload, str(txn.household_id), str(txn.user_id) if txn.user_id else None,
                 txn.correlation_id, str(txn.id))  # the command is identified by the transaction id


def get_transaction(caller: Caller, transaction_id: uuid.UUID, uow: UnitOfWork) -> Transaction:
    """One of the caller's transactions; NotFound for any other id."""
    with uow:
        txn = uow.session.scalar(select(Transaction).where(
            Transaction.id == transaction_id, Transaction.household_id == caller.household_id))
        if txn is None:
            raise NotFound("no such transaction")
        return txn


"""Changing and deleting recorded transactions, applied by the categorization pool like a create."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from domain.money import InvalidMoney, format_amount, parse_amount
from models.ledger import Account, Category, ProcessedCommand, Transaction
from services.accounts import find_category
from services.balances import move
from services.context import Caller
from services.errors import Invalid, NotFound
from services.learning import learn
from services.transactions import SendCommand, transaction_payload
from services.uow import UnitOfWork

#: Fields a person may change on a transaction.
EDITABLE = ("amount", "occurred_on", "payee", "description", "notes", "category", "tags")


@dataclass(frozen=True)
class ChangeTransaction:
    """The command: change these fields of a transaction (delete=True: remove it)."""

    command_id: str
    transaction_id: str
    household_id: str
    user_id: str
    changes: dict[str, Any]
    correlation_id: str
    delete: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChangeTransaction:
        """The command from a message payload."""
        return cls(**data)


def submit_change(caller: Caller, transaction_id: uuid.UUID, changes: dict[str, Any], delete: bool,
                  uow: UnitOfWork, send: SendCommand) -> None:
    """Check a change (or the deletion) of one of the caller's transactions, then send it to the pools."""
    with uow:
        txn = uow.session.scalar(select(Transaction).where(
            Transaction.id == transaction_id, Transaction.household_id == caller.household_id,
            Transaction.deleted_at.is_(None)))
        if txn is None:
            raise NotFound("no such transaction")
        changes = {} if delete else _checked(caller, txn, changes, uow)
    send(ChangeTransaction(command_id=str(uuid.uuid4()), transaction_id=str(transaction_id),
                           household_id=str(caller.household_id), user_id=str(caller.user_id), changes=changes,
                           correlation_id=caller.correlation_id, delete=delete).to_dict())


def _checked(caller: Caller, txn: Transaction, changes: dict[str, Any], uow: UnitOfWork) -> dict[str, Any]:
    """The changes as the command carries them; Invalid naming the field that cannot be applied."""
    if not changes:
        raise Invalid("nothing to change: give at least one of " + ", ".join(EDITABLE))
    checked = dict(changes)
    if "amount" in checked:
        try:
            checked["amount"] = format_amount(parse_amount(checked["amount"], txn.currency), txn.currency)
        except InvalidMoney as exc:
            raise Invalid(exc.reason, field="amount") from None
    if "occurred_on" in checked:
        checked["occurred_on"] = checked["occurred_on"].isoformat()
    if "category" in checked and find_category(caller.household_id, checked["category"], uow) is None:
        raise Invalid("no such category", field="category")
    return checked


def _first_time(command_id: str, uow: UnitOfWork) -> bool:
    """Claim a command id in this transaction; False when it was applied before."""
    claimed = uow.session.execute(insert(ProcessedCommand).values(command_id=uuid.UUID(command_id))
                                  .on_conflict_do_nothing().returning(ProcessedCommand.command_id))
    return claimed.first() is not None


def change_transaction(cmd: ChangeTransaction, uow: UnitOfWork) -> None:
    """Apply a change or a deletion. Safe to run twice; budgets, balances and reports follow its event."""
    with uow:
        if not _first_time(cmd.command_id, uow):
            return
        txn = uow.session.get(Transaction, uuid.UUID(cmd.transaction_id), with_for_update={"key_share": True})
        if txn is None or str(txn.household_id) != cmd.household_id or txn.deleted_at is not None:
            uow.commit()
            return
        if cmd.delete:
            _delete(txn, cmd, uow)
        else:
            _change(txn, cmd, uow)
        uow.commit()


def _event(txn: Transaction, type: str, cmd: ChangeTransaction, extra: dict[str, Any], uow: UnitOfWork) -> None:
    category = uow.session.get(Category, txn.category_id) if txn.category_id else None
    payload = {**transaction_payload(txn, category.name if category else None), **extra}
    uow.emit(Event(type, payload, cmd.household_id, cmd.user_id, cmd.correlation_id, cmd.command_id))


def _delete(txn: Transaction, cmd: ChangeTransaction, uow: UnitOfWork) -> None:
    if txn.status == "recorded":
        move(txn, -1, uow)
    txn.deleted_at = dt.datetime.now(dt.UTC)
    _event(txn, "TransactionDeleted", cmd, {}, uow)


def _change(txn: Transaction, cmd: ChangeTransaction, uow: UnitOfWork) -> None:
    recorded, previous_day = txn.status == "recorded", txn.occurred_on
    if recorded:
        move(txn, -1, uow)
    changed = _assign(txn, cmd.changes, uow)
    if recorded:
        _revalue(txn, uow)
        move(txn, +1, uow)
        extra: dict[str, Any] = {"changed": sorted(changed)}
        if "occurred_on" in changed:  # the day it left, which the day in the payload no longer says
            extra["previous_occurred_on"] = previous_day.isoformat()
        _event(txn, "TransactionUpdated", cmd, extra, uow)


def _assign(txn: Transaction, changes: dict[str, Any], uow: UnitOfWork) -> set[str]:
    """Write the changed fields; what a person sets by hand is locked against rules."""
    changed = set()
    for name, value in changes.items():
        if name == "category":
            category = find_category(txn.household_id, value, uow)
            txn.category_id, txn.category_source, txn.category_rule_id = category.id, "user", None
            txn.requested_category = category.name
            txn.locked = sorted({*txn.locked, "category"})
            learn(txn.household_id, txn.payee, category.name, uow)
        elif name == "amount":
            txn.amount = Decimal(value)
        elif name == "occurred_on":
            txn.occurred_on = dt.date.fromisoformat(value)
        else:
            setattr(txn, name, value)
            if name == "payee":
                txn.locked = sorted({*txn.locked, "payee"})
        changed.add(name)
    return changed


def _revalue(txn: Transaction, uow: UnitOfWork) -> None:
    """After a change of amount or date, amounts in other currencies are converted again."""
    account = uow.session.get(Account, txn.account_id)
    txn.account_amount = txn.amount if txn.currency == account.currency else None
    if txn.currency == txn.base_currency:
        txn.base_amount, txn.fx_status = txn.amount, "none"
    else:
        txn.base_amount, txn.fx_rate, txn.fx_rate_date, txn.fx_source, txn.fx_status = None, None, None, None, "pending"

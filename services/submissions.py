"""Accepting transactions from the API: a pending row and a confirmed command, or nothing at all."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from domain.money import InvalidMoney, format_amount, parse_amount
from models.ledger import Account, IdempotencyKey, Transaction
from services.accounts import find_category
from services.context import Caller
from services.errors import Invalid, NotFound
from services.transactions import RecordTransaction, SendCommand
from services.uow import UnitOfWork


def submit_transaction(caller: Caller, data: dict[str, Any], idempotency_key: str | None,
                       uow: UnitOfWork, send: SendCommand) -> tuple[uuid.UUID, bool]:
    """Accept a transaction as pending and hand it to the pools; (id, created). Nothing stays if sending fails."""
    with uow:
        if idempotency_key and (known := _known_key(caller, idempotency_key, uow)):
            return known, False
        account = _account(caller, data["account_id"], uow)
        currency = data.get("currency") or account.currency
        _check_transfer(caller, account, currency, data, uow)
        if data.get("category") and find_category(caller.household_id, data["category"], uow) is None:
            raise Invalid("no such category", field="category")
        txn = _pending(caller, account, currency, data)
        txn.amount = _amount(data["amount"], currency)
        uow.session.add(txn)
        if idempotency_key:
            uow.session.add(IdempotencyKey(household_id=caller.household_id, key=idempotency_key,
                                           transaction_id=txn.id))
        try:
            uow.session.flush()
        except IntegrityError:
            uow.session.rollback()
            return _known_key(caller, idempotency_key or "", uow) or txn.id, False
        send(_command(caller, txn).to_dict())
        uow.commit()
        return txn.id, True


def _check_transfer(caller: Caller, account: Account, currency: str, data: dict[str, Any], uow: UnitOfWork) -> None:
    """A transfer names another account of the household in the same currency; nothing else names one."""
    counter_id = data.get("counter_account_id")
    if data["type"] != "transfer":
        if counter_id:
            raise Invalid("only transfers have a counter account", field="counter_account_id")
        return
    if not counter_id:
        raise Invalid("a transfer needs the account it goes to", field="counter_account_id")
    if counter_id == account.id:
        raise Invalid("a transfer goes to another account", field="counter_account_id")
    counter = _account(caller, counter_id, uow, field="counter_account_id")
    if counter.currency != account.currency or currency != account.currency:
        raise Invalid("transfers move money between accounts of the same currency", field="counter_account_id")


def _amount(text: str, currency: str) -> Decimal:
    try:
        return parse_amount(text, currency)
    except InvalidMoney as exc:
        raise Invalid(exc.reason, field="amount") from None


def _known_key(caller: Caller, key: str, uow: UnitOfWork) -> uuid.UUID | None:
    row = uow.session.get(IdempotencyKey, (caller.household_id, key))
    return row.transaction_id if row else None


def _account(caller: Caller, account_id: uuid.UUID, uow: UnitOfWork, field: str = "account_id") -> Account:
    account = uow.session.scalar(select(Account).where(
        Account.id == account_id, Account.household_id == caller.household_id, Account.deleted_at.is_(None)))
    if account is None:
        raise NotFound("no such account", field=field)
    return account


def _pending(caller: Caller, account: Account, currency: str, data: dict[str, Any]) -> Transaction:
    return Transaction(
        id=uuid.uuid4(), household_id=caller.household_id, account_id=account.id, user_id=caller.user_id,
        type=data["type"], amount=Decimal(0), currency=currency, occurred_on=data["occurred_on"],
        payee=data.get("payee") or "", description=data.get("description") or "", notes=data.get("notes") or "",
        requested_category=data.get("category"), status="pending", base_currency=caller.base_currency,
        correlation_id=caller.correlation_id, counter_account_id=data.get("counter_account_id"),
    )


def _command(caller: Caller, txn: Transaction) -> RecordTransaction:
    return RecordTransaction(
        transaction_id=str(txn.id), household_id=str(caller.household_id), user_id=str(caller.user_id),
        account_id=str(txn.account_id), type=txn.type, amount=format_amount(txn.amount, txn.currency),
        currency=txn.currency, occurred_on=txn.occurred_on.isoformat(), payee=txn.payee,
        description=txn.description, notes=txn.notes, category=txn.requested_category,
        correlation_id=caller.correlation_id,
        counter_account_id=str(txn.counter_account_id) if txn.counter_account_id else None,
    )

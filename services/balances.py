"""How a recorded transaction moves account balances: one leg, or two for a transfer."""

from __future__ import annotations

from decimal import Decimal

from models.ledger import Account, Transaction
from services.uow import UnitOfWork


def signed(kind: str, amount: Decimal) -> Decimal:
    """The effect on the transaction's own account: income adds, expenses and transfers out subtract."""
    return amount if kind == "income" else -amount


def move(txn: Transaction, direction: int, uow: UnitOfWork) -> None:
    """Apply (+1) or take back (-1) a transaction's effect on its account(s), once its amount is known there."""
    if txn.account_amount is None:
        return
    account = uow.session.get(Account, txn.account_id, with_for_update={"key_share": True})
    account.balance += direction * signed(txn.type, txn.account_amount)
    if txn.type == "transfer" and txn.counter_account_id:
        counter = uow.session.get(Account, txn.counter_account_id, with_for_update={"key_share": True})
        counter.balance += direction * txn.account_amount

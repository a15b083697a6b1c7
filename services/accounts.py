"""Opening and reading accounts and categories, always scoped to the caller's household."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select

from domain.events import Event
from domain.money import format_amount
from models.ledger import Account, Category
from services.context import Caller
from services.errors import NotFound
from services.uow import UnitOfWork

#: Account types a household can open.
ACCOUNT_TYPES = ("checking", "savings", "credit_card", "cash", "investment")


def open_account(caller: Caller, name: str, type: str, currency: str, opening: Decimal, uow: UnitOfWork) -> Account:
    """Open an account with an opening balance."""
    with uow:
        account = Account(id=uuid.uuid4(), household_id=caller.household_id, name=name, type=type,
                          currency=currency, opening_balance=opening, balance=opening)
        uow.session.add(account)
        uow.emit(Event("AccountOpened", {"account_id": str(account.id), "name": name, "type": type,
                                         "opening_balance": format_amount(opening, currency), "currency": currency},
                       str(caller.household_id), str(caller.user_id), caller.correlation_id, None))
        uow.commit()
        return account


def get_account(caller: Caller, account_id: uuid.UUID, uow: UnitOfWork) -> Account:
    """One of the caller's accounts; NotFound for any other id."""
    with uow:
        account = uow.session.scalar(select(Account).where(
            Account.id == account_id, Account.household_id == caller.household_id, Account.deleted_at.is_(None)))
        if account is None:
            raise NotFound("no such account", field="account_id")
        return account


def list_accounts(caller: Caller, uow: UnitOfWork) -> list[Account]:
    """The caller's open accounts, oldest first."""
    with uow:
        return list(uow.session.scalars(select(Account).where(
            Account.household_id == caller.household_id, Account.deleted_at.is_(None)).order_by(Account.created_at)))


def list_categories(caller: Caller, uow: UnitOfWork) -> list[Category]:
    """The caller's categories by name."""
    with uow:
        return list(uow.session.scalars(
            select(Category).where(Category.household_id == caller.household_id).order_by(Category.name)))


def find_category(household_id: uuid.UUID, name_or_id: str, uow: UnitOfWork) -> Category | None:
    """A household's category by id or by name (case-insensitive)."""
    query = select(Category).where(Category.household_id == household_id)
    try:
        query = query.where(Category.id == uuid.UUID(name_or_id))
    except ValueError:
        query = query.where(func.lower(Category.name) == name_or_id.strip().lower())
    return uow.session.scalar(query)

"""Accounts, categories, transactions and idempotency keys."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import MONEY, RATE, Amount, Base, Created, UUIDPk


class Account(Base):
    """A bank account, card, wallet or investment account."""

    __tablename__ = "accounts"
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    opening_balance: Mapped[Amount]
    balance: Mapped[Amount]
    created_at: Mapped[Created]
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Category(Base):
    """A spending or income category, optionally under a parent."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("household_id", "name"),)
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"))


class Transaction(Base):
    """A money movement; pending until the categorization pool records it."""

    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_household_date", "household_id", "occurred_on", "id"),)
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    type: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Amount]
    currency: Mapped[str] = mapped_column(String(3))
    occurred_on: Mapped[dt.date]
    payee: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    requested_category: Mapped[str | None] = mapped_column(String(100))
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"))
    category_source: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    reject_reason: Mapped[str | None] = mapped_column(Text)
    base_currency: Mapped[str] = mapped_column(String(3))
    base_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    account_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    fx_status: Mapped[str] = mapped_column(String(10), default="none")
    fx_rate: Mapped[Decimal | None] = mapped_column(RATE)
    fx_rate_date: Mapped[dt.date | None]
    fx_source: Mapped[str | None] = mapped_column(String(20))
    correlation_id: Mapped[str] = mapped_column(String(100), default="")
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[Created]
    recorded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    """An Idempotency-Key a client sent, and the transaction it created."""

    __tablename__ = "idempotency_keys"
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    transaction_id: Mapped[uuid.UUID]
    created_at: Mapped[Created]

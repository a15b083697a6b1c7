"""Accounts, categories, transactions and idempotency keys."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
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
    #: The CSV column mapping of the last import, reused when the next file comes without one.
    import_mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Category(Base):
    """A spending or income category, optionally under a parent."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("household_id", "name"),)
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"))


class Transaction(Base):
    """A money movement; pending until the categorization pool records it. A transfer has two legs:
    out of `account_id`, into `counter_account_id`."""

    __tablename__ = "transactions"
    __table_args__ = (
        Index("ix_transactions_household_date", "household_id", "occurred_on", "id"),
        Index("ix_transactions_account_date", "account_id", "occurred_on", "id"),
        Index("ix_transactions_search", text("lower(payee || ' ' || description) gin_trgm_ops"),
              postgresql_using="gin"),
        UniqueConstraint("account_id", "dedupe_key", name="uq_transactions_account_dedupe_key"),
    )
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
    counter_account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list, server_default="{}")
    #: Fields the user set by hand ("category", "payee"): rules never overwrite them.
    locked: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list, server_default="{}")
    category_rule_id: Mapped[uuid.UUID | None]
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    import_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    #: The bank's id (FITID) or a content hash with its occurrence: a re-import adds nothing.
    dedupe_key: Mapped[str | None] = mapped_column(String(250))
    possible_duplicate_of: Mapped[uuid.UUID | None]


class IdempotencyKey(Base):
    """An Idempotency-Key a client sent, and the transaction it created."""

    __tablename__ = "idempotency_keys"
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    transaction_id: Mapped[uuid.UUID]
    created_at: Mapped[Created]


class Rule(Base):
    """A household's categorization rule: a condition tree and actions, run by stage and order."""

    __tablename__ = "rules"
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(10), default="default")
    order: Mapped[int] = mapped_column(Integer, default=0)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONB)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Made by the system when a user re-categorized a payee.
    learned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[Created]


class Import(Base):
    """An uploaded statement file and how its rows fared."""

    __tablename__ = "imports"
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(300))
    format: Mapped[str] = mapped_column(String(10))
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    #: The file itself until its rows are read; deferred: every other read of an import leaves it in PostgreSQL.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    rows_total: Mapped[int] = mapped_column(BigInteger, default=0)
    imported: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    possible_duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    batches_total: Mapped[int] = mapped_column(Integer, default=0)
    batches_done: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    correlation_id: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[Created]
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ProcessedCommand(Base):
    """A command already applied: updates, deletes and batches run once however often they arrive."""

    __tablename__ = "processed_commands"
    command_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[Created]

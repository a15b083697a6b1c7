"""The audit archive in PostgreSQL: every event once, each household's records in a hash chain."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Created


class AuditRecord(Base):
    """One event as the audit pool archived it, linked into its chain (PostgreSQL backend)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_household_time", "household_id", "occurred_at"),
        Index("ix_audit_time", "occurred_at", "event_id"),
        UniqueConstraint("chain_id", "seq", name="uq_audit_chain_seq"),
    )
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(60), index=True)
    version: Mapped[int]
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    household_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None]
    correlation_id: Mapped[str] = mapped_column(String(100), index=True)
    causation_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    #: Client address and user agent of the API request that caused the event (None for system events).
    origin: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    #: The household id, or "platform" for events without a household.
    chain_id: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[Created]


class AuditChain(Base):
    """The head of one chain (locked to serialize appends) and its anchor after retention removed old records."""

    __tablename__ = "audit_chains"
    chain_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    head_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    head_hash: Mapped[str] = mapped_column(String(64), server_default="0" * 64)
    #: The seq and hash of the last record retention removed: the chain's stored records start after it.
    base_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    base_hash: Mapped[str] = mapped_column(String(64), server_default="0" * 64)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                    onupdate=func.now())

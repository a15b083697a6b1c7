"""The transactional outbox, notifications and the audit archive."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Created, UUIDPk


class OutboxEvent(Base):
    """An event committed with the change that caused it, published after the commit."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "created_at", postgresql_where="published_at IS NULL"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    exchange: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[Created]
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """A message to one user on one channel, made once per event."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("event_id", "user_id", "channel"),)
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="sent")
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[Created]


class AuditRecord(Base):
    """One event as the audit pool archived it (PostgreSQL backend)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_household_time", "household_id", "occurred_at"),)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(60), index=True)
    version: Mapped[int]
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    household_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None]
    correlation_id: Mapped[str] = mapped_column(String(100), index=True)
    causation_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    recorded_at: Mapped[Created]
    note: Mapped[str | None] = mapped_column(Text)

"""The audit archive in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import DateTime, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Created


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

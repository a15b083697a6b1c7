"""Notifications: one message to one person (or webhook) on one channel, its delivery attempts, preferences and
webhooks."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Created, UUIDPk
from models.crypto import EncryptedText


class Notification(Base):
    """A message to one user on one channel (or to one webhook), made once per event."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id", "channel", "target", name="uq_notifications_event_recipient"),
        Index("ix_notifications_due", "next_attempt_at", postgresql_where="status in ('queued', 'sending')"),
        Index("ix_notifications_inbox", "user_id", "household_id", "channel", "created_at", "id"),
    )
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(10))
    #: The webhook's id for the webhook channel; empty for the person's own channels.
    target: Mapped[str] = mapped_column(String(64), default="", server_default="")
    kind: Mapped[str | None] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    short: Mapped[str | None] = mapped_column(String(320))
    #: For webhooks: the JSON document delivered.
    document: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="sent")
    reason: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    event_occurred_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[Created]


class DeliveryAttempt(Base):
    """One try to hand a notification to its provider or webhook: the delivery log."""

    __tablename__ = "notification_attempts"
    id: Mapped[UUIDPk]
    notification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"),
                                                       index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    #: sent, retry (will be tried again), failed or skipped.
    outcome: Mapped[str] = mapped_column(String(10))
    status_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    #: Milliseconds until the next attempt, for a retry.
    retry_in_ms: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class NotificationPreference(Base):
    """A person's own choice for one kind of notification on one channel (defaults apply otherwise)."""

    __tablename__ = "notification_preferences"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)


class Webhook(Base):
    """An outbound webhook of a household: signed deliveries of the household's notifications."""

    __tablename__ = "webhooks"
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(EncryptedText)
    #: Kinds delivered; empty: every kind.
    kinds: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[Created]
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

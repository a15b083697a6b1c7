"""The outbox relay: publishes committed events whose publication did not complete."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from domain.events import Event
from models.messaging import OutboxEvent
from services.uow import Publish


def relay_pending(factory: sessionmaker, publish: Publish, *, older_than_seconds: int = 5, limit: int = 500) -> int:
    """Publish up to `limit` unpublished events older than a few seconds; returns how many went out."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_seconds)
    sent = 0
    with factory() as session, session.begin():
        rows = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None), OutboxEvent.created_at < cutoff)
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            publish(Event.from_dict(row.envelope))
            row.published_at = func.now()
            sent += 1
    return sent


def unpublished_count(factory: sessionmaker) -> int:
    """How many committed events still wait for publication."""
    with factory() as session:
        return session.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None))) or 0

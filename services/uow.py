"""The unit of work: one database transaction, its outbox, and publishing after the commit."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session, sessionmaker

from domain.events import Event
from models.messaging import OutboxEvent

log = logging.getLogger(__name__)

Publish = Callable[[Event], None]
#: Records that RabbitMQ confirmed these events (by event id).
Mark = Callable[[list[str]], None]
#: The request (correlation id, {client_address, user_agent}) this thread handles: set by the API per request and by
#: the workers per message, so the events a request causes carry where it came from.
request_origin: ContextVar[tuple[str, dict[str, str]] | None] = ContextVar("request_origin", default=None)


def with_origin(event: Event) -> Event:
    """The event with the origin of the request it belongs to (same correlation id), if it has none yet."""
    current = request_origin.get()
    if event.origin is not None or current is None or current[0] != event.correlation_id:
        return event
    return dataclasses.replace(event, origin=current[1])


class UnitOfWork:
    """Commits changes together with the events they cause; publishes those events after the commit."""

    session: Session

    def __init__(self, session_factory: sessionmaker, publish: Publish, mark: Mark | None = None) -> None:
        self._factory = session_factory
        self._publish = publish
        self._mark = mark or (lambda ids: mark_published(session_factory, ids))
        self._pending: list[Event] = []
        self._committed: list[Event] = []

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        self._pending, self._committed = [], []
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # close() rolls back anything uncommitted and detaches objects without expiring them,
        # so callers can still read what the unit of work loaded.
        self.session.close()
        if self._committed:
            publish_and_mark(self._publish, self._mark, self._committed)

    def emit(self, event: Event) -> None:
        """Store an event in the outbox of this transaction."""
        event = with_origin(event)
        self._pending.append(event)
        self.session.add(OutboxEvent(event_id=event.event_id, exchange=event.exchange, envelope=event.to_dict()))

    def commit(self) -> None:
        """Commit the changes and their events."""
        self.session.commit()
        self._committed.extend(self._pending)
        self._pending = []

    @property
    def committed_events(self) -> list[Event]:
        """The events this unit of work committed (for tests and callers that answer with them)."""
        return list(self._committed)


def publish_and_mark(publish: Publish, mark: Mark, events: list[Event]) -> int:
    """Publish committed events; mark those RabbitMQ confirmed. The relay retries the rest."""
    done = []
    for event in events:
        try:
            publish(event)
        except Exception:  # noqa: BLE001 - the relay will retry; the change is already committed
            log.warning("event %s not published yet; the outbox relay will retry", event.event_id, exc_info=True)
            break
        done.append(event.event_id)
    if done:
        mark(done)
    return len(done)


def mark_published(factory: sessionmaker, event_ids: list[str]) -> None:
    """Mark outbox rows as published, so the relay leaves them alone."""
    with factory() as session, session.begin():
        session.execute(update(OutboxEvent).where(OutboxEvent.event_id.in_(event_ids)).values(published_at=func.now()))

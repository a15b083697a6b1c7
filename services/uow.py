"""The unit of work: one database transaction, its outbox, and publishing after the commit."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from domain.events import Event
from models.messaging import OutboxEvent

log = logging.getLogger(__name__)

Publish = Callable[[Event], None]
#: Publishes events of one exchange together (one message), confirmed; raises unless RabbitMQ took them.
PublishMany = Callable[[list[Event]], None]
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
    """Commits changes together with the events they cause; publishes those events after the commit.

    Entered again while open, it nests: the inner block runs in a SAVEPOINT of the same transaction, its
    `commit()` releases the savepoint and leaving it uncommitted rolls back only its own changes and events.
    A pool handles a batch of messages this way: one transaction and one commit for many, each message as
    isolated as if it had its own.
    """

    session: Session

    def __init__(self, session_factory: sessionmaker, publish: Publish, mark: Mark | None = None,
                 publish_many: PublishMany | None = None) -> None:
        self._factory = session_factory
        self._publish_many = publish_many or one_by_one(publish)
        self._mark = mark or (lambda ids: mark_published(session_factory, ids))
        self._pending: list[Event] = []
        self._committed: list[Event] = []
        self._after: list[Callable[[], None]] = []
        #: Callbacks whose changes are committed: they run once the unit of work is left.
        self._kept: list[Callable[[], None]] = []
        #: One (savepoint, events kept, callbacks kept) per nested block that is open.
        self._frames: list[tuple[SessionTransaction, int, int]] = []
        self._depth = 0

    def __enter__(self) -> UnitOfWork:
        self._depth += 1
        if self._depth > 1:
            self._frames.append((self.session.begin_nested(), len(self._pending), len(self._after)))
            return self
        self.session = self._factory()
        self._pending, self._committed, self._after, self._kept = [], [], [], []
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._depth -= 1
        if self._depth:
            savepoint, events, callbacks = self._frames.pop()
            if savepoint.is_active:
                savepoint.rollback()
            del self._pending[events:], self._after[callbacks:]
            return
        # close() rolls back anything uncommitted and detaches objects without expiring them,
        # so callers can still read what the unit of work loaded.
        self.session.close()
        after, self._kept, self._after = self._kept, [], []
        if self._committed:
            publish_and_mark(self._publish_many, self._mark, self._committed)
        for callback in after:
            callback()

    def emit(self, event: Event) -> None:
        """Store an event in the outbox of this transaction."""
        event = with_origin(event)
        self._pending.append(event)
        self.session.add(OutboxEvent(event_id=event.event_id, exchange=event.exchange, envelope=event.to_dict()))

    def emit_many(self, events: list[Event]) -> None:
        """Store events in the outbox of this transaction, as `emit` does each, in one statement written now."""
        if not events:
            return
        events = [with_origin(event) for event in events]
        self._pending.extend(events)
        # One prebuilt statement fed one JSON document, on the session's connection (so in the open savepoint, if
        # any): a pool that emits an event per message spends more on OutboxEvent objects, their flush and
        # Event.to_dict's deep copies than on the rest of its work.
        self.session.connection().execute(_INSERT_OUTBOX, {"rows": json.dumps(
            [{"event_id": e.event_id, "exchange": e.exchange, "envelope": e.envelope()} for e in events])})

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the outermost transaction committed and its events were published (never if the
        changes of this block are rolled back); outside any block, at once."""
        if self._depth:
            self._after.append(callback)
        else:
            callback()

    def commit(self) -> None:
        """Commit the changes and their events (in a nested block: keep them, for the outer commit)."""
        if self._depth > 1:
            savepoint, _, _ = self._frames[-1]
            savepoint.commit()
            self._frames[-1] = (self.session.begin_nested(), len(self._pending), len(self._after))
            return
        self.session.commit()
        self._committed.extend(self._pending)
        self._kept.extend(self._after)
        self._pending, self._after = [], []

    @property
    def committed_events(self) -> list[Event]:
        """The events this unit of work committed (for tests and callers that answer with them)."""
        return list(self._committed)


#: Outbox rows from one JSON document (created_at and published_at take their defaults, as the ORM leaves them).
_INSERT_OUTBOX = text(
    "INSERT INTO outbox (event_id, exchange, envelope) SELECT event_id, exchange, envelope"
    " FROM json_to_recordset(CAST(:rows AS json)) AS r(event_id uuid, exchange varchar, envelope jsonb)")


def each_in_one_transaction(uow: UnitOfWork, work: list[Callable[[UnitOfWork], None]]) -> list[BaseException | None]:
    """Run each piece of work (which enters `uow` itself, so runs in a savepoint) in one transaction, then commit
    once; per piece, the error it raised, or None. A piece that fails leaves the others' changes to commit; a
    failing commit raises."""
    if len(work) == 1:  # nothing to share: no savepoint
        try:
            work[0](uow)
            return [None]
        except Exception as error:  # noqa: BLE001 - handed back with its piece of work
            return [error]
    errors: list[BaseException | None] = []
    with uow:
        for do in work:
            try:
                do(uow)
                errors.append(None)
            except Exception as error:  # noqa: BLE001 - handed back with its piece of work
                errors.append(error)
        uow.commit()
    return errors


def publish_and_mark(publish_many: PublishMany, mark: Mark, events: list[Event]) -> int:
    """Publish committed events (one message per exchange); mark those RabbitMQ confirmed. The relay retries the
    rest."""
    done: list[str] = []
    for batch in by_exchange(events):
        try:
            publish_many(batch)
        except Exception:  # noqa: BLE001 - the relay will retry; the change is already committed
            log.warning("%d event(s) not published yet; the outbox relay will retry", len(events) - len(done),
                        exc_info=True)
            break
        done.extend(event.event_id for event in batch)
    if done:
        mark(done)
    return len(done)


def one_by_one(publish: Publish) -> PublishMany:
    """Publishing many as one message at a time."""
    def publish_many(events: list[Event]) -> None:
        for event in events:
            publish(event)
    return publish_many


def by_exchange(events: list[Event]) -> list[list[Event]]:
    """Events grouped by exchange, each group in the order the events were emitted."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event.exchange, []).append(event)
    return list(groups.values())


#: Marks outbox rows published by event id: one SQL text whatever the number of ids (prepared by psycopg).
_MARK_PUBLISHED = text("UPDATE outbox SET published_at = now() WHERE event_id = ANY(CAST(:ids AS uuid[]))")


def mark_published(factory: sessionmaker, event_ids: list[str]) -> None:
    """Mark outbox rows as published, so the relay leaves them alone."""
    with factory() as session, session.begin():
        session.execute(_MARK_PUBLISHED, {"ids": event_ids})

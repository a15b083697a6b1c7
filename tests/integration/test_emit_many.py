"""Emitting many events in one statement keeps `emit`'s contract: the outbox rows are the envelopes `to_dict` gives,
a nested block left uncommitted drops its own, each takes its request's origin, and committed ones are published
after the commit, in the order emitted."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from config import wiring
from domain.events import Event
from models.messaging import OutboxEvent
from services.uow import UnitOfWork, request_origin


class Published:
    """What the unit of work published, message by message."""

    def __init__(self) -> None:
        self.messages: list[list[Event]] = []

    def __call__(self, events: list[Event]) -> None:
        self.messages.append(list(events))


def _uow(published: Published) -> UnitOfWork:
    return UnitOfWork(wiring.session_factory(), lambda e: published([e]), lambda ids: None, published)


def _event(name: str, correlation_id: str = "c", **kwargs: object) -> Event:
    return Event("AccountOpened", {"name": name, "tags": ["a", "b"]}, str(uuid.uuid4()), None, correlation_id, None,
                 **kwargs)


def _outbox(events: list[Event]) -> dict[str, tuple[str, dict]]:
    with wiring.session_factory()() as session:
        return {str(row.event_id): (row.exchange, row.envelope) for row in session.scalars(
            select(OutboxEvent).where(OutboxEvent.event_id.in_([uuid.UUID(e.event_id) for e in events])))}


def test_the_outbox_holds_each_envelope_as_emit_stores_it():
    """Given events with and without an origin, emitted together and one by one, every outbox row is the event's
    exchange and `to_dict()`, and one message publishes them in the order emitted."""
    published = Published()
    together = [_event("one"), _event("two", origin={"client_address": "10.0.0.1", "user_agent": "t"})]
    alone = _event("three")
    uow = _uow(published)
    with uow:
        uow.emit_many(together)
        uow.emit(alone)
        uow.commit()
    events = [*together, alone]
    assert _outbox(events) == {e.event_id: (e.exchange, e.to_dict()) for e in events}
    assert published.messages == [events]


def test_a_nested_block_left_uncommitted_drops_its_events():
    """Given events emitted together in a committed and in an abandoned nested block, only the first are stored
    and published."""
    published = Published()
    kept, dropped = [_event("kept-1"), _event("kept-2")], [_event("dropped")]
    uow = _uow(published)
    with uow:
        with uow:
            uow.emit_many(kept)
            uow.commit()
        with uow:
            uow.emit_many(dropped)
        uow.commit()
    assert set(_outbox(kept + dropped)) == {e.event_id for e in kept}
    assert published.messages == [kept]


def test_each_event_takes_the_origin_of_its_request():
    """Given the request being handled, the events of its correlation that carry no origin take its origin; the
    others keep theirs."""
    published = Published()
    origin = {"client_address": "10.0.0.9", "user_agent": "ua"}
    own = {"client_address": "10.0.0.1", "user_agent": "t"}
    events = [_event("mine", "req-1"), _event("other", "req-2"), _event("own", "req-1", origin=own)]
    token = request_origin.set(("req-1", origin))
    try:
        uow = _uow(published)
        with uow:
            uow.emit_many(events)
            uow.commit()
    finally:
        request_origin.reset(token)
    sent = published.messages[0]
    assert [e.origin for e in sent] == [origin, None, own]
    assert {i: envelope for i, (_, envelope) in _outbox(events).items()} == {e.event_id: e.to_dict() for e in sent}

"""Declaring actors (commands on a pool's own queue, subscribers to fanout exchanges), and handling the events
of one message, which may carry several committed together."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import dramatiq

from config import wiring
from config.logs import correlation_id
from domain.events import Event
from services.group_commit import GroupCommit, Item
from services.uow import UnitOfWork, each_in_one_transaction, request_origin

log = logging.getLogger(__name__)

#: What one event message carries: an envelope, or a list of envelopes committed together.
Envelopes = dict[str, Any] | list[dict[str, Any]]
#: Handles one event inside the unit of work it is given (entering it, and committing, as usual).
Handle = Callable[[Event, UnitOfWork], None]


def command(queue_name: str, **options: Any) -> Callable[[Callable[..., None]], dramatiq.Actor]:
    """An actor that consumes commands sent point-to-point to `queue_name`."""
    def decorate(fn: Callable[..., None]) -> dramatiq.Actor:
        return dramatiq.actor(fn, broker=wiring.broker(), queue_name=queue_name, **options)
    return decorate


def subscriber(queue_name: str, exchanges: tuple[str, ...], **options: Any
               ) -> Callable[[Callable[..., None]], dramatiq.Actor]:
    """An actor that receives every event of `exchanges` through its own durable queue."""
    def decorate(fn: Callable[..., None]) -> dramatiq.Actor:
        actor = dramatiq.actor(fn, broker=wiring.broker(), queue_name=queue_name, **options)
        wiring.broker().subscribe(queue_name, actor.actor_name, exchanges)
        return actor
    return decorate


def event_writer(name: str, handle_batch: Callable[[list[Event]], None], max_batch: int = 500
                 ) -> GroupCommit[Event, None]:
    """A group commit of events for a subscriber: worker threads hand in their message's events (`submit_all`) and
    wait; one writer handles whatever is waiting with `handle_batch`, so threads of one process never wait for each
    other's locks (a household's budgets, its aggregates) and batches grow with the backlog."""
    def run(items: list[Item[Event]]) -> list[None]:
        handle_batch([event for event, _ in items])
        return [None] * len(items)

    return GroupCommit(run, name=name, max_batch=max_batch)


def events_of(envelopes: Envelopes) -> list[Event]:
    """The events of one message."""
    return [Event.from_dict(e) for e in (envelopes if isinstance(envelopes, list) else [envelopes])]


def handle_each(envelopes: Envelopes, handle: Handle) -> None:
    """Handle every event of a message in ONE transaction, each in its own savepoint, household by household.

    A failing event does not undo the others: they commit, then its error is raised so that the message is
    retried, and the events already handled are no-ops the second time.
    """
    handle_events(events_of(envelopes), handle)


def handle_events(events: list[Event], handle: Handle) -> None:
    """`handle_each` for events already decoded."""
    # The same order in every process: locks per household are taken without deadlocks.
    ordered = sorted(events, key=lambda e: e.household_id or "")
    errors = each_in_one_transaction(wiring.uow(), [partial(_handle_in_context, event, handle) for event in ordered])
    failed = [(event, error) for event, error in zip(ordered, errors, strict=True) if error is not None]
    for event, error in failed:
        log.warning("event %s (%s) failed within its batch", event.event_id, event.type, exc_info=error)
    if failed:
        raise failed[0][1]


def _handle_in_context(event: Event, handle: Handle, uow: UnitOfWork) -> None:
    with _context_of(event):
        handle(event, uow)


@contextmanager
def _context_of(event: Event) -> Iterator[None]:
    """Log lines and the events caused carry this event's correlation id and origin while it is handled."""
    saved = correlation_id.set(event.correlation_id or ""), request_origin.set(
        (event.correlation_id, event.origin) if event.origin else None)
    try:
        yield
    finally:
        correlation_id.reset(saved[0])
        request_origin.reset(saved[1])

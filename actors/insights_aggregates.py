"""Keeping the daily aggregates of the insights pool in step with the ledger."""

from __future__ import annotations

from functools import cache

from actors.bus import Envelopes, event_writer, events_of, subscriber
from config import wiring
from domain.events import Event
from services.group_commit import GroupCommit
from services.insights_aggregates import apply_events


@subscriber("insights.aggregates", exchanges=("finance.transactions", "finance.fx"))
def aggregate_on_event(envelopes: Envelopes) -> None:
    """Recompute the aggregates of the days the ledger or FX events of one message touched, from SQL, together with
    whatever other messages wait; returns once that is committed. Safe to run twice."""
    writer().submit_all(events_of(envelopes))


@cache
def writer() -> GroupCommit[Event, None]:
    """This process's group commit of aggregates: one writer, so its threads never wait for each other's household
    locks, and a day many messages touched is recomputed once."""
    return event_writer("aggregates-group-commit", _recompute)


def _recompute(events: list[Event]) -> None:
    apply_events(events, wiring.uow())  # one transaction of its own: no savepoint around its reads

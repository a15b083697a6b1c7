"""Keeping the daily aggregates of the insights pool in step with the ledger."""

from __future__ import annotations

from actors.bus import Envelopes, events_of, subscriber
from config import wiring
from services.insights_aggregates import apply_events


@subscriber("insights.aggregates", exchanges=("finance.transactions", "finance.fx"))
def aggregate_on_event(envelopes: Envelopes) -> None:
    """Recompute the aggregates of the days the ledger or FX events of one message touched, from SQL. Safe to run
    twice."""
    uow = wiring.uow()
    with uow:  # one transaction: a day many of them touched is recomputed once
        apply_events(events_of(envelopes), uow)
        uow.commit()

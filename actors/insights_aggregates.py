"""Keeping the daily aggregates of the insights pool in step with the ledger."""

from __future__ import annotations

from typing import Any

from actors.bus import subscriber
from config import wiring
from domain.events import Event
from services.insights_aggregates import apply_event


@subscriber("insights.aggregates", exchanges=("finance.transactions", "finance.fx"))
def aggregate_on_event(envelope: dict[str, Any]) -> None:
    """Recompute the aggregates of the days one ledger or FX event touched, from SQL. Safe to run twice."""
    apply_event(Event.from_dict(envelope), wiring.uow())

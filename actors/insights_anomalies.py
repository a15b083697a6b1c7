"""Flagging unusual transactions as they land."""

from __future__ import annotations

import logging
import uuid

from actors.bus import Envelopes, events_of, handle_events, subscriber
from config import wiring
from domain.events import Event
from services.insights import detect_anomalies, detect_anomalies_many, detect_in_import
from services.uow import UnitOfWork

log = logging.getLogger(__name__)


@subscriber("insights.anomalies", exchanges=("finance.transactions",))
def detect_on_event(envelopes: Envelopes) -> None:
    """Look at recorded expenses (or a finished import's recent expenses) for anomalies; AnomalyDetected once
    per (transaction, kind). Safe to run twice."""
    events = events_of(envelopes)
    # In the order handle_events would take them: household by household.
    recorded = sorted((e for e in events if _is_recorded_expense(e)), key=lambda e: e.household_id or "")
    if len(recorded) > 1:
        try:  # the transactions and their histories read once for the lot
            detect_anomalies_many([(uuid.UUID(e.payload["transaction_id"]), e) for e in recorded], wiring.uow())
        except Exception:  # noqa: BLE001 - one bad event must not hold up the others: one by one instead
            log.warning("anomalies: a batch of %d failed; examining one by one", len(recorded), exc_info=True)
        else:
            events = [e for e in events if not _is_recorded_expense(e)]
    if events:
        handle_events(events, _detect)


def _is_recorded_expense(event: Event) -> bool:
    return event.type == "TransactionRecorded" and event.payload.get("type") == "expense"


def _detect(event: Event, uow: UnitOfWork) -> None:
    if _is_recorded_expense(event):
        detect_anomalies(uuid.UUID(event.payload["transaction_id"]), event, uow)
    elif event.type == "ImportFinished":
        detect_in_import(uuid.UUID(event.payload["import_id"]), event, uow)

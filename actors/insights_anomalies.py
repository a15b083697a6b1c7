"""Flagging unusual transactions as they land."""

from __future__ import annotations

import uuid
from typing import Any

from actors.bus import subscriber
from config import wiring
from domain.events import Event
from services.insights import detect_anomalies, detect_in_import


@subscriber("insights.anomalies", exchanges=("finance.transactions",))
def detect_on_event(envelope: dict[str, Any]) -> None:
    """Look at a recorded expense (or a finished import's recent expenses) for anomalies; AnomalyDetected once
    per (transaction, kind). Safe to run twice."""
    event = Event.from_dict(envelope)
    if event.type == "TransactionRecorded" and event.payload.get("type") == "expense":
        detect_anomalies(uuid.UUID(event.payload["transaction_id"]), event, wiring.uow())
    elif event.type == "ImportFinished":
        detect_in_import(uuid.UUID(event.payload["import_id"]), event, wiring.uow())

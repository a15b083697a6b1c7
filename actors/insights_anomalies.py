"""Flagging unusual transactions as they land."""

from __future__ import annotations

import uuid

from actors.bus import Envelopes, handle_each, subscriber
from domain.events import Event
from services.insights import detect_anomalies, detect_in_import
from services.uow import UnitOfWork


@subscriber("insights.anomalies", exchanges=("finance.transactions",))
def detect_on_event(envelopes: Envelopes) -> None:
    """Look at recorded expenses (or a finished import's recent expenses) for anomalies; AnomalyDetected once
    per (transaction, kind). Safe to run twice."""
    handle_each(envelopes, _detect)


def _detect(event: Event, uow: UnitOfWork) -> None:
    if event.type == "TransactionRecorded" and event.payload.get("type") == "expense":
        detect_anomalies(uuid.UUID(event.payload["transaction_id"]), event, uow)
    elif event.type == "ImportFinished":
        detect_in_import(uuid.UUID(event.payload["import_id"]), event, uow)

"""The FX pool: converts transactions in a foreign currency into the household's base currency."""

from __future__ import annotations

import uuid
from typing import Any

from actors.bus import subscriber
from config import wiring
from domain.events import Event
from services.fx import convert_transaction

#: The queues this pool consumes.
QUEUES = ("fx.events",)


@subscriber("fx.events", exchanges=("finance.transactions",))
def fx_on_transaction_event(envelope: dict[str, Any]) -> None:
    """Convert a recorded transaction that waits for a rate. Safe to run twice."""
    event = Event.from_dict(envelope)
    if event.type in ("TransactionRecorded", "TransactionUpdated") and event.payload.get("fx_status") == "pending":
        convert_transaction(uuid.UUID(event.payload["transaction_id"]), wiring.rates(), event, wiring.uow())

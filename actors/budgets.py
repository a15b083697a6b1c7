"""The budgets pool: counts recorded spending against budgets and alerts on thresholds."""

from __future__ import annotations

import uuid
from typing import Any

from actors.bus import subscriber
from config import wiring
from domain.events import Event
from services.budgets import apply_import, apply_transaction, rebuild

#: The queues this pool consumes.
QUEUES = ("budgets.events",)
#: The events that change what a transaction counts for.
_TRANSACTION_EVENTS = {"TransactionRecorded", "TransactionUpdated", "TransactionDeleted", "CurrencyConverted"}
#: Events that move many transactions at once: the household's budgets are rebuilt from SQL.
_HOUSEHOLD_EVENTS = {"CategoriesMerged", "RuleApplied", "ImportReverted", "HistoryReconverted"}


@subscriber("budgets.events", exchanges=("finance.transactions", "finance.fx"))
def budgets_on_event(envelope: dict[str, Any]) -> None:
    """Bring budgets up to date with one transaction. Safe to run twice."""
    event = Event.from_dict(envelope)
    if event.type in _TRANSACTION_EVENTS:
        apply_transaction(uuid.UUID(event.payload["transaction_id"]), event, wiring.uow(), wiring.redis_client())
    elif event.type == "ImportFinished":
        apply_import(uuid.UUID(event.payload["import_id"]), uuid.UUID(event.household_id), event, wiring.uow(),
                     wiring.redis_client())
    elif event.type in _HOUSEHOLD_EVENTS:
        rebuild(uuid.UUID(event.household_id), event, wiring.uow(), wiring.redis_client())

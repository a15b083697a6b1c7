"""The budgets pool: counts recorded spending against budgets and alerts on thresholds."""

from __future__ import annotations

import logging
import uuid
from functools import cache

from actors.bus import Envelopes, event_writer, events_of, handle_events, subscriber
from config import wiring
from domain.events import Event
from services.budgets import apply_import, apply_transaction, apply_transactions, rebuild
from services.group_commit import GroupCommit
from services.uow import UnitOfWork

log = logging.getLogger(__name__)

#: The queues this pool consumes.
QUEUES = ("budgets.events",)
#: The events that change what a transaction counts for.
_TRANSACTION_EVENTS = {"TransactionRecorded", "TransactionUpdated", "TransactionDeleted", "CurrencyConverted"}
#: Events that move many transactions at once: the household's budgets are rebuilt from SQL.
_HOUSEHOLD_EVENTS = {"CategoriesMerged", "RuleApplied", "ImportReverted", "HistoryReconverted"}


@subscriber("budgets.events", exchanges=("finance.transactions", "finance.fx"))
def budgets_on_event(envelopes: Envelopes) -> None:
    """Bring budgets up to date with the transactions of one message, together with whatever other messages wait;
    returns once that is committed. Safe to run twice."""
    writer().submit_all(events_of(envelopes))


@cache
def writer() -> GroupCommit[Event, None]:
    """This process's group commit of budget updates: one writer, so its threads never wait for each other's
    household locks."""
    return event_writer("budgets-group-commit", apply_events)


def apply_events(events: list[Event]) -> None:
    """Bring budgets up to date with events: the transactions' in one go, then the rest one by one."""
    counted = [e for e in events if e.type in _TRANSACTION_EVENTS]
    if len(counted) > 1:
        try:  # one lock per household and one threshold check per period for the lot
            apply_transactions([(uuid.UUID(e.payload["transaction_id"]), e) for e in counted], wiring.uow(),
                               wiring.redis_client())
        except Exception:  # noqa: BLE001 - one bad event must not hold up the others: one by one instead
            log.warning("budgets: a batch of %d failed; applying one by one", len(counted), exc_info=True)
        else:
            events = [e for e in events if e.type not in _TRANSACTION_EVENTS]
    if events:
        handle_events(events, _apply)


def _apply(event: Event, uow: UnitOfWork) -> None:
    if event.type in _TRANSACTION_EVENTS:
        apply_transaction(uuid.UUID(event.payload["transaction_id"]), event, uow, wiring.redis_client())
    elif event.type == "ImportFinished":
        apply_import(uuid.UUID(event.payload["import_id"]), uuid.UUID(event.household_id), event, uow,
                     wiring.redis_client())
    elif event.type in _HOUSEHOLD_EVENTS:
        rebuild(uuid.UUID(event.household_id), event, uow, wiring.redis_client())

"""The notifications pool: turns events into messages for people."""

from __future__ import annotations

from typing import Any

from actors.bus import subscriber
from config import wiring
from domain.events import Event
from services.notifications import notify

#: The queues this pool consumes.
QUEUES = ("notifications.events",)


@subscriber("notifications.events", exchanges=("finance.users", "finance.budgets", "finance.goals"))
def notifications_on_event(envelope: dict[str, Any]) -> None:
    """Notify the household of an event. Safe to run twice."""
    notify(Event.from_dict(envelope), wiring.uow())

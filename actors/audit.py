"""The audit pool: appends every event of every exchange to the audit archive, once."""

from __future__ import annotations

from typing import Any

from actors.bus import subscriber
from config import wiring
from domain.events import EXCHANGES, Event

#: The queues this pool consumes.
QUEUES = ("audit.events",)


@subscriber("audit.events", exchanges=EXCHANGES)
def audit_on_event(envelope: dict[str, Any]) -> None:
    """Archive one event. Safe to run twice."""
    wiring.audit_store().append(Event.from_dict(envelope))

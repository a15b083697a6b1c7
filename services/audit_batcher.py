"""Group commit for the audit pool: worker threads hand events to one writer that appends them in batches.

Each worker thread waits until the batch holding its event is committed, and only then returns, so
Dramatiq acks a message only after its event is stored: at-least-once delivery and exactly-once
storage hold as without batching, while one transaction (and one chain-head lock per household)
serves many messages.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.events import Event
from services.group_commit import GroupCommit, Item

AppendMany = Callable[[list[Event]], list[bool]]


def audit_writer(append_many: AppendMany, max_batch: int = 200, wait_seconds: float = 60.0
                 ) -> GroupCommit[Event, bool]:
    """A group commit of audit appends: `submit(event)` is True when the event was new."""
    def run(items: list[Item[Event]]) -> list[bool]:
        return list(append_many([event for event, _ in items]))

    return GroupCommit(run, name="audit-group-commit", max_batch=max_batch, wait_seconds=wait_seconds)

"""Group commit for the audit pool: worker threads hand events to one writer that appends them in batches.

Each worker thread waits until the batch holding its event is committed, and only then returns, so
Dramatiq acks a message only after its event is stored: at-least-once delivery and exactly-once
storage hold as without batching, while one transaction (and one chain-head lock per household)
serves many messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from domain.events import Event
from services.group_commit import GroupCommit, Item

log = logging.getLogger(__name__)

AppendMany = Callable[[list[Event]], list[bool]]


def audit_writer(append_many: AppendMany, max_batch: int = 200, wait_seconds: float = 60.0
                 ) -> GroupCommit[Event, bool]:
    """A group commit of audit appends: `submit(event)` is True when the event was new."""
    def run(items: list[Item[Event]]) -> list[bool | BaseException]:
        events = [event for event, _ in items]
        try:
            return list(append_many(events))
        except Exception:  # noqa: BLE001 - one bad event must not fail the others: write them one by one
            log.warning("audit batch of %d failed; appending one by one", len(events), exc_info=True)
            return [_append_one(append_many, event) for event in events]

    return GroupCommit(run, name="audit-group-commit", max_batch=max_batch, wait_seconds=wait_seconds)


def _append_one(append_many: AppendMany, event: Event) -> bool | BaseException:
    try:
        return append_many([event])[0]
    except Exception as error:  # noqa: BLE001 - handed to the waiting thread, whose message is retried
        return error

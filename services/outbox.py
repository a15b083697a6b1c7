"""The outbox relay: publishes committed events whose publication did not complete."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import NamedTuple

from sqlalchemy import Engine, bindparam, func, select, text
from sqlalchemy.orm import sessionmaker

from domain.events import Event
from models.messaging import OutboxEvent
from services.uow import Publish, mark_published

log = logging.getLogger(__name__)


#: Unpublished rows older than the cutoff, in the order of the partial index that holds only them (ordered by id, the
#: planner may walk the whole table's primary key whenever its statistics overrate the unpublished).
_IS_STALE = (OutboxEvent.published_at.is_(None), OutboxEvent.created_at < bindparam("cutoff"))
#: Whether anything is stale: one look at that small index, no lock, no transaction.
_ANY_STALE = select(OutboxEvent.id).where(*_IS_STALE).order_by(OutboxEvent.created_at).limit(1)
#: The stale events, oldest first, locked so that two relays never publish the same rows at once.
_STALE = (select(OutboxEvent.id, OutboxEvent.envelope).where(*_IS_STALE).order_by(OutboxEvent.created_at)
          .limit(bindparam("limit")).with_for_update(skip_locked=True))
#: Marks rows published by row id: one SQL text whatever the number of ids (built once, prepared by psycopg).
_MARK_ROWS = text("UPDATE outbox SET published_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))")


def relay_pending(factory: sessionmaker, publish: Publish, *, older_than_seconds: int = 5, limit: int = 500) -> int:
    """Publish up to `limit` unpublished events older than a few seconds; returns how many went out."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_seconds)
    engine: Engine = factory.kw["bind"]
    # Every process runs this every few seconds and there is almost never anything to do: ask first, in autocommit.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.execute(_ANY_STALE, {"cutoff": cutoff}).first() is None:
            return 0
    with engine.begin() as conn:
        rows = conn.execute(_STALE, {"cutoff": cutoff, "limit": limit}).all()
        for row in rows:
            publish(Event.from_dict(row.envelope))
        if rows:
            conn.execute(_MARK_ROWS, {"ids": [row.id for row in rows]})
    return len(rows)


#: Among the oldest rows (the primary key's first `batch`), deletes those published before the cutoff: a short walk
#: of the primary key however large the table (published_at has no index, and the oldest rows are the ones due).
#: As `IN (SELECT ...)` the planner may hash-join a sequential scan of the whole table (34 ms at 300,000 rows, and
#: growing with it); `= ANY(ARRAY(...))` is always one index probe per id (about 6 ms a batch of 5,000).
_PURGE = text("DELETE FROM outbox WHERE id = ANY(ARRAY(SELECT id FROM outbox ORDER BY id LIMIT :batch)) "
              "AND published_at < :cutoff")


class Purged(NamedTuple):
    """What one purge did: how many events went, and whether it got to the end of what was due."""

    deleted: int
    finished: bool


def purge_published(engine: Engine, older_than: dt.timedelta, *, batch: int = 5000,
                    max_seconds: float | None = None) -> Purged:
    """Delete the events published longer ago than `older_than`, oldest first, `batch` rows a transaction, until
    the oldest `batch` rows hold none that is due (rows come in commit order, so what follows is newer), or until
    `max_seconds` have gone (the caller purges the rest later). Unpublished events always stay (the relay still
    owes them), and every consumer keeps its own record of the events it handled, so nothing reads a published
    row again."""
    cutoff, deleted = dt.datetime.now(dt.UTC) - older_than, 0
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    while True:
        with engine.begin() as conn:
            gone = conn.execute(_PURGE, {"batch": batch, "cutoff": cutoff}).rowcount
        deleted += gone
        if gone == 0:
            return Purged(deleted, True)
        if deadline is not None and time.monotonic() >= deadline:
            return Purged(deleted, False)


def unpublished_count(factory: sessionmaker) -> int:
    """How many committed events still wait for publication."""
    with factory() as session:
        return session.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None))) or 0


class BatchedMarker:
    """Marks published outbox rows in batches from a background thread: one UPDATE for many events.

    A mark lost in a crash only means the relay publishes that event again, which every consumer
    ignores by its event id.
    """

    def __init__(self, factory: sessionmaker, every_seconds: float = 0.2) -> None:
        self._factory = factory
        self._every = every_seconds
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self, event_ids: list[str]) -> None:
        """Queue event ids to be marked shortly."""
        with self._lock:
            self._pending.extend(event_ids)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="outbox-marker", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        """Flush every few hundred milliseconds; leave once nothing is queued (decided under the lock)."""
        while True:
            time.sleep(self._every)
            self.flush()
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return

    def flush(self) -> int:
        """Mark everything queued so far; how many were marked."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            try:
                mark_published(self._factory, batch)
            except Exception:  # noqa: BLE001 - the relay republishes unmarked rows; consumers dedupe
                log.warning("could not mark %d outbox rows; the relay will republish them", len(batch))
        return len(batch)

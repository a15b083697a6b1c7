"""Group commit for the audit pool: worker threads hand events to one writer that appends them in batches.

Each worker thread waits until the batch holding its event is committed, and only then returns, so
Dramatiq acks a message only after its event is stored: at-least-once delivery and exactly-once
storage hold as without batching, while one transaction (and one chain-head lock per household)
serves many messages.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from domain.events import Event

log = logging.getLogger(__name__)

AppendMany = Callable[[list[Event]], list[bool]]


class GroupCommit:
    """Batches appends from many threads into one write; each caller blocks until its event is stored."""

    def __init__(self, append_many: AppendMany, max_batch: int = 200, wait_seconds: float = 60.0) -> None:
        self._append_many = append_many
        self._max_batch = max_batch
        self._wait = wait_seconds
        self._queue: queue.SimpleQueue[tuple[Event, Future[bool]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None

    def append(self, event: Event) -> bool:
        """Store an event with whatever else is waiting; True when it was new. Raises what the write raised."""
        done: Future[bool] = Future()
        self._queue.put((event, done))
        self._ensure_writer()
        return done.result(timeout=self._wait)

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_forever, name="audit-group-commit", daemon=True)
                self._writer.start()

    def _write_forever(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[tuple[Event, Future[bool]]]) -> None:
        try:
            answers = self._append_many([event for event, _ in batch])
        except Exception:  # noqa: BLE001 - one bad event must not fail the others: write them one by one
            log.warning("audit batch of %d failed; appending one by one", len(batch), exc_info=True)
            for event, done in batch:
                self._write_one(event, done)
            return
        for (_, done), answer in zip(batch, answers, strict=True):
            done.set_result(answer)

    def _write_one(self, event: Event, done: Future[bool]) -> None:
        try:
            done.set_result(self._append_many([event])[0])
        except Exception as error:  # noqa: BLE001 - handed to the waiting thread, whose message is retried
            done.set_exception(error)

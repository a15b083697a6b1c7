"""Group commit: worker threads hand in one item each; one writer thread handles whatever is waiting in one go.

Each caller blocks until its own item is done and gets its own answer or error, so a message is acked only
once its effect is committed: at-least-once delivery and exactly-once effects hold as without batching, while
one transaction serves many messages. Batches form by themselves under load (whatever arrived while the last
batch ran) and cost no waiting when it is quiet, unless the writer is told to linger: then it waits up to that long
after a batch's first item for others, trading that much latency for fewer, larger batches when it is quiet. It
stops lingering as soon as every thread that can hand in items (`callers`) is waiting on it: none more can come.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
#: An item with the context (correlation id, request origin) of the thread that handed it in.
Item = tuple[T, contextvars.Context]
#: Handles a batch in one go; each item's answer, in order. Raises when the batch as a whole fails.
RunBatch = Callable[[list[Item[T]]], list[R]]


class GroupCommit(Generic[T, R]):
    """Batches items from many threads into one call of `run`; each caller blocks until its item is done. Should a
    batch fail, its items are handled one by one (each in its sender's context), so only a bad one fails."""

    def __init__(self, run: RunBatch[T, R], *, name: str, max_batch: int = 200, wait_seconds: float = 60.0,
                 linger_seconds: float = 0.0, callers: int | None = None) -> None:
        self._run = run
        self._linger = linger_seconds
        self._callers = callers
        self._waiting = 0  # callers blocked in submit_all
        self._name = name
        self._max_batch = max_batch
        self._wait = wait_seconds
        self._queue: queue.SimpleQueue[tuple[Item[T], Future[R]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None

    def submit(self, item: T) -> R:
        """Handle one item with whatever else is waiting; its answer. Raises what handling it raised."""
        return self.submit_all([item])[0]

    def submit_all(self, items: list[T]) -> list[R]:
        """Handle items with whatever else is waiting; their answers. Raises the first error among them."""
        context = contextvars.copy_context()
        futures: list[Future[R]] = []
        with self._lock:  # one acquisition on every call: count the caller, and start the writer if none runs
            self._waiting += 1
            self._ensure_writer()
        try:
            for item in items:
                futures.append(Future())
                self._queue.put(((item, context), futures[-1]))
            return [done.result(timeout=self._wait) for done in futures]
        finally:
            with self._lock:
                self._waiting -= 1

    def _ensure_writer(self) -> None:
        """Start the writer thread unless it runs (the lock held)."""
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._write_forever, name=self._name, daemon=True)
            self._writer.start()

    def _write_forever(self) -> None:
        while True:
            self._write(self._next_batch())

    def _next_batch(self) -> list[tuple[Item[T], Future[R]]]:
        """The next item and whatever else is waiting, or arrives within the linger, up to the batch's limit."""
        batch = [self._queue.get()]
        deadline = time.monotonic() + self._linger
        while len(batch) < self._max_batch:
            try:
                remaining = deadline - time.monotonic()
                if remaining > 0 and not self._everyone_waits():
                    batch.append(self._queue.get(timeout=remaining))
                else:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _everyone_waits(self) -> bool:
        """Whether every caller there can be is blocked on this writer, so lingering would only wait."""
        return self._callers is not None and self._waiting >= self._callers

    def _write(self, batch: list[tuple[Item[T], Future[R]]]) -> None:
        answers = self._answers([item for item, _ in batch])
        for (_, done), answer in zip(batch, answers, strict=True):
            if isinstance(answer, BaseException):
                done.set_exception(answer)
            else:
                done.set_result(answer)

    def _answers(self, items: list[Item[T]]) -> list[R | BaseException]:
        """Each item's answer, or the error handed to its thread (whose message is then retried)."""
        if len(items) == 1:
            return [self._alone(items[0])]
        try:
            return list(self._run(items))
        except Exception:  # noqa: BLE001 - one bad item must not fail the others: one by one below
            log.warning("%s: a batch of %d failed; handling one by one", self._name, len(items), exc_info=True)
        return [self._alone(item) for item in items]

    def _alone(self, item: Item[T]) -> R | BaseException:
        try:
            return item[1].run(self._run, [item])[0]
        except Exception as error:  # noqa: BLE001 - handed to the waiting thread
            return error

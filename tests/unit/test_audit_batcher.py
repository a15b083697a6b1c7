"""Group commit: many threads, one write per batch, each caller answered only after its batch is stored."""

from __future__ import annotations

import threading

from domain.events import Event
from services.audit_batcher import audit_writer


def _event(n: int) -> Event:
    return Event("AccountOpened", {"n": n}, None, None, "c", None)


class Store:
    """Records every batch; can be told to refuse one event (a poisoned batch) or to hold writes."""

    def __init__(self, refuse: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.stored: set[str] = set()
        self.refuse = refuse
        self.gate = threading.Event()
        self.gate.set()

    def append_many(self, events: list[Event]) -> list[bool]:
        self.gate.wait(5)
        if any(e.payload["n"] == self.refuse for e in events):
            raise RuntimeError("refused")
        self.batches.append([e.payload["n"] for e in events])
        answers = [e.event_id not in self.stored for e in events]
        self.stored |= {e.event_id for e in events}
        return answers


def test_events_waiting_together_are_written_in_one_batch() -> None:
    """Given the store busy while 20 threads append, the 20 events go out in very few writes, each answered."""
    store = Store()
    writer = audit_writer(store.append_many, max_batch=50)
    store.gate.clear()
    answers: list[bool] = []
    threads = [threading.Thread(target=lambda n=n: answers.append(writer.submit(_event(n)))) for n in range(20)]
    for t in threads:
        t.start()
    store.gate.set()
    for t in threads:
        t.join()
    assert answers == [True] * 20
    assert sorted(n for batch in store.batches for n in batch) == list(range(20))
    assert len(store.batches) < 20


def test_a_batch_is_never_larger_than_its_limit() -> None:
    """Given a limit of 3 and 10 waiting events, no write holds more than 3."""
    store = Store()
    writer = audit_writer(store.append_many, max_batch=3)
    store.gate.clear()
    threads = [threading.Thread(target=writer.submit, args=(_event(n),)) for n in range(10)]
    for t in threads:
        t.start()
    store.gate.set()
    for t in threads:
        t.join()
    assert max(len(b) for b in store.batches) <= 3 and sum(len(b) for b in store.batches) == 10


def test_one_failing_event_fails_only_its_own_caller() -> None:
    """Given one event the store refuses, its caller gets the error (its message is retried); the others are stored."""
    store = Store(refuse=3)
    writer = audit_writer(store.append_many)
    store.gate.clear()
    errors: list[int] = []

    def append(n: int) -> None:
        try:
            writer.submit(_event(n))
        except RuntimeError:
            errors.append(n)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    store.gate.set()
    for t in threads:
        t.join()
    assert errors == [3]
    assert sorted(n for batch in store.batches for n in batch) == [0, 1, 2, 4, 5]


def test_a_redelivered_event_is_answered_as_not_new() -> None:
    """Given an event stored, appending it again answers False."""
    writer = audit_writer(Store().append_many)
    event = _event(1)
    assert writer.submit(event) is True
    assert writer.submit(event) is False

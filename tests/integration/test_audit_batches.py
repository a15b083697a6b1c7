"""The PostgreSQL audit store under concurrent batches: chains created and extended by many writers at once, events
redelivered to several writers, every event stored once and every chain contiguous."""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid

from sqlalchemy import text

from config import wiring
from domain.events import Event
from services.audit import verify
from services.audit_postgres import PostgresAuditStore

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def _event(household: str | None, n: int) -> Event:
    return Event("TransactionRecorded", {"n": n, "note": "café ☕ \"quoted\" \\ back"}, household, None,
                 f"batches-{n}", None, occurred_at=(T0 + dt.timedelta(seconds=n)).isoformat(),
                 origin={"client_address": "203.0.113.9", "user_agent": "batches/1.0"} if n % 2 else None)


def test_concurrent_batches_over_new_chains_store_each_event_once_in_unbroken_chains() -> None:
    """Given 6 threads appending batches that mix 5 new households and share redelivered events, when they all run
    at once, then no batch fails, each event is new exactly once and every chain holds 1..N contiguously."""
    store = PostgresAuditStore(wiring.session_factory())
    households = [str(uuid.uuid4()) for _ in range(5)]
    events = [_event(households[i % 5], i) for i in range(120)]
    new: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        chosen = random.Random(seed).sample(events, 60)  # overlaps the other writers: redeliveries
        try:
            for start in range(0, len(chosen), 7):
                answers = store.append_many(chosen[start:start + 7])
                with lock:
                    new.extend(answers)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    new.extend(store.append_many(events))  # whatever no writer picked

    assert errors == []
    assert sum(new) == len(events)  # each event new exactly once, whichever writer stored it
    assert store.append_many(events) == [False] * len(events)
    reports = [r for h in households for r in verify(store, h)]
    assert [(r.records, r.broken) for r in reports] == [(24, None)] * 5
    with wiring.engine().connect() as conn:
        seqs = conn.execute(text("SELECT chain_id, array_agg(seq ORDER BY seq) FROM audit_events"
                                 " WHERE chain_id = ANY(:c) GROUP BY chain_id"), {"c": households}).all()
    assert all(list(s) == list(range(1, 25)) for _, s in seqs)


def test_a_batch_keeps_every_field_as_the_single_append_does() -> None:
    """Given the same kind of event appended alone and in a batch, both read back with the same fields."""
    store = PostgresAuditStore(wiring.session_factory())
    household = str(uuid.uuid4())
    alone, *batched = [_event(household, n) for n in range(1, 5)]
    assert store.append(alone) is True
    assert store.append_many(batched) == [True, True, True]
    _, records = store.chain(household)
    stored = {r["event_id"]: r for r in records}
    for event in [alone, *batched]:
        record = stored[event.event_id]
        assert (record["payload"], record["origin"], record["type"]) == (event.payload, event.origin, event.type)
        assert record["household_id"] == household and record["user_id"] is None


def test_events_without_a_household_join_the_platform_chain_in_a_batch() -> None:
    """Given a batch mixing a household's events and events of no household, each lands in its own chain."""
    store = PostgresAuditStore(wiring.session_factory())
    household = str(uuid.uuid4())
    batch = [_event(household, 1), _event(None, 2), _event(household, 3)]
    assert store.append_many(batch) == [True, True, True]
    [report] = verify(store, household)
    assert (report.records, report.broken) == (2, None)
    assert all(r.broken is None for r in verify(store, "platform"))

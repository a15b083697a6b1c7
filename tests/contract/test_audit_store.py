"""One contract for both audit backends: PostgreSQL always, MongoDB whenever MONGO_URL points at one.

Without MONGO_URL the MongoDB cases skip; with MONGO_URL set but no MongoDB answering they skip locally and
FAIL under CI=true (a configured backend that does not answer is a broken build, not a missing service).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from config import wiring
from domain.audit_chain import PLATFORM_CHAIN
from domain.events import EXCHANGE_OF, Event
from services.audit import AuditQuery, AuditStore, verify
from services.audit_postgres import PostgresAuditStore
from services.errors import Invalid
from tests.support.isolation import MONGO_URL, RUN_ID

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
ORIGIN = {"client_address": "203.0.113.7", "user_agent": "contract-test/1.0"}


class PostgresTamper:
    """Edits stored records behind the store's back, as an attacker with database access would."""

    def set_field(self, event_id: str, name: str, value: Any) -> None:
        """Overwrite one field of one record."""
        casts = {"payload": "jsonb", "occurred_at": "timestamptz", "user_id": "uuid"}
        column = f"{name} = CAST(:v AS {casts[name]})" if name in casts else f"{name} = :v"
        raw = json.dumps(value) if name == "payload" else value
        self._run(f"UPDATE audit_events SET {column} WHERE event_id = CAST(:e AS uuid)", v=raw, e=event_id)

    def delete(self, event_id: str) -> None:
        """Remove one record."""
        self._run("DELETE FROM audit_events WHERE event_id = CAST(:e AS uuid)", e=event_id)

    def swap(self, first: str, second: str) -> None:
        """Swap two records' places (their seq) in the chain."""
        with wiring.engine().begin() as conn:
            seq = {e: conn.scalar(text("SELECT seq FROM audit_events WHERE event_id = CAST(:e AS uuid)"), {"e": e})
                   for e in (first, second)}
        self._run("UPDATE audit_events SET seq = -1 WHERE event_id = CAST(:e AS uuid)", e=first)
        self._run("UPDATE audit_events SET seq = :s WHERE event_id = CAST(:e AS uuid)", s=seq[first], e=second)
        self._run("UPDATE audit_events SET seq = :s WHERE event_id = CAST(:e AS uuid)", s=seq[second], e=first)

    @staticmethod
    def _run(sql: str, **params: Any) -> None:
        with wiring.engine().begin() as conn:
            conn.execute(text(sql), params)


class MongoTamper:
    """Edits stored documents behind the store's back."""

    def __init__(self, store: Any) -> None:
        self._events = store._events

    def set_field(self, event_id: str, name: str, value: Any) -> None:
        """Overwrite one field of one record."""
        if name == "occurred_at":
            value = value.replace(" ", "T")
            value = dt.datetime.fromisoformat(value).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        self._events.update_one({"event_id": event_id}, {"$set": {name: value}})

    def delete(self, event_id: str) -> None:
        """Remove one record."""
        self._events.delete_one({"event_id": event_id})

    def swap(self, first: str, second: str) -> None:
        """Swap two records' places (their seq) in the chain."""
        a, b = (self._events.find_one({"event_id": e}) for e in (first, second))
        self._events.update_one({"event_id": first}, {"$set": {"seq": -1}})
        self._events.update_one({"event_id": second}, {"$set": {"seq": a["seq"]}})
        self._events.update_one({"event_id": first}, {"$set": {"seq": b["seq"]}})


@dataclass
class Backend:
    """A store under test and the means to tamper with it."""

    store: AuditStore
    tamper: Any


def _mongo_backend() -> Iterator[Backend]:
    if not MONGO_URL:
        pytest.skip("MONGO_URL is not set: the MongoDB backend runs where one answers (docker compose, CI)")
    import pymongo.errors

    from services.audit_mongo import MongoAuditStore

    database = f"finance_audit_contract_{RUN_ID}"
    try:
        store = MongoAuditStore(MONGO_URL, database, timeout_ms=3000)
    except pymongo.errors.PyMongoError as error:
        message = f"MONGO_URL is set but MongoDB does not answer: {error}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield Backend(store, MongoTamper(store))
    store.client.drop_database(database)


@pytest.fixture(scope="module", params=["postgresql", "mongodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend in turn."""
    if request.param == "postgresql":
        yield Backend(PostgresAuditStore(wiring.session_factory()), PostgresTamper())
    else:
        yield from _mongo_backend()


def _event(household: str | None, type: str = "AccountOpened", *, minutes: int = 0, user: str | None = None,
           **payload: Any) -> Event:
    return Event(type, payload or {"n": minutes}, household, user or str(uuid.uuid4()), f"req-{uuid.uuid4().hex[:8]}",
                 None, occurred_at=(T0 + dt.timedelta(minutes=minutes)).isoformat(), origin=dict(ORIGIN))


def _household_with(store: AuditStore, count: int) -> tuple[str, list[Event]]:
    household = str(uuid.uuid4())
    events = [_event(household, minutes=i) for i in range(count)]
    assert store.append_many(events) == [True] * count
    return household, events


def _broken(store: AuditStore, chain: str):
    [report] = verify(store, chain)
    return report.broken


# -- once ---------------------------------------------------------------------------------------------------------

def test_an_event_is_stored_once_however_often_it_arrives(backend: Backend) -> None:
    """Given an event appended, appending it again (alone or in a batch, twice in one batch) stores nothing."""
    household = str(uuid.uuid4())
    first, second = _event(household), _event(household, minutes=1)
    assert backend.store.append(first) is True
    assert backend.store.append(first) is False
    assert backend.store.append_many([first, second, second]) == [False, True, False]
    page = backend.store.query(AuditQuery(household_id=household))
    assert sorted(r["event_id"] for r in page.items) == sorted([first.event_id, second.event_id])
    assert [r["seq"] for r in sorted(page.items, key=lambda r: r["seq"])] == [1, 2]


def test_every_event_type_is_kept_with_its_whole_envelope(backend: Backend) -> None:
    """Given one event of every type the platform publishes, each is stored with who, what, when, why and where."""
    household = str(uuid.uuid4())
    events = [Event(t, {"amount": "12.34", "nested": {"b": 1, "a": [1, "x"]}}, household, str(uuid.uuid4()),
                    f"corr-{i}", f"cause-{i}", occurred_at=(T0 + dt.timedelta(seconds=i)).isoformat(), origin=ORIGIN)
              for i, t in enumerate(sorted(EXCHANGE_OF))]
    assert all(backend.store.append_many(events))
    stored = {r["event_id"]: r for r in backend.store.export(AuditQuery(household_id=household))}
    assert len(stored) == len(EXCHANGE_OF)
    for event in events:
        record = stored[event.event_id]
        assert (record["type"], record["user_id"], record["household_id"]) == (event.type, event.user_id, household)
        assert (record["correlation_id"], record["causation_id"]) == (event.correlation_id, event.causation_id)
        assert record["payload"] == event.payload and record["origin"] == ORIGIN
        assert dt.datetime.fromisoformat(record["occurred_at"]) == dt.datetime.fromisoformat(event.occurred_at)
    assert _broken(backend.store, household) is None


def test_events_of_one_correlation_are_found_oldest_first(backend: Backend) -> None:
    """Given three events of one request, by_correlation answers them in time order."""
    correlation = f"req-{uuid.uuid4().hex}"
    events = [Event("TransactionRecorded", {"i": i}, str(uuid.uuid4()), None, correlation, None,
                    occurred_at=(T0 + dt.timedelta(minutes=3 - i)).isoformat()) for i in range(3)]
    backend.store.append_many(events)
    assert [r["payload"]["i"] for r in backend.store.by_correlation(correlation)] == [2, 1, 0]


# -- the chain ------------------------------------------------------------------------------------------------------

def test_each_household_has_its_own_chain_and_events_without_one_join_the_platforms(backend: Backend) -> None:
    """Given events of two households and a platform event, each household's chain counts from 1 and verifies."""
    a, _ = _household_with(backend.store, 3)
    b, _ = _household_with(backend.store, 2)
    backend.store.append(_event(None, "CircuitOpened"))
    assert [r.records for r in verify(backend.store, a)] == [3]
    assert [r.records for r in verify(backend.store, b)] == [2]
    assert {a, b, PLATFORM_CHAIN} <= set(backend.store.chain_ids())
    assert all(r.broken is None for r in verify(backend.store, PLATFORM_CHAIN))


def test_concurrent_appends_to_one_household_form_one_unbroken_chain(backend: Backend) -> None:
    """Given 8 threads appending 10 events each to one household at once, the chain holds 80 records in order."""
    household = str(uuid.uuid4())

    def append_ten() -> None:
        for i in range(10):
            backend.store.append_many([_event(household, minutes=i), _event(household, minutes=i)])

    threads = [threading.Thread(target=append_ten) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [report] = verify(backend.store, household)
    assert (report.records, report.broken) == (160, None)


@pytest.mark.parametrize(("name", "value"), [
    ("payload", {"n": 999}), ("type", "AccountDeleted"), ("user_id", str(uuid.uuid4())),
    ("occurred_at", "2026-11-01 11:00:00+00:00"), ("correlation_id", "forged")])
def test_verify_names_a_changed_record(backend: Backend, name: str, value: Any) -> None:
    """Given a chain of 5, when one field of the 3rd record is changed, verify names the 3rd record."""
    household, events = _household_with(backend.store, 5)
    backend.tamper.set_field(events[2].event_id, name, value)
    broken = _broken(backend.store, household)
    assert (broken.seq, broken.event_id) == (3, events[2].event_id)
    assert "changed" in broken.reason


def test_verify_names_the_record_after_a_deleted_one(backend: Backend) -> None:
    """Given a chain of 5, when the 2nd record is deleted, verify names the 3rd (seq 2 is missing before it)."""
    household, events = _household_with(backend.store, 5)
    backend.tamper.delete(events[1].event_id)
    broken = _broken(backend.store, household)
    assert (broken.seq, broken.event_id) == (3, events[2].event_id)
    assert "expected seq 2" in broken.reason


def test_verify_notices_the_newest_record_deleted(backend: Backend) -> None:
    """Given a chain of 4, when its newest record is deleted, verify reports seq 4 missing."""
    household, events = _household_with(backend.store, 4)
    backend.tamper.delete(events[3].event_id)
    broken = _broken(backend.store, household)
    assert (broken.seq, broken.event_id) == (4, None)
    assert "missing" in str(broken)


def test_verify_names_the_first_of_two_reordered_records(backend: Backend) -> None:
    """Given a chain of 5, when the 2nd and 4th records swap places, verify names the record now at seq 2."""
    household, events = _household_with(backend.store, 5)
    backend.tamper.swap(events[1].event_id, events[3].event_id)
    broken = _broken(backend.store, household)
    assert (broken.seq, broken.event_id) == (2, events[3].event_id)


def test_an_untouched_chain_verifies(backend: Backend) -> None:
    """Given a chain of 6, verify finds nothing broken."""
    household, _ = _household_with(backend.store, 6)
    assert [(r.records, r.broken) for r in verify(backend.store, household)] == [(6, None)]


# -- who sees what -------------------------------------------------------------------------------------------------

def test_a_member_sees_only_their_household_without_others_security_events_or_origins(backend: Backend) -> None:
    """Given alice and bob in one household and carol in another, alice sees her household's activity, her own
    logins, bob's account opening without his address, and nothing of carol's."""
    home, other = str(uuid.uuid4()), str(uuid.uuid4())
    alice, bob, carol = (str(uuid.uuid4()) for _ in range(3))
    mine = _event(home, "LoginSucceeded", user=alice)
    bobs_login = _event(home, "LoginSucceeded", user=bob, minutes=1)
    bobs_account = _event(home, "AccountOpened", user=bob, minutes=2)
    carols = _event(other, "AccountOpened", user=carol, minutes=3)
    backend.store.append_many([mine, bobs_login, bobs_account, carols])
    seen = {r["event_id"]: r for r in backend.store.query(AuditQuery(household_id=home, viewer_id=alice)).items}
    assert set(seen) == {mine.event_id, bobs_account.event_id}
    assert seen[mine.event_id]["origin"] == ORIGIN and seen[bobs_account.event_id]["origin"] is None


def test_an_administrator_sees_every_household(backend: Backend) -> None:
    """Given two households' records, the unscoped query (admins) returns both with their origins."""
    a, a_events = _household_with(backend.store, 2)
    b, b_events = _household_with(backend.store, 2)
    wanted = {e.event_id for e in a_events + b_events}
    everything = backend.store.query(AuditQuery(since=T0, until=T0 + dt.timedelta(minutes=2), limit=500))
    found = [r for r in everything.items if r["event_id"] in wanted]
    assert {r["event_id"] for r in found} == wanted and all(r["origin"] == ORIGIN for r in found)
    only_b = backend.store.query(AuditQuery(household_id=b))
    assert {r["event_id"] for r in only_b.items} == {e.event_id for e in b_events}


# -- reading --------------------------------------------------------------------------------------------------------

def test_pages_walk_every_record_once_newest_first(backend: Backend) -> None:
    """Given 7 records, pages of 3 return 3, 3 and 1 records, newest first, and then no cursor."""
    household, events = _household_with(backend.store, 7)
    seen, cursor, sizes = [], None, []
    while True:
        page = backend.store.query(AuditQuery(household_id=household, limit=3, cursor=cursor))
        sizes.append(len(page.items))
        seen += [r["event_id"] for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert seen == [e.event_id for e in reversed(events)]


def test_records_with_the_same_time_page_by_event_id(backend: Backend) -> None:
    """Given 5 records of one instant, pages of 2 still return each exactly once."""
    household = str(uuid.uuid4())
    events = [_event(household) for _ in range(5)]
    backend.store.append_many(events)
    first = backend.store.query(AuditQuery(household_id=household, limit=2))
    second = backend.store.query(AuditQuery(household_id=household, limit=2, cursor=first.next_cursor))
    third = backend.store.query(AuditQuery(household_id=household, limit=2, cursor=second.next_cursor))
    ids = [r["event_id"] for p in (first, second, third) for r in p.items]
    assert sorted(ids) == sorted(e.event_id for e in events) and third.next_cursor is None


def test_a_forged_cursor_is_refused_naming_the_field(backend: Backend) -> None:
    """Given a cursor the API never gave out, the query refuses it on the cursor field."""
    with pytest.raises(Invalid) as refused:
        backend.store.query(AuditQuery(cursor="bm90IGEgY3Vyc29y"))
    assert refused.value.field == "cursor"


def test_filters_by_type_and_time(backend: Backend) -> None:
    """Given records of three types over ten minutes, type and from/to filters select exactly the matching ones."""
    household = str(uuid.uuid4())
    events = [_event(household, t, minutes=i) for i, t in
              enumerate(["AccountOpened", "BudgetCreated", "GoalCreated"] * 3)]
    backend.store.append_many(events)

    def ids(**filters: Any) -> set[str]:
        return {r["event_id"] for r in backend.store.query(AuditQuery(household_id=household, **filters)).items}

    assert ids(types=("BudgetCreated", "GoalCreated")) == {e.event_id for e in events if e.type != "AccountOpened"}
    window = ids(since=T0 + dt.timedelta(minutes=2), until=T0 + dt.timedelta(minutes=5))
    assert window == {e.event_id for e in events[2:5]}
    assert ids(types=("GoalCreated",), since=T0 + dt.timedelta(minutes=3)) == {events[5].event_id,
                                                                                 events[8].event_id}


def test_export_writes_every_matching_record_oldest_first_with_its_chain(backend: Backend) -> None:
    """Given a household's records, export returns them oldest first as JSON-ready records with seq and hashes."""
    household, events = _household_with(backend.store, 4)
    exported = list(backend.store.export(AuditQuery(household_id=household)))
    assert [r["event_id"] for r in exported] == [e.event_id for e in events]
    assert [r["seq"] for r in exported] == [1, 2, 3, 4]
    assert all(exported[i]["prev_hash"] == exported[i - 1]["hash"] for i in range(1, 4))
    json.dumps(exported)
    assert list(backend.store.export(AuditQuery(household_id=household, types=("GoalCreated",)))) == []


# -- retention ------------------------------------------------------------------------------------------------------

def test_retention_removes_old_records_and_the_chain_still_verifies(backend: Backend) -> None:
    """Given a chain spanning years, purging before a date removes the old records; the anchor keeps the rest
    verifiable, new records still link, and deleting the oldest kept record is still noticed."""
    household = str(uuid.uuid4())
    old = [Event("AccountOpened", {"i": i}, household, None, "c", None,
                 occurred_at=dt.datetime(2020, 1, 1 + i, tzinfo=dt.UTC).isoformat()) for i in range(3)]
    recent = [_event(household, minutes=i) for i in range(2)]
    backend.store.append_many(old + recent)
    assert backend.store.purge(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) >= 3
    assert [r["event_id"] for r in backend.store.export(AuditQuery(household_id=household))] == [
        e.event_id for e in recent]
    backend.store.append(_event(household, minutes=9))
    assert [(r.records, r.broken) for r in verify(backend.store, household)] == [(3, None)]
    backend.tamper.delete(recent[0].event_id)
    assert _broken(backend.store, household).event_id == recent[1].event_id

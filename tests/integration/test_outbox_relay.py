"""The outbox relay: stale unpublished events go out once and are marked; fresh ones, published ones and an idle
outbox are left alone; the batched marker's marks keep the relay away; events published long ago are purged, and
unpublished ones never.

On an outbox of its own (a database holding only that table): the stack the end-to-end tests leave running relays the
run's outbox every second, and would take these events first.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from domain.events import Event
from models.base import make_engine, make_session_factory
from models.messaging import OutboxEvent
from services.outbox import BatchedMarker, purge_published, relay_pending
from tests.support.isolation import DATABASE, TEST_ENV

OUTBOX_DATABASE = f"{DATABASE}_outbox"


def _admin(sql: str) -> None:
    admin = create_engine(make_url(TEST_ENV["DATABASE_URL"]).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


@pytest.fixture(scope="module")
def factory() -> Iterator[sessionmaker]:
    """Sessions on a database holding only the outbox (with its partial index of unpublished rows)."""
    _admin(f'CREATE DATABASE "{OUTBOX_DATABASE}"')
    engine = make_engine(make_url(TEST_ENV["DATABASE_URL"]).set(database=OUTBOX_DATABASE).render_as_string(False),
                         pool_size=2)
    OutboxEvent.__table__.create(engine)
    yield make_session_factory(engine)
    engine.dispose()
    _admin(f'DROP DATABASE IF EXISTS "{OUTBOX_DATABASE}" WITH (FORCE)')


def _committed(factory: sessionmaker, age_seconds: int, published: bool = False) -> Event:
    """An event in the outbox as a crash after the commit leaves it, `age_seconds` old."""
    event = Event("TransactionRecorded", {"n": age_seconds}, str(uuid.uuid4()), None, "outbox-relay-test", None)
    with factory.kw["bind"].begin() as conn:
        conn.execute(text(
            "INSERT INTO outbox (event_id, exchange, envelope, created_at, published_at) VALUES (CAST(:id AS uuid),"
            " :exchange, CAST(:envelope AS jsonb), now() - make_interval(secs => :age),"
            " CASE WHEN :published THEN now() END)"),
            {"id": event.event_id, "exchange": event.exchange, "envelope": json.dumps(event.to_dict()),
             "age": age_seconds, "published": published})
    return event


def _published_at_is_set(factory: sessionmaker, event: Event) -> bool:
    with factory.kw["bind"].connect() as conn:
        return conn.scalar(text("SELECT published_at IS NOT NULL FROM outbox WHERE event_id = CAST(:id AS uuid)"),
                           {"id": event.event_id})


def test_stale_events_are_published_once_oldest_first_and_marked(factory: sessionmaker) -> None:
    """Given three stale unpublished events, a fresh one and a published one, the relay publishes the stale ones
    (as they were committed, oldest first), marks them, and the next round publishes none of them again."""
    stale = [_committed(factory, age) for age in (300, 200, 100)]
    fresh, done = _committed(factory, 0), _committed(factory, 400, published=True)
    sent: list[Event] = []

    relay_pending(factory, sent.append, older_than_seconds=30, limit=100_000)
    relay_pending(factory, sent.append, older_than_seconds=30, limit=100_000)

    assert sent == stale
    assert all(_published_at_is_set(factory, e) for e in stale)
    assert not _published_at_is_set(factory, fresh) and _published_at_is_set(factory, done)


def test_the_relay_takes_at_most_its_limit_per_round(factory: sessionmaker) -> None:
    """Given more stale events than the limit, one round publishes the limit, the next the rest."""
    relay_pending(factory, lambda e: None, older_than_seconds=0, limit=100_000)  # what earlier tests left
    stale = [_committed(factory, 60 + age) for age in range(3)]
    sent: list[Event] = []

    assert relay_pending(factory, sent.append, older_than_seconds=30, limit=2) == 2
    assert relay_pending(factory, sent.append, older_than_seconds=30, limit=2) == 1
    assert sorted(e.event_id for e in sent) == sorted(e.event_id for e in stale)


def test_an_outbox_with_nothing_stale_publishes_nothing(factory: sessionmaker) -> None:
    """Given only fresh and published events, a round publishes nothing and changes nothing."""
    relay_pending(factory, lambda e: None, older_than_seconds=0, limit=100_000)  # what earlier tests left
    fresh, done = _committed(factory, 0), _committed(factory, 600, published=True)
    sent: list[Event] = []

    assert relay_pending(factory, sent.append, older_than_seconds=30) == 0
    assert sent == [] and not _published_at_is_set(factory, fresh) and _published_at_is_set(factory, done)


def test_events_the_marker_marked_are_left_alone_by_the_relay(factory: sessionmaker) -> None:
    """Given stale events the batched marker marked (RabbitMQ had confirmed them), the relay publishes none."""
    events = [_committed(factory, 120), _committed(factory, 90)]
    marker = BatchedMarker(factory, every_seconds=60)
    marker([e.event_id for e in events])

    assert marker.flush() == 2
    sent: list[Event] = []
    relay_pending(factory, sent.append, older_than_seconds=30, limit=100_000)
    assert sent == []
    assert all(_published_at_is_set(factory, e) for e in events)


def _published_days_ago(factory: sessionmaker, days: int) -> Event:
    """An event published `days` ago (and committed just before)."""
    event = _committed(factory, days * 86_400 + 5)
    with factory.kw["bind"].begin() as conn:
        conn.execute(text("UPDATE outbox SET published_at = now() - make_interval(days => :days) "
                          "WHERE event_id = CAST(:id AS uuid)"), {"days": days, "id": event.event_id})
    return event


def _kept(factory: sessionmaker, events: list[Event]) -> list[bool]:
    with factory.kw["bind"].connect() as conn:
        found = set(conn.scalars(text("SELECT event_id::text FROM outbox WHERE event_id = ANY(CAST(:ids AS uuid[]))"),
                                 {"ids": [e.event_id for e in events]}))
    return [e.event_id in found for e in events]


def test_events_published_before_the_retention_are_purged_and_unpublished_ones_never(factory: sessionmaker) -> None:
    """Given events published 10 and 1 days ago, and one committed 10 days ago but never published, a purge keeping
    7 days removes only the first: the relay still owes the unpublished one."""
    relay_pending(factory, lambda e: None, older_than_seconds=0, limit=100_000)  # what earlier tests left
    old, recent = _published_days_ago(factory, 10), _published_days_ago(factory, 1)
    owed = _committed(factory, 10 * 86_400)

    assert purge_published(factory.kw["bind"], dt.timedelta(days=7)).deleted >= 1
    assert _kept(factory, [old, recent, owed]) == [False, True, True]
    assert purge_published(factory.kw["bind"], dt.timedelta(days=7)) == (0, True)


def test_a_purge_goes_on_batch_after_batch_until_nothing_is_due(factory: sessionmaker) -> None:
    """Given an outbox whose oldest events are due, more than one batch holds, one purge removes them all, a batch
    a transaction, and keeps the recent one after them."""
    with factory.kw["bind"].begin() as conn:
        conn.execute(text("DELETE FROM outbox"))  # this module's database: only what earlier tests left
    due = [_published_days_ago(factory, 30) for _ in range(5)]
    recent = _published_days_ago(factory, 1)

    assert purge_published(factory.kw["bind"], dt.timedelta(days=7), batch=2) == (5, True)
    assert _kept(factory, [*due, recent]) == [False] * 5 + [True]


def test_a_purge_out_of_time_stops_between_batches_and_the_next_one_goes_on(factory: sessionmaker) -> None:
    """Given more due events than one batch holds, a purge with no time left stops after its first batch and says
    it did not finish (so the relay that shares its thread is not held up); the next one removes the rest."""
    with factory.kw["bind"].begin() as conn:
        conn.execute(text("DELETE FROM outbox"))
    due = [_published_days_ago(factory, 30) for _ in range(5)]

    assert purge_published(factory.kw["bind"], dt.timedelta(days=7), batch=2, max_seconds=0) == (2, False)
    assert _kept(factory, due) == [False] * 2 + [True] * 3
    assert purge_published(factory.kw["bind"], dt.timedelta(days=7), batch=2, max_seconds=60) == (3, True)
    assert _kept(factory, due) == [False] * 5

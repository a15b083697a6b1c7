"""HTTP counts against the run's Redis: a web process adds them in one pipeline within FLUSH_SECONDS (or at once,
before a scrape), and a Redis that does not answer loses them with a warning, never failing a request."""

from __future__ import annotations

import logging
import uuid

import pytest
import redis

from api.observability import PendingCounts
from config import wiring
from tests.support.stack import wait_for


@pytest.fixture
def key() -> str:
    return f"metrics:test:{uuid.uuid4().hex}"


def _counts(key: str) -> dict[bytes, bytes]:
    return wiring.redis_client().hgetall(key)


def test_counts_reach_redis_within_the_flush_interval(key: str) -> None:
    pending = PendingCounts(flush_seconds=0.2)
    for _ in range(3):
        pending.add(key, "GET|/a|200")
    pending.add(key, "POST|/a|202")
    assert _counts(key) == {}

    wait_for(lambda: _counts(key), timeout=5, what="the pending counts")
    assert _counts(key) == {b"GET|/a|200": b"3", b"POST|/a|202": b"1"}


def test_a_flush_adds_what_is_pending_at_once_and_only_once(key: str) -> None:
    pending = PendingCounts(flush_seconds=60)
    pending.add(key, "GET|/a|200")
    pending.flush()
    pending.flush()
    pending.add(key, "GET|/a|200")
    pending.flush()
    assert _counts(key) == {b"GET|/a|200": b"2"}


def test_redis_down_loses_the_counts_with_a_warning(key: str, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(wiring, "redis_client", lambda: down)
    pending = PendingCounts(flush_seconds=60)
    pending.add(key, "GET|/a|200")
    with caplog.at_level(logging.WARNING, logger="api.access"):
        pending.flush()
    assert "HTTP metrics not recorded" in caplog.text

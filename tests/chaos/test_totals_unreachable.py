"""What the chaos run found, pinned down: a running budget total that survives a Redis outage must not miss what
happened during it, so an update Redis did not take fails (and the SQL change with it, retried later)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import redis

from models.budgets import Budget
from services import budget_totals
from services.budget_totals import TOTAL, TotalsUnavailable
from tests.support.isolation import TEST_ENV
from tests.support.stack import free_port

START = dt.date(2026, 10, 1)


def _budget() -> Budget:
    return Budget(id=uuid.uuid4(), currency="EUR")


def test_an_update_redis_cannot_take_fails_instead_of_leaving_the_total_stale() -> None:
    """Given a total in Redis, when Redis cannot be reached during an update, the update raises, and once Redis
    answers the same update (the retried message) moves the total exactly once."""
    live = redis.Redis.from_url(TEST_ENV["REDIS_URL"])
    budget, txn = _budget(), uuid.uuid4()
    live.hset(budget_totals.key(budget.id, START), mapping={TOTAL: 1000})
    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    with pytest.raises(TotalsUnavailable):
        budget_totals.record(unreachable, budget, START, txn, Decimal("12.50"))
    for _ in range(2):  # redelivered after the retry: counted once
        budget_totals.record(live, budget, START, txn, Decimal("12.50"))
    assert int(live.hget(budget_totals.key(budget.id, START), TOTAL)) == 1000 + 1250
    live.delete(budget_totals.key(budget.id, START))


def test_a_total_redis_lost_is_left_for_the_next_read_to_rebuild() -> None:
    """A total that is gone (Redis restarted empty) is not recreated by an update: the next read rebuilds it."""
    live = redis.Redis.from_url(TEST_ENV["REDIS_URL"])
    budget = _budget()
    budget_totals.record(live, budget, START, uuid.uuid4(), Decimal("3.00"))
    assert not live.exists(budget_totals.key(budget.id, START))

"""The broker topology as the RabbitMQ management UI shows it while the stack runs."""

from __future__ import annotations

import pytest

from domain.events import EXCHANGES
from tests.support import rabbit_admin
from tests.support.isolation import VHOST
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

#: What each pool's events queue must be bound to: the subscriptions the design promises.
EXPECTED_BINDINGS = {
    "fx.events": {"finance.transactions"},
    "budgets.events": {"finance.transactions", "finance.fx"},
    "notifications.events": {"finance.users", "finance.security", "finance.transactions", "finance.budgets",
                             "finance.goals", "finance.insights"},
    "audit.events": set(EXCHANGES),
    "insights.aggregates": {"finance.transactions", "finance.fx"},
    "insights.anomalies": {"finance.transactions"},
}
#: Every queue a pool consumes.
POOL_QUEUES = ("categorization", "fx.events", "budgets.events", "notifications.events", "notifications",
               "audit.events", "insights.aggregates", "insights.anomalies")


def test_every_event_family_has_a_durable_fanout_exchange(stack: Stack) -> None:
    """The fanout exchanges exist and survive a broker restart."""
    exchanges = {e["name"]: e for e in rabbit_admin.list_exchanges(VHOST)}
    for name in EXCHANGES:
        assert exchanges[name]["type"] == "fanout"
        assert exchanges[name]["durable"] is True


def test_each_pool_queue_is_bound_to_the_exchanges_it_subscribes_to(stack: Stack) -> None:
    """Each subscribing pool has its own durable queue bound to exactly its exchanges."""
    bound: dict[str, set[str]] = {}
    for b in rabbit_admin.list_bindings(VHOST):
        if b["source"] and b["destination_type"] == "queue":
            bound.setdefault(b["destination"], set()).add(b["source"])
    assert {q: bound.get(q, set()) for q in EXPECTED_BINDINGS} == EXPECTED_BINDINGS


def test_every_pool_queue_has_a_consumer_and_its_own_retry_and_dead_letter_queues(stack: Stack) -> None:
    """Every pool consumes its queues; each has .DQ (retries) and .XQ (dead letters) of its own."""
    def consumers() -> dict[str, int] | None:
        queues = {q["name"]: q for q in rabbit_admin.list_queues(VHOST)}
        found = {name: queues.get(name, {}).get("consumers", 0) for name in POOL_QUEUES}
        return found if all(found.values()) else None

    found = wait_for(consumers, timeout=20, every=1, what="a consumer on every pool queue")
    assert all(count >= 1 for count in found.values())
    names = {q["name"]: q for q in rabbit_admin.list_queues(VHOST)}
    for queue in POOL_QUEUES:
        assert names[queue]["durable"] and names[f"{queue}.DQ"]["durable"] and f"{queue}.XQ" in names
        assert names[queue]["arguments"]["x-dead-letter-routing-key"] == f"{queue}.XQ"

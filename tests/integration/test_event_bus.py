"""Contract of the event bus (actors/broker.py) against a real RabbitMQ and a real Dramatiq worker.

FinanceBroker touches Dramatiq's private consumer, so this module pins the behaviour the platform
relies on: fanout copies reach every subscriber once under its own queue name, retries and dead
letters stay per subscriber, unroutable events raise, the topology is declared as designed, commands
still work, and a stray message is dead-lettered without killing the worker. Each run uses its own
vhost, deleted at the end.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import pika
import pytest
from dramatiq.message import Message
from dramatiq.middleware import CurrentMessage, Retries

from actors.broker import EventUnroutable, FinanceBroker
from config.wiring import message_middleware
from domain.events import Event
from tests.support import rabbit_admin

#: Exchanges of this contract (not the platform's, so nothing else ever binds to them).
EVENTS = "contract.events"
FAILURES = "contract.failures"
NOBODY = "contract.nobody"
EXCHANGES = (EVENTS, FAILURES, NOBODY)
#: Subscriber queue -> (actor name, exchanges).
SUBSCRIBERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "contract-alpha": ("alpha_subscriber", (EVENTS,)),
    "contract-beta": ("beta_subscriber", (EVENTS,)),
    "contract-steady": ("steady_subscriber", (FAILURES,)),
    "contract-fragile": ("fragile_subscriber", (FAILURES,)),
}
COMMANDS = "contract-commands"
ORPHAN = "contract-orphan"
MAX_RETRIES = 2
DEADLINE_SECONDS = 8.0


@dataclass
class Seen:
    """What the actors saw, as (actor, queue the message named, actor the message named, id)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)
    delayed: list[tuple[str, str]] = field(default_factory=list)

    def record(self, actor: str, key: str) -> None:
        """Record one call of `actor` for the message in hand."""
        message = CurrentMessage.get_current_message()
        assert message is not None
        with self.lock:
            self.calls.append((actor, message.queue_name, message.actor_name, key))

    def of(self, key: str) -> list[tuple[str, str, str]]:
        """Every (actor, queue, actor named) call for one event id or command key."""
        with self.lock:
            return [(actor, queue, named) for actor, queue, named, k in self.calls if k == key]


class DelayRecorder(dramatiq.Middleware):
    """Remembers which queue each delayed (retry) enqueue went to."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        """Record retries: Dramatiq enqueues them with a delay onto a .DQ queue."""
        if delay is not None:
            with self.seen.lock:
                self.seen.delayed.append((message.queue_name, message.message_id))


@dataclass
class Bus:
    """The broker, worker and vhost of this module."""

    broker: FinanceBroker
    worker: dramatiq.Worker
    vhost: str
    seen: Seen

    def counts(self, queue: str) -> tuple[int, int, int]:
        """Ready messages in the queue, its .DQ and its .XQ."""
        return self.broker.get_queue_message_counts(queue)

    def alive(self) -> bool:
        """Every worker and consumer thread is still running."""
        threads = [*self.worker.workers, *self.worker.consumers.values()]
        return bool(threads) and all(t.is_alive() for t in threads)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_SECONDS) -> None:
    """Poll until `condition` holds; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def event(**payload: Any) -> dict[str, Any]:
    """A real envelope, as the platform publishes it."""
    return Event(type="TransactionRecorded", payload=payload, household_id="h1", user_id="u1",
                 correlation_id=str(uuid.uuid4()), causation_id=None).to_dict()


def _declare_actors(broker: FinanceBroker, seen: Seen) -> None:
    def alpha_subscriber(envelope: dict[str, Any]) -> None:
        seen.record("alpha_subscriber", envelope["event_id"])

    def beta_subscriber(envelope: dict[str, Any]) -> None:
        seen.record("beta_subscriber", envelope["event_id"])

    def steady_subscriber(envelope: dict[str, Any]) -> None:
        seen.record("steady_subscriber", envelope["event_id"])

    def fragile_subscriber(envelope: dict[str, Any]) -> None:
        seen.record("fragile_subscriber", envelope["event_id"])
        raise RuntimeError("fragile subscriber always fails")

    def apply_command(payload: dict[str, Any]) -> None:
        seen.record("apply_command", payload["key"])

    def orphan_handler(payload: dict[str, Any]) -> None:
        seen.record("orphan_handler", payload["key"])

    functions = {f.__name__: f for f in (alpha_subscriber, beta_subscriber, steady_subscriber, fragile_subscriber)}
    for queue, (actor_name, exchanges) in SUBSCRIBERS.items():
        actor = dramatiq.actor(functions[actor_name], broker=broker, queue_name=queue, max_retries=MAX_RETRIES,
                               min_backoff=50, max_backoff=200)
        broker.subscribe(queue, actor.actor_name, exchanges)
    dramatiq.actor(apply_command, broker=broker, queue_name=COMMANDS, max_retries=0)
    dramatiq.actor(orphan_handler, broker=broker, queue_name=ORPHAN, max_retries=0)


@pytest.fixture(scope="module")
def bus() -> Iterator[Bus]:
    """A FinanceBroker on a fresh vhost, its topology declared, and a running in-process worker."""
    vhost = f"finance-contract-{uuid.uuid4().hex[:8]}"
    rabbit_admin.create_vhost(vhost)
    seen = Seen()
    broker: FinanceBroker | None = None
    worker: dramatiq.Worker | None = None
    try:
        retries = Retries(max_retries=MAX_RETRIES, min_backoff=50, max_backoff=200)
        broker = FinanceBroker(url=rabbit_admin.amqp_url(vhost),
                               middleware=[*message_middleware(retries), DelayRecorder(seen)])
        _declare_actors(broker, seen)
        broker.declare_topology(EXCHANGES)
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        yield Bus(broker, worker, vhost, seen)
    finally:
        try:
            if worker is not None:
                worker.stop(timeout=5_000)
        finally:
            try:
                if broker is not None:
                    broker.close()
            finally:
                rabbit_admin.delete_vhost(vhost)


def test_one_event_reaches_both_subscribers_once_each_under_its_own_queue(bus: Bus) -> None:
    first, second = event(n=1), event(n=2)

    bus.broker.publish_event(EVENTS, first)
    wait_for(lambda: len(bus.seen.of(first["event_id"])) >= 2, "both subscribers to receive the first event")
    bus.broker.publish_event(EVENTS, second)
    wait_for(lambda: len(bus.seen.of(second["event_id"])) >= 2, "both subscribers to receive the second event")
    wait_for(lambda: all(bus.counts(q) == (0, 0, 0) for q in ("contract-alpha", "contract-beta")),
             "both subscriber queues to drain")

    expected = sorted([("alpha_subscriber", "contract-alpha", "alpha_subscriber"),
                       ("beta_subscriber", "contract-beta", "beta_subscriber")])
    assert sorted(bus.seen.of(first["event_id"])) == expected
    assert sorted(bus.seen.of(second["event_id"])) == expected
    assert bus.alive()


def test_a_failing_subscriber_retries_and_dead_letters_on_its_own_queues(bus: Bus) -> None:
    envelope = event(n=3)

    bus.broker.publish_event(FAILURES, envelope)
    wait_for(lambda: bus.counts("contract-fragile")[2] == 1, "the failing copy to reach contract-fragile.XQ")

    calls = Counter(bus.seen.of(envelope["event_id"]))
    assert calls == {("fragile_subscriber", "contract-fragile", "fragile_subscriber"): 1 + MAX_RETRIES,
                     ("steady_subscriber", "contract-steady", "steady_subscriber"): 1}
    with bus.seen.lock:
        delayed = [queue for queue, message_id in bus.seen.delayed if message_id == envelope["event_id"]]
    assert delayed == ["contract-fragile.DQ"] * MAX_RETRIES
    assert bus.counts("contract-fragile") == (0, 0, 1)
    assert bus.counts("contract-steady") == (0, 0, 0)
    assert bus.alive()


def test_an_event_on_an_exchange_without_bound_queues_is_refused(bus: Bus) -> None:
    with pytest.raises(EventUnroutable, match=NOBODY):
        bus.broker.publish_event(NOBODY, event(n=4))

    after = event(n=5)
    bus.broker.publish_event(EVENTS, after)
    wait_for(lambda: len(bus.seen.of(after["event_id"])) == 2, "the broker to keep publishing after a refusal")


def test_an_event_on_an_undeclared_exchange_names_the_missing_release_step(bus: Bus) -> None:
    with pytest.raises(EventUnroutable, match="does not exist: run the release step"):
        bus.broker.publish_event("finance.never-declared", event(n=6))

    after = event(n=7)
    bus.broker.publish_event(EVENTS, after)
    wait_for(lambda: len(bus.seen.of(after["event_id"])) == 2, "the broker to keep publishing after a refusal")


def test_topology_declares_durable_fanout_exchanges_queues_and_bindings(bus: Bus) -> None:
    exchanges = {e["name"]: e for e in rabbit_admin.list_exchanges(bus.vhost)}
    for name in EXCHANGES:
        assert exchanges[name]["type"] == "fanout"
        assert exchanges[name]["durable"] is True

    queues = {q["name"]: q for q in rabbit_admin.list_queues(bus.vhost)}
    for queue in [*SUBSCRIBERS, COMMANDS, ORPHAN]:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            assert queues[name]["durable"] is True, name
        assert queues[queue]["arguments"]["x-dead-letter-routing-key"] == f"{queue}.XQ"
        assert queues[f"{queue}.DQ"]["arguments"]["x-dead-letter-routing-key"] == f"{queue}.XQ"

    bindings = {(b["source"], b["destination"]) for b in rabbit_admin.list_bindings(bus.vhost)
                if b["source"] in EXCHANGES and b["destination_type"] == "queue"}
    assert bindings == {(exchange, queue) for queue, (_, bound) in SUBSCRIBERS.items() for exchange in bound}


def test_a_command_is_processed_by_the_actor_of_its_queue(bus: Bus) -> None:
    key = str(uuid.uuid4())

    message_id = bus.broker.send_command(COMMANDS, "apply_command", {"key": key})

    assert uuid.UUID(message_id)
    wait_for(lambda: bus.seen.of(key), "the command to be processed")
    assert bus.seen.of(key) == [("apply_command", COMMANDS, "apply_command")]
    assert bus.counts(COMMANDS) == (0, 0, 0)


def test_a_stray_copy_on_a_queue_without_subscriber_is_dead_lettered_not_fatal(bus: Bus) -> None:
    stray_key = str(uuid.uuid4())
    # It names a real actor: were it not stopped at the consumer, a worker thread would run it, then die
    # acking through a queue it has no consumer for.
    body = Message(queue_name="contract.elsewhere", actor_name="orphan_handler", args=({"key": stray_key},),
                   kwargs={}, options={}).encode()
    bus.broker.channel.basic_publish("", ORPHAN, body, pika.BasicProperties(delivery_mode=2), mandatory=True)

    wait_for(lambda: bus.counts(ORPHAN)[2] == 1, f"the stray message to reach {ORPHAN}.XQ")
    key = str(uuid.uuid4())
    bus.broker.send_command(ORPHAN, "orphan_handler", {"key": key})
    wait_for(lambda: bus.seen.of(key), "the orphan queue to keep being consumed")

    assert bus.seen.of(stray_key) == []
    assert bus.counts(ORPHAN) == (0, 0, 1)
    assert bus.alive()


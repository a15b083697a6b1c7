"""A RabbitMQ broker that also carries domain events on durable fanout exchanges.

Dramatiq publishes only to the default exchange and acks through the queue named in the message
body. A fanout copy arrives on each subscriber's queue still naming the exchange, so the consumer
rewrites each copy's queue and actor to the subscriber that received it. Retries (.DQ) and dead
letters (.XQ) then stay per subscriber. This touches Dramatiq's private consumer: dramatiq is
pinned and tests/integration/test_event_bus.py holds the contract against a real RabbitMQ.
"""

from __future__ import annotations

import logging
from typing import Any

import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer
from dramatiq.common import q_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

log = logging.getLogger(__name__)

#: Actor name written into event bodies before the consumer rewrites it.
EVENT_ACTOR = "event"
#: Connection attempts when a publish meets a broken connection.
PUBLISH_ATTEMPTS = 3


class EventUnroutable(RuntimeError):
    """An event reached an exchange with no bound queue: the topology was not declared."""


class _SubscriberConsumer(_RabbitmqConsumer):
    """Consumes one queue; makes every fanout copy name that queue and its subscriber actor."""

    def __next__(self):
        message = super().__next__()
        if message is None or message.queue_name == self.queue_name:
            return message
        actor_name = self.broker.subscriber_of(self.queue_name)
        if actor_name is None:
            log.error("dropping to dead letters: %s arrived on %s, which has no subscriber",
                      message.message_id, self.queue_name)
            self.known_tags.discard(message._tag)
            self._nack(message._tag)
            return None
        message._message = message._message.copy(queue_name=self.queue_name, actor_name=actor_name)
        return message


class FinanceBroker(RabbitmqBroker):
    """RabbitmqBroker plus fanout events, subscriptions and topology declaration."""

    def __init__(self, *, timeout_seconds: int = 3, **kwargs: Any) -> None:
        super().__init__(confirm_delivery=True, **kwargs)
        self.subscriptions: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.exchanges: tuple[str, ...] = ()
        params = self.parameters if isinstance(self.parameters, list) else [self.parameters]
        for p in params:
            p.socket_timeout = timeout_seconds
            p.stack_timeout = timeout_seconds * 2
            p.blocked_connection_timeout = timeout_seconds * 10
            p.connection_attempts = 1

    @property
    def consumer_class(self):
        """Consumers that rewrite fanout copies for their subscriber."""
        return _SubscriberConsumer

    def subscribe(self, queue_name: str, actor_name: str, exchanges: tuple[str, ...]) -> None:
        """Record that `actor_name` handles every event of `exchanges` through `queue_name`."""
        self.subscriptions[q_name(queue_name)] = (actor_name, exchanges)

    def subscriber_of(self, queue_name: str) -> str | None:
        """The actor that handles events arriving on a queue, if any."""
        entry = self.subscriptions.get(q_name(queue_name))
        return entry[0] if entry else None

    def declare_topology(self, exchanges: tuple[str, ...]) -> None:
        """Declare exchanges, every actor queue (with .DQ and .XQ) and the subscriptions' bindings."""
        self.exchanges = exchanges
        for exchange in exchanges:
            self.channel.exchange_declare(exchange=exchange, exchange_type="fanout", durable=True)
        for queue in sorted(self.queues):
            self.declare_queue(queue, ensure=True)
        for queue, (_, bound) in sorted(self.subscriptions.items()):
            for exchange in bound:
                self.channel.queue_bind(queue=queue, exchange=exchange)

    def publish_event(self, exchange: str, envelope: dict[str, Any]) -> None:
        """Publish one event, mandatory and confirmed; raise unless RabbitMQ took it."""
        self.publish_events(exchange, [envelope])

    def publish_events(self, exchange: str, envelopes: list[dict[str, Any]]) -> None:
        """Publish events committed together as ONE message (a single event as itself, several as a list),
        mandatory and confirmed; raise unless RabbitMQ took it."""
        first = envelopes[0]
        types = {envelope["type"] for envelope in envelopes}
        body = Message(
            queue_name=exchange, actor_name=EVENT_ACTOR, args=(first if len(envelopes) == 1 else envelopes,),
            kwargs={}, options={}, message_id=first["event_id"],
        ).encode()
        properties = pika.BasicProperties(
            delivery_mode=2, content_type="application/json", type=types.pop() if len(types) == 1 else "batch",
            message_id=first["event_id"], correlation_id=first.get("correlation_id") or None,
        )
        self._publish_mandatory(exchange, body, properties)

    def _publish_mandatory(self, exchange: str, body: bytes, properties: pika.BasicProperties) -> None:
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                self.channel.basic_publish(exchange, "", body, properties, mandatory=True)
                return
            except pika.exceptions.UnroutableError as exc:
                raise EventUnroutable(f"no queue is bound to {exchange}") from exc
            except pika.exceptions.ChannelClosedByBroker as exc:
                del self.channel
                if exc.reply_code == 404:
                    raise EventUnroutable(f"exchange {exchange} does not exist: run the release step") from exc
                raise
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
                del self.connection
                if attempt == PUBLISH_ATTEMPTS:
                    raise ConnectionClosed(exc) from None

    def send_command(self, queue_name: str, actor_name: str, payload: dict[str, Any] | list[dict[str, Any]]) -> str:
        """Enqueue a command (or, for an actor that takes a list, many as one message) for the pool that owns
        `queue_name`; returns once RabbitMQ confirmed."""
        message = Message(queue_name=queue_name, actor_name=actor_name, args=(payload,), kwargs={}, options={})
        self.enqueue(message)
        return message.message_id

    def ping(self) -> None:
        """Raise unless RabbitMQ answers on this thread's connection."""
        self.connection.process_data_events(time_limit=0)

"""Live updates for WebSockets: one consumer per web process, fanned out in-process by group id.

Each web process binds its OWN exclusive, auto-delete queue to the durable fanout exchange of group events
(so every process sees every event, and RabbitMQ deletes the queue when the process or its connection goes).
A background thread, started by the first subscriber, consumes it and hands each event to the local
subscribers of that event's group. On a broken connection it reconnects with a fresh queue and tells every
subscriber to resynchronize (events published meanwhile were not seen). Live updates are a view, not the
truth: GET /groups/{id} answers from SQL.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from dramatiq.message import Message

log = logging.getLogger(__name__)

#: The exchange group events travel on.
GROUPS_EXCHANGE = "finance.groups"
#: Messages a subscriber may have waiting before the oldest are dropped (a stuck socket must not grow memory).
SUBSCRIBER_BACKLOG = 1000
#: The process's queue holds at most this many messages (RabbitMQ drops the oldest beyond it).
QUEUE_MAX_LENGTH = 10_000
#: Seconds between reconnection attempts: doubling from the first to the last.
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


class Subscription:
    """What one socket receives: events of one group, as JSON text, in arrival order."""

    def __init__(self, feed: LiveFeed, group_id: str) -> None:
        self.group_id = group_id
        self._feed = feed
        self._queue: queue.Queue[str] = queue.Queue(maxsize=SUBSCRIBER_BACKLOG)

    def put(self, text: str) -> None:
        """Hand over one message; when the socket lags this far behind, the oldest is dropped."""
        while True:
            try:
                self._queue.put_nowait(text)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def get(self, timeout: float) -> str | None:
        """The next message, or None after `timeout` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving."""
        self._feed.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _message_text(body: bytes) -> tuple[str, str] | None:
    """(group id, JSON text for clients) of an event as the bus carries it, or None if it is no group's."""
    envelope = Message.decode(body).args[0]
    payload = envelope.get("payload") or {}
    group_id = payload.get("group_id")
    if not group_id:
        return None
    text = json.dumps({"type": envelope["type"], "event_id": envelope["event_id"],
                       "occurred_at": envelope["occurred_at"], **payload})
    return str(group_id), text


class LiveFeed:
    """The process-wide consumer of group events and its in-process subscribers."""

    def __init__(self, url: str, exchange: str = GROUPS_EXCHANGE,
                 connect: Callable[[pika.URLParameters], pika.BlockingConnection] = pika.BlockingConnection) -> None:
        self._url = url
        self._exchange = exchange
        self._connect = connect
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._attempt = 0
        self.queue_name: str | None = None

    # --- subscribers (any thread) ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the consumer thread unless it runs already."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
                self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Start the consumer if needed and wait until its queue is bound; False if it was not in time."""
        self.start()
        return self._ready.wait(timeout)

    def subscribe(self, group_id: str) -> Subscription:
        """Receive the events of one group from now on (as long as the feed is ready)."""
        sub = Subscription(self, group_id)
        with self._lock:
            self._subscribers.setdefault(group_id, set()).add(sub)
        self.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop handing events to a subscription."""
        with self._lock:
            subs = self._subscribers.get(sub.group_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[sub.group_id]

    def subscriber_count(self) -> int:
        """How many sockets listen in this process."""
        with self._lock:
            return sum(len(subs) for subs in self._subscribers.values())

    def stop(self) -> None:
        """Stop the consumer thread (tests, shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _deliver(self, group_id: str, text: str) -> None:
        with self._lock:
            subs = list(self._subscribers.get(group_id, ()))
        for sub in subs:
            sub.put(text)

    def _resync_all(self) -> None:
        with self._lock:
            subs = [(group_id, sub) for group_id, group in self._subscribers.items() for sub in group]
        for group_id, sub in subs:
            sub.put(json.dumps({"type": "resync", "group_id": group_id,
                                "reason": "live updates were interrupted; fetch the group again"}))

    # --- the consumer thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        interrupted = False
        while not self._stop.is_set():
            try:
                self._consume(resync=interrupted)
                return
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._ready.clear()
                interrupted = True
                delay = RECONNECT_DELAYS[min(self._attempt, len(RECONNECT_DELAYS) - 1)]
                self._attempt += 1
                log.warning("live feed: RabbitMQ connection lost (%s); reconnecting in %.1fs", exc, delay)
                self._stop.wait(delay)
            except Exception:  # noqa: BLE001 - keep the feed alive whatever one message does
                self._ready.clear()
                interrupted = True
                log.exception("live feed failed; restarting")
                self._stop.wait(1.0)

    def _consume(self, *, resync: bool) -> None:
        """Bind a fresh exclusive queue and hand its messages out until stopped."""
        params = pika.URLParameters(self._url)
        params.heartbeat = 30
        connection = self._connect(params)
        try:
            channel = connection.channel()
            # The name says which process listens (the management UI shows it); the suffix keeps a reconnect from
            # colliding with the queue of a connection RabbitMQ has not noticed dead yet.
            self.queue_name = f"live.groups.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
            channel.queue_declare(self.queue_name, exclusive=True, auto_delete=True, durable=False,
                                  arguments={"x-max-length": QUEUE_MAX_LENGTH, "x-overflow": "drop-head"})
            channel.queue_bind(self.queue_name, self._exchange)
            channel.basic_consume(self.queue_name, self._on_message, auto_ack=True)
            self._ready.set()
            self._attempt = 0
            log.info("live feed: %s bound to %s", self.queue_name, self._exchange)
            if resync:
                self._resync_all()
            while not self._stop.is_set():
                connection.process_data_events(time_limit=1)
        finally:
            self._ready.clear()
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                pass

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        try:
            found = _message_text(body)
        except (ValueError, KeyError, IndexError, TypeError):
            log.warning("live feed: dropping a message that is not an event envelope")
            return
        if found is not None:
            self._deliver(*found)


_feeds: dict[int, LiveFeed] = {}
_feeds_lock = threading.Lock()


def feed_for(url: str) -> LiveFeed:
    """This process's feed (one per process id, so a fork gets its own)."""
    pid = os.getpid()
    with _feeds_lock:
        if pid not in _feeds:
            _feeds[pid] = LiveFeed(url)
        return _feeds[pid]

"""Cross-cutting worker behaviour: correlation ids in logs, and message metrics in Redis."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import dramatiq
import redis

from config.logs import correlation_id
from services.uow import request_origin

log = logging.getLogger(__name__)

#: Redis hash of message counts, field "queue|outcome".
MESSAGES_KEY = "metrics:messages"
#: Prefix of per-process hashes of messages in progress, field "queue".
IN_PROGRESS_PREFIX = "metrics:inprogress:"
#: Seconds an in-progress hash outlives its process.
IN_PROGRESS_TTL = 30
#: Seconds between two flushes of the counters to Redis.
FLUSH_SECONDS = 1.0


def _correlation_of(message: Any) -> str:
    first = message.args[0] if message.args else {}
    return first.get("correlation_id", "") if isinstance(first, dict) else ""


def _origin_of(message: Any) -> dict[str, str] | None:
    first = message.args[0] if message.args else {}
    carried = first.get("origin") if isinstance(first, dict) else None
    return carried or message.options.get("origin")


class Correlation(dramatiq.Middleware):
    """Every log line of a message carries the correlation id of the request that caused it; commands carry the
    request's origin (client address, user agent) so the events they cause do too."""

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        """Attach the origin of the request being handled to a command sent on its behalf."""
        current = request_origin.get()
        if current and current[0] == _correlation_of(message) and "origin" not in message.options:
            message.options["origin"] = current[1]

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Set the correlation id (and the request's origin) for this thread."""
        correlation_id.set(_correlation_of(message))
        origin = _origin_of(message)
        request_origin.set((_correlation_of(message), origin) if origin else None)

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        """Clear it again."""
        correlation_id.set("")
        request_origin.set(None)


class Metrics(dramatiq.Middleware):
    """Counts processed, failed and retried messages, and those in progress, per queue.

    Counting happens in memory; a thread flushes to Redis once a second, so a message costs no
    round trip. A process that dies takes at most a second of counts with it, and its in-progress
    hash expires.
    """

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        self._client = client
        self._key = f"{IN_PROGRESS_PREFIX}{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._outcomes: Counter[str] = Counter()
        self._in_progress: Counter[str] = Counter()
        self._stop = threading.Event()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """Start flushing."""
        self._key = f"{IN_PROGRESS_PREFIX}{socket.gethostname()}:{os.getpid()}"
        threading.Thread(target=self._flush_forever, name="metrics-flush", daemon=True).start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Flush what is left."""
        self._stop.set()
        self.flush()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """One more message in progress."""
        with self._lock:
            self._in_progress[message.queue_name] += 1

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        """Count the outcome: processed, retried (failed, will run again) or failed (dead-lettered)."""
        outcome = "processed" if exception is None else ("failed" if message.failed else "retried")
        with self._lock:
            self._in_progress[message.queue_name] -= 1
            self._outcomes[f"{message.queue_name}|{outcome}"] += 1

    after_skip_message = after_process_message

    def _flush_forever(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        """Write the counts gathered since the last flush to Redis."""
        with self._lock:
            outcomes, self._outcomes = self._outcomes, Counter()
            in_progress = {queue: count for queue, count in self._in_progress.items()}
        try:
            pipe = self._client().pipeline(transaction=False)
            for field, count in outcomes.items():
                pipe.hincrby(MESSAGES_KEY, field, count)
            if in_progress:
                pipe.hset(self._key, mapping=in_progress).expire(self._key, IN_PROGRESS_TTL)
            pipe.execute()
        except redis.RedisError:
            log.warning("metrics not flushed: Redis did not answer")
            with self._lock:
                self._outcomes.update(outcomes)

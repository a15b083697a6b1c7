"""Cross-cutting worker behaviour: correlation ids in logs, and message metrics in Redis."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import dramatiq
import redis

from config.logs import correlation_id

log = logging.getLogger(__name__)

#: Redis hash of message counts, field "queue|outcome".
MESSAGES_KEY = "metrics:messages"
#: Prefix of per-process hashes of messages in progress, field "queue".
IN_PROGRESS_PREFIX = "metrics:inprogress:"
#: Seconds an in-progress hash outlives its process.
IN_PROGRESS_TTL = 120


def _correlation_of(message: Any) -> str:
    first = message.args[0] if message.args else {}
    return first.get("correlation_id", "") if isinstance(first, dict) else ""


class Correlation(dramatiq.Middleware):
    """Every log line of a message carries the correlation id of the request that caused it."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Set the correlation id for this thread."""
        correlation_id.set(_correlation_of(message))

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        """Clear it again."""
        correlation_id.set("")


class Metrics(dramatiq.Middleware):
    """Counts processed, failed and retried messages, and those in progress, per queue, in Redis."""

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        self._client = client
        self._in_progress = f"{IN_PROGRESS_PREFIX}{socket.gethostname()}:{os.getpid()}"

    def _safely(self, action: Callable[[redis.Redis], Any]) -> None:
        try:
            action(self._client())
        except redis.RedisError:
            log.warning("metrics not recorded: Redis did not answer")

    def _progress(self, queue: str, delta: int) -> None:
        def act(r: redis.Redis) -> None:
            r.pipeline().hincrby(self._in_progress, queue, delta).expire(self._in_progress, IN_PROGRESS_TTL).execute()
        self._safely(act)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """One more message in progress."""
        self._progress(message.queue_name, 1)

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        """Count the outcome: processed, retried (failed, will run again) or failed (dead-lettered)."""
        outcome = "processed" if exception is None else ("failed" if message.failed else "retried")
        self._progress(message.queue_name, -1)
        self._safely(lambda r: r.hincrby(MESSAGES_KEY, f"{message.queue_name}|{outcome}", 1))

    after_skip_message = after_process_message

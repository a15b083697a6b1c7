"""Request ids, JSON access logs, and HTTP metrics kept in Redis so every web process is counted."""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
import uuid
from collections import Counter

import redis
from flask import Flask, Response, g, request

from config import wiring
from config.logs import correlation_id
from services.uow import request_origin

log = logging.getLogger("api.access")

#: Redis hash of request counts, field "method|route|status".
HTTP_KEY = "metrics:http"
#: Redis hash of latency buckets, field "route|le".
HTTP_LATENCY_KEY = "metrics:http_latency"
#: The longest User-Agent kept in the audit trail.
MAX_USER_AGENT = 256
#: Latency bucket bounds in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Seconds a web process keeps its HTTP counts before adding them to Redis in one pipeline.
FLUSH_SECONDS = 0.5
#: The scrape endpoint (api.ops): a scrape first adds what this process counted.
METRICS_PATH = "/metrics"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class PendingCounts:
    """HTTP counts of this process not yet in Redis: one pipeline every FLUSH_SECONDS instead of one per request."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._timer: threading.Timer | None = None

    def add(self, key: str, field: str) -> None:
        """Count one under `field` of the Redis hash `key`; written within FLUSH_SECONDS."""
        with self._lock:
            self._counts[key, field] += 1
            if self._timer is None:
                self._timer = threading.Timer(self._flush_seconds, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Add the pending counts to Redis now; lost (with a warning) if Redis does not answer."""
        with self._lock:
            counts, self._counts, self._timer = self._counts, Counter(), None
        if not counts:
            return
        try:
            pipeline = wiring.redis_client().pipeline(transaction=False)
            for (key, field), count in counts.items():
                pipeline.hincrby(key, field, count)
            pipeline.execute()
        except redis.RedisError:
            log.warning("HTTP metrics not recorded: Redis did not answer")


#: This process's pending HTTP counts (what is left when it exits is added then).
pending = PendingCounts()
atexit.register(pending.flush)


def _request_id() -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _SAFE_ID.match(given) else str(uuid.uuid4())


def _begin() -> None:
    if request.path == METRICS_PATH:
        pending.flush()
    g.request_id = _request_id()
    g.started = time.perf_counter()
    correlation_id.set(g.request_id)
    request_origin.set((g.request_id, {"client_address": request.remote_addr or "",
                                       "user_agent": request.headers.get("User-Agent", "")[:MAX_USER_AGENT]}))


def _bucket(seconds: float) -> str:
    return next((str(b) for b in BUCKETS if seconds <= b), "+Inf")


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    route = request.url_rule.rule if request.url_rule else "unmatched"
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    pending.add(HTTP_KEY, f"{request.method}|{route}|{response.status_code}")
    pending.add(HTTP_LATENCY_KEY, f"{route}|{_bucket(elapsed)}")
    log.info("request", extra={"method": request.method, "path": request.path, "route": route,
                               "status": response.status_code, "ms": round(elapsed * 1000, 2)})
    return response


def install(app: Flask) -> None:
    """Give every request an id (returned, logged, carried into commands and events) and count it."""
    app.before_request(_begin)
    app.after_request(_finish)

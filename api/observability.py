"""Request ids, JSON access logs, and HTTP metrics kept in Redis so every web process is counted."""

from __future__ import annotations

import logging
import re
import time
import uuid

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
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def _request_id() -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _SAFE_ID.match(given) else str(uuid.uuid4())


def _begin() -> None:
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
    try:
        wiring.redis_client().pipeline(transaction=False).hincrby(
            HTTP_KEY, f"{request.method}|{route}|{response.status_code}", 1).hincrby(
            HTTP_LATENCY_KEY, f"{route}|{_bucket(elapsed)}", 1).execute()
    except redis.RedisError:
        log.warning("HTTP metrics not recorded: Redis did not answer")
    log.info("request", extra={"method": request.method, "path": request.path, "route": route,
                               "status": response.status_code, "ms": round(elapsed * 1000, 2)})
    return response


def install(app: Flask) -> None:
    """Give every request an id (returned, logged, carried into commands and events) and count it."""
    app.before_request(_begin)
    app.after_request(_finish)

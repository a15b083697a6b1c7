"""Operations endpoints: liveness, readiness (naming what is down, with the FX breaker) and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pika
from flask import Blueprint, Response, jsonify
from flask.typing import ResponseReturnValue
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import text

from api.observability import BUCKETS, HTTP_KEY, HTTP_LATENCY_KEY
from config import wiring
from config.settings import get_settings
from services.fx_breaker import NAMESPACE, STATES
from services.outbox import unpublished_count

blp = Blueprint("ops", __name__)

#: Redis keys written by the workers' metrics middleware (actors.middleware).
MESSAGES_KEY = "metrics:messages"
IN_PROGRESS_PATTERN = "metrics:inprogress:*"


def _postgres() -> None:
    with wiring.engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def _redis() -> None:
    wiring.redis_client().ping()


def _rabbitmq() -> None:
    params = pika.URLParameters(get_settings().rabbitmq_url)
    params.socket_timeout = params.stack_timeout = 2
    params.connection_attempts = 1
    pika.BlockingConnection(params).close()


#: The dependencies /readyz checks, by the name it reports.
CHECKS: dict[str, Callable[[], None]] = {"postgresql": _postgres, "redis": _redis, "rabbitmq": _rabbitmq}


def _check(probe: Callable[[], None]) -> str:
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; say which
        return f"down: {type(exc).__name__}"
    return "ok"


@blp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Alive while the process runs."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready when PostgreSQL, RabbitMQ and Redis answer; 503 naming any that does not."""
    checks = {name: _check(probe) for name, probe in CHECKS.items()}
    down = sorted(name for name, state in checks.items() if state != "ok")
    body = {"status": "ready" if not down else "unavailable", "checks": checks, "down": down, "fx": _fx()}
    return jsonify(body), 503 if down else 200


def _fx() -> dict[str, Any]:
    """The FX provider's breaker as every process shares it (an open breaker degrades FX, it is not "down")."""
    live = bool(get_settings().fx_provider_url)
    fx: dict[str, Any] = {"provider": "live, then ECB reference rates" if live else "ECB reference rates (shipped)",
                          "breaker": "unknown"}
    try:
        state = wiring.fx_breaker_state()
    except Exception as exc:  # noqa: BLE001 - Redis is reported above; say why the state is unknown
        fx["breaker_error"] = type(exc).__name__
        return fx
    return {**fx, "breaker": state.state, "breaker_detail": state.to_json()}


def _split(field: bytes) -> list[str]:
    return field.decode().split("|")


class RedisMetrics:
    """Exposes the counters every process keeps in Redis, so one scrape sees the whole stack."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        """Yield the metric families."""
        r = wiring.redis_client()
        yield self._http(r.hgetall(HTTP_KEY))
        yield self._latency(r.hgetall(HTTP_LATENCY_KEY))
        yield self._messages(r.hgetall(MESSAGES_KEY))
        yield self._in_progress([r.hgetall(k) for k in r.scan_iter(IN_PROGRESS_PATTERN)])
        outbox = GaugeMetricFamily("finance_outbox_unpublished", "Committed events not yet published")
        outbox.add_metric([], unpublished_count(wiring.session_factory()))
        yield outbox
        yield from self._fx_breaker()

    def _fx_breaker(self) -> Iterator[GaugeMetricFamily]:
        state = wiring.fx_breaker_state()
        family = GaugeMetricFamily("finance_fx_breaker_state", "The FX provider breaker: 1 for its current state",
                                   labels=["breaker", "state"])
        for name in STATES:
            family.add_metric([NAMESPACE, name], 1 if state.state == name else 0)
        yield family
        failures = GaugeMetricFamily("finance_fx_breaker_failures", "Consecutive FX provider failures counted",
                                     labels=["breaker"])
        failures.add_metric([NAMESPACE], state.failures)
        yield failures

    def _http(self, raw: dict[bytes, bytes]) -> CounterMetricFamily:
        family = CounterMetricFamily("finance_http_requests", "HTTP requests", labels=["method", "route", "status"])
        for field, count in raw.items():
            family.add_metric(_split(field), int(count))
        return family

    def _latency(self, raw: dict[bytes, bytes]) -> HistogramMetricFamily:
        family = HistogramMetricFamily("finance_http_request_seconds", "HTTP latency", labels=["route"])
        by_route: dict[str, dict[str, int]] = {}
        for field, count in raw.items():
            route, le = _split(field)
            by_route.setdefault(route, {})[le] = int(count)
        for route, counts in by_route.items():
            running, buckets = 0, []
            for le in [*map(str, BUCKETS), "+Inf"]:
                running += counts.get(le, 0)
                buckets.append((le, running))
            family.add_metric([route], buckets, sum_value=None)
        return family

    def _messages(self, raw: dict[bytes, bytes]) -> CounterMetricFamily:
        family = CounterMetricFamily("finance_messages", "Messages handled by the pools",
                                     labels=["queue", "outcome"])
        for field, count in raw.items():
            family.add_metric(_split(field), int(count))
        return family

    def _in_progress(self, hashes: list[dict[bytes, bytes]]) -> GaugeMetricFamily:
        totals: dict[str, int] = {}
        for h in hashes:
            for queue, count in h.items():
                totals[queue.decode()] = totals.get(queue.decode(), 0) + int(count)
        family = GaugeMetricFamily("finance_messages_in_progress", "Messages being handled", labels=["queue"])
        for queue, count in sorted(totals.items()):
            family.add_metric([queue], count)
        return family


@blp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisMetrics())
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")

"""Builds each adapter once per process: database, Redis, broker, unit of work, audit store, rates."""

from __future__ import annotations

from functools import cache

import dramatiq
import redis
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

import models.all  # noqa: F401 - every model, so each process's metadata resolves every foreign key
from actors.broker import FinanceBroker
from config.crypto import install_keys
from config.settings import get_settings
from domain.events import Event
from models.base import make_engine, make_session_factory
from services.audit import AuditStore
from services.audit_batcher import audit_writer as group_audit_writer
from services.audit_postgres import PostgresAuditStore
from services.fx import Sweep, announce_breaker
from services.fx_breaker import NAMESPACE, BreakerConfig, BreakerState, ThreadBreakers, read_state
from services.fx_provider import FrankfurterClient, LiveRates
from services.fx_rates import RateBook, default_rates, store_fetched
from services.group_commit import GroupCommit
from services.outbox import BatchedMarker
from services.uow import UnitOfWork

#: What this process is (web, a pool's name, cli) and how many of its threads may each hold a database connection
#: at once, once said by `identify` (else a pool's WORKER_THREADS).
_process: dict[str, str | int] = {}


def identify(process_type: str, threads: int | None = None) -> None:
    """Say what this process is, before the engine is first used: its PostgreSQL connections carry the name
    (`finance-web`, `finance-budgets`, ... in pg_stat_activity), and with `threads` (the web: its gunicorn threads
    and the submission writer) its pool keeps that many connections, so none is closed and opened again between two
    requests."""
    _process.clear()
    _process["type"] = process_type
    if threads:
        _process["threads"] = threads


@cache
def engine() -> Engine:
    """The SQLAlchemy engine of this process: a pool of DATABASE_POOL_SIZE connections, else max(5, the process's
    threads)."""
    settings = get_settings()
    pool_size = settings.database_pool_size or max(5, int(_process.get("threads", settings.worker_threads)))
    name = f"finance-{_process['type']}" if "type" in _process else None
    return make_engine(settings.database_url, pool_size=pool_size, max_overflow=settings.database_max_overflow,
                       application_name=name)


@cache
def session_factory() -> sessionmaker:
    """Sessions on this process's engine (with the field-encryption keys installed first)."""
    install_keys()
    return make_session_factory(engine())


@cache
def redis_client() -> redis.Redis:
    """The Redis client of this process (bytes in, bytes out)."""
    return redis.Redis.from_url(get_settings().redis_url, socket_timeout=2, socket_connect_timeout=2)


def message_middleware(retries: Retries) -> list[dramatiq.Middleware]:
    """The middleware every broker of the platform runs, in order, with the given retry policy (metrics,
    which need Redis, are added by `broker()`)."""
    from actors.middleware import Correlation

    return [AgeLimit(), TimeLimit(time_limit=300_000), ShutdownNotifications(), Callbacks(), Pipelines(), retries,
            CurrentMessage(), Correlation()]


def _middleware() -> list[dramatiq.Middleware]:
    from actors.middleware import Metrics

    s = get_settings()
    retries = Retries(max_retries=s.max_retries, min_backoff=s.min_backoff_ms, max_backoff=s.max_backoff_ms)
    return [*message_middleware(retries), Metrics(redis_client)]


@cache
def broker() -> FinanceBroker:
    """The broker of this process, also Dramatiq's global broker."""
    s = get_settings()
    built = FinanceBroker(url=s.rabbitmq_url, middleware=_middleware(), timeout_seconds=s.broker_timeout_seconds)
    dramatiq.set_broker(built)
    return built


def publish(event: Event) -> None:
    """Publish a committed event on its exchange (confirmed)."""
    broker().publish_event(event.exchange, event.to_dict())


def publish_many(events: list[Event]) -> None:
    """Publish events of one exchange, committed together, as one message (confirmed)."""
    broker().publish_events(events[0].exchange, [event.to_dict() for event in events])


@cache
def outbox_marker() -> BatchedMarker:
    """Marks published outbox rows in batches for this process."""
    return BatchedMarker(session_factory())


def uow() -> UnitOfWork:
    """A new unit of work that publishes through this process's broker."""
    return UnitOfWork(session_factory(), publish, outbox_marker(), publish_many)


@cache
def audit_store() -> AuditStore:
    """MongoDB when MONGO_URL is set, PostgreSQL otherwise."""
    url = get_settings().mongo_url
    if url:
        from services.audit_mongo import MongoAuditStore

        return MongoAuditStore(url)
    return PostgresAuditStore(session_factory())


@cache
def audit_writer() -> GroupCommit[Event, bool]:
    """The audit pool's group commit: one batched write for the events its threads hand in (AUDIT_BATCH_SIZE)."""
    return group_audit_writer(audit_store().append_many, max_batch=get_settings().audit_batch_size)


@cache
def rates() -> RateBook:
    """The FX rates in order: the household's manual rates, the live provider (when FX_PROVIDER_URL is set and its
    breaker lets the call through), rates fetched earlier, the ECB reference rates shipped with the package."""
    return RateBook(session_factory(), default_rates(), fx_live())


def fx_breaker_config() -> BreakerConfig:
    """The FX provider breaker's settings (FX_BREAKER_FAIL_MAX, FX_BREAKER_RESET_SECONDS)."""
    s = get_settings()
    return BreakerConfig(fail_max=s.fx_breaker_fail_max, reset_seconds=s.fx_breaker_reset_seconds)


def fx_breaker_state() -> BreakerState:
    """The FX provider breaker's state as every process shares it in Redis."""
    return read_state(redis_client(), fx_breaker_config())


def _fx_transition(old: str, new: str, state: BreakerState) -> None:
    """A real breaker transition: publish it; once closed, convert what waited for a rate."""
    announce_breaker(NAMESPACE, old, new, state, uow())
    if new == "closed":
        broker().send_command("fx", "fx_sweep_command", Sweep("CircuitClosed").to_dict())


@cache
def fx_live() -> LiveRates | None:
    """The live FX provider behind its breaker and the Redis cache; None without FX_PROVIDER_URL."""
    s = get_settings()
    if not s.fx_provider_url:
        return None
    breakers = ThreadBreakers(redis_client, fx_breaker_config(), _fx_transition)
    return LiveRates(FrankfurterClient(s.fx_provider_url, s.fx_timeout_seconds), breakers, redis_client,
                     on_fetched=lambda rate: store_fetched(session_factory(), rate))

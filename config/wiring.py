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
from services.audit import AuditStore, MongoAuditStore, PostgresAuditStore
from services.fx_rates import EcbRates, default_rates
from services.outbox import BatchedMarker
from services.uow import UnitOfWork


@cache
def engine() -> Engine:
    """The SQLAlchemy engine of this process."""
    settings = get_settings()
    return make_engine(settings.database_url, pool_size=max(5, settings.worker_threads))


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


@cache
def outbox_marker() -> BatchedMarker:
    """Marks published outbox rows in batches for this process."""
    return BatchedMarker(session_factory())


def uow() -> UnitOfWork:
    """A new unit of work that publishes through this process's broker."""
    return UnitOfWork(session_factory(), publish, outbox_marker())


@cache
def audit_store() -> AuditStore:
    """MongoDB when MONGO_URL is set, PostgreSQL otherwise."""
    url = get_settings().mongo_url
    return MongoAuditStore(url) if url else PostgresAuditStore(session_factory())


def rates() -> EcbRates:
    """The FX rate source (ECB reference rates shipped with the package)."""
    return default_rates()

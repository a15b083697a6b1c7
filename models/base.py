"""Declarative base, common column types and the engine factory."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal
from typing import Annotated

from sqlalchemy import DateTime, Numeric, create_engine, event, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, mapped_column, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

#: Amounts: up to 10^12 with room for 4 decimals (ISO 4217 exponents are 0..4).
MONEY = Numeric(20, 4)
#: FX rates carry 10 decimal places.
RATE = Numeric(24, 10)

UUIDPk = Annotated[uuid.UUID, mapped_column(primary_key=True, default=uuid.uuid4)]
Amount = Annotated[Decimal, mapped_column(MONEY)]
Created = Annotated[
    dt.datetime, mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
]


class Base(DeclarativeBase):
    """The declarative base of every model."""


#: A pooled connection idle this long is pinged before it is handed out; one in use more recently is not.
PING_AFTER_IDLE_SECONDS = 1.0


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None,
                application_name: str | None = None) -> Engine:
    """An engine with a pool sized for one process's threads (overflow: as many again, unless given), whose idle
    connections are checked before use, and whose connections carry `application_name` (pg_stat_activity)."""
    # hide_parameters: a failing statement's values (password hashes, phone numbers) never reach a log line.
    overflow = pool_size if max_overflow is None else max_overflow
    connect_args = {"application_name": application_name} if application_name else {}
    engine = create_engine(url, pool_size=pool_size, max_overflow=overflow, hide_parameters=True,
                           connect_args=connect_args)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _note_checkin(dbapi_connection: object, entry: ConnectionPoolEntry) -> None:
    entry.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: object, entry: ConnectionPoolEntry, proxy: object) -> None:
    """What pool_pre_ping does, for connections that sat idle: a busy process reuses its connections within
    milliseconds, and a ping per checkout was a round trip per statement batch. A connection that broke while
    in use fails its statement, and SQLAlchemy then replaces every connection of the pool."""
    checked_in = entry.info.get("checked_in_at")
    if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_SECONDS:
        return  # new, or in use a moment ago
    try:
        with dbapi_connection.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()  # type: ignore[attr-defined]  # handed out idle, as checkin left it
    except Exception as exc:  # noqa: BLE001 - any failure: the pool discards it and connects again
        raise DisconnectionError(str(exc)) from exc


def make_session_factory(engine: Engine) -> sessionmaker:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)

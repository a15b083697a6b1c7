"""Declarative base, common column types and the engine factory."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated

from sqlalchemy import DateTime, Numeric, create_engine, func
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, mapped_column, sessionmaker

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


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> Engine:
    """An engine with a pool sized for one process's threads (overflow: as many again, unless given)."""
    # hide_parameters: a failing statement's values (password hashes, phone numbers) never reach a log line.
    overflow = pool_size if max_overflow is None else max_overflow
    return create_engine(url, pool_size=pool_size, max_overflow=overflow, pool_pre_ping=True, hide_parameters=True)


def make_session_factory(engine: Engine) -> sessionmaker:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)

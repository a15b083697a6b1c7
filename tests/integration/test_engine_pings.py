"""The engine pings a pooled connection only when it sat idle: a connection PostgreSQL closed while idle is replaced
before anyone uses it, and a busy connection costs no extra round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from models import base
from tests.support.isolation import TEST_ENV


@pytest.fixture
def engine() -> Iterator[Engine]:
    built = base.make_engine(TEST_ENV["DATABASE_URL"], pool_size=1, max_overflow=0)
    yield built
    built.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(pid: int) -> None:
    admin = create_engine(TEST_ENV["DATABASE_URL"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_connection_closed_while_idle_is_replaced_before_use(engine: Engine, monkeypatch) -> None:
    monkeypatch.setattr(base, "PING_AFTER_IDLE_SECONDS", 0.0)
    first = _backend(engine)
    _terminate(first)

    assert _backend(engine) != first  # the ping found it closed: the pool connected again, the caller saw nothing


def test_a_connection_in_use_a_moment_ago_is_not_pinged(engine: Engine, monkeypatch) -> None:
    monkeypatch.setattr(base, "PING_AFTER_IDLE_SECONDS", 60.0)
    first = _backend(engine)
    _terminate(first)

    with pytest.raises(OperationalError):  # no ping: the statement itself meets the closed connection
        _backend(engine)
    assert _backend(engine) != first  # and the pool replaced it for the next caller


def test_a_pinged_connection_is_handed_out_outside_any_transaction(engine: Engine, monkeypatch) -> None:
    monkeypatch.setattr(base, "PING_AFTER_IDLE_SECONDS", 0.0)
    _backend(engine)
    with engine.connect() as conn:
        autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")  # fails on a connection left in a transaction
        assert autocommit.execute(text("SELECT 1")).scalar_one() == 1


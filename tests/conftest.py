"""Test set-up: every run gets its own database, RabbitMQ vhost and Redis database.

The environment is set here, before any application module reads its settings, so in-process
tests and the stack's processes use the same isolated resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import rabbit_admin
from tests.support.cli import run_cli
from tests.support.isolation import DATABASE, TEST_ENV, VHOST
from tests.support.services import ensure_services

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def isolated_resources() -> Iterator[None]:
    """Create the run's database (migrated), vhost (topology declared) and empty Redis database."""
    ensure_services()
    rabbit_admin.create_vhost(VHOST)
    import redis

    redis.Redis.from_url(TEST_ENV["REDIS_URL"]).flushdb()
    result = run_cli("release", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    yield
    _drop(DATABASE)
    rabbit_admin.delete_vhost(VHOST)


def _drop(database: str) -> None:
    from sqlalchemy import create_engine, text

    from config import wiring

    wiring.engine().dispose()
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()

"""Test set-up: every run gets its own database, RabbitMQ vhost and Redis database.

The environment is set here, before any application module reads its settings, so in-process
tests and the stack's processes use the same isolated resources.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import rabbit_admin
from tests.support.services import ensure_services

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]
DATABASE = f"finance_test_{RUN_ID}"
VHOST = f"finance-test-{RUN_ID}"
#: Redis database reserved for tests (development uses 0).
REDIS_DB = 9

TEST_ENV = {
    "FINANCE_ENV": "test",
    "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}",
    "RABBITMQ_URL": rabbit_admin.amqp_url(VHOST),
    "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
    "MONGO_URL": "",
    "JWT_SECRET_KEY": "test-secret-0123456789abcdef0123456789",
    "DRAMATIQ_MAX_RETRIES": "2",
    "DRAMATIQ_MIN_BACKOFF_MS": "100",
    "DRAMATIQ_MAX_BACKOFF_MS": "500",
    "WORKER_THREADS": "4",
    "OUTBOX_RELAY_SECONDS": "1",
    "LOG_LEVEL": "INFO",
}
os.environ.update(TEST_ENV)


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the operator CLI the way an operator does, against the test resources."""
    return subprocess.run([sys.executable, "-m", "config.cli", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120, check=check)


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

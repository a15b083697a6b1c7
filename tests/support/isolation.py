"""The isolated resources of one test run: its database, RabbitMQ vhost and Redis database.

Imported once (as tests.support.isolation) and keyed on an environment variable, so every module and
every child process of the run agrees on the names.
"""

from __future__ import annotations

import os
import uuid

from tests.support.rabbit_admin import amqp_url

RUN_ID = os.environ.setdefault("FINANCE_TEST_RUN_ID", uuid.uuid4().hex[:8])
#: The MongoDB the caller pointed MONGO_URL at (the stack itself audits to PostgreSQL; the audit contract tests
#: also run on this one).
MONGO_URL = os.environ.setdefault("FINANCE_TEST_MONGO_URL", os.environ.get("MONGO_URL", ""))
DATABASE = f"finance_test_{RUN_ID}"
VHOST = f"finance-test-{RUN_ID}"
#: This run's Redis database (development uses 0); concurrent runs on one machine rarely share one, and
#: FINANCE_TEST_REDIS_DB pins one so that runs side by side never do.
REDIS_DB = int(os.environ.get("FINANCE_TEST_REDIS_DB") or 1 + int(RUN_ID, 16) % 15)

TEST_ENV = {
    "FINANCE_ENV": "test",
    "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}",
    "RABBITMQ_URL": amqp_url(VHOST),
    "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
    "MONGO_URL": "",
    "JWT_SECRET_KEY": "test-secret-0123456789abcdef0123456789",
    "DRAMATIQ_MAX_RETRIES": "2",
    "DRAMATIQ_MIN_BACKOFF_MS": "100",
    "DRAMATIQ_MAX_BACKOFF_MS": "500",
    "WORKER_THREADS": "4",
    "OUTBOX_RELAY_SECONDS": "1",
    "LOG_LEVEL": "INFO",
    # Short windows so the tests can watch a limit trip and free up again.
    "LOGIN_LIMIT_PER_ACCOUNT": "10/6seconds",
    "LOGIN_LIMIT_PER_ADDRESS": "500/6seconds",
    "API_LIMIT_PER_TOKEN": "100000/minute",
}
os.environ.update(TEST_ENV)

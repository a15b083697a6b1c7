"""A dependency that is down or saturated answers 503 with Retry-After in the one error shape, never 500."""

from __future__ import annotations

import warnings

import pytest
import redis
from flask import Flask
from sqlalchemy import exc as sql

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The class 'ConnectionError' has been renamed", DeprecationWarning)
    from api import errors

FAILURES = {
    "pool": (sql.TimeoutError("QueuePool limit reached"), "too busy"),
    "postgres": (sql.OperationalError("SELECT 1", {}, Exception("connection refused")), "PostgreSQL"),
    "redis": (redis.ConnectionError("Error 111 connecting"), "Redis"),
    "redis-timeout": (redis.TimeoutError("Timeout reading from socket"), "Redis"),
}


@pytest.fixture
def client():
    """A tiny app whose routes fail the way each dependency does."""
    app = Flask(__name__)
    errors.register_error_handlers(app)
    for name, (error, _) in FAILURES.items():
        app.add_url_rule(f"/{name}", name, lambda error=error: (_ for _ in ()).throw(error))
    app.add_url_rule("/bug", "bug", lambda: 1 / 0)
    return app.test_client()


@pytest.mark.parametrize("name", FAILURES)
def test_a_failing_dependency_answers_503_with_retry_after_and_names_it(client, name):
    r = client.get(f"/{name}")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == str(errors.RETRY_AFTER_SECONDS)
    body = r.get_json()
    assert body["code"] == 503 and body["status"] == "Service Unavailable" and body["errors"] == {}
    assert FAILURES[name][1] in body["message"]


def test_a_bug_is_still_a_500(client):
    assert client.get("/bug").status_code == 500

"""Contract of services/ratelimit.py against the run's real Redis, with windows of two seconds."""

from __future__ import annotations

import ipaddress
import logging
import os
import time
import uuid
from collections.abc import Callable

import pytest
import redis

from services.errors import TooManyRequests
from services.ratelimit import KEY_PREFIX, RateLimits, account_id, rate_limits

WINDOW = 2
#: Just over one window, so every entry counted before the sleep has expired.
PAST_WINDOW = WINDOW + 0.2
DOWN_URL = "redis://127.0.0.1:1/0"


def _limits(url: str | None = None) -> RateLimits:
    return RateLimits(url or os.environ["REDIS_URL"], f"3/{WINDOW}seconds", f"5/{WINDOW}seconds",
                      f"4/{WINDOW}seconds")


@pytest.fixture
def limits() -> RateLimits:
    return _limits()


def _email() -> str:
    return f"user-{uuid.uuid4().hex}@example.com"


def _address() -> str:
    return str(ipaddress.IPv6Address(uuid.uuid4().int))


def _raises_retry(fn: Callable[..., None], *args: str) -> int:
    with pytest.raises(TooManyRequests) as caught:
        fn(*args)
    assert caught.value.status == 429
    return caught.value.retry_after


def test_account_allows_n_failures_then_blocks_until_the_window_passes(limits: RateLimits) -> None:
    email, address = _email(), _address()
    for _ in range(3):
        limits.check_login(email, address)
        limits.login_failed(email, address)

    retry_after = _raises_retry(limits.check_login, email, address)
    assert 1 <= retry_after <= WINDOW
    # Checking counts nothing: the same answer again, and the address is still free for others.
    _raises_retry(limits.check_login, email, address)
    limits.check_login(_email(), address)
    # The email is normalized before keying.
    _raises_retry(limits.check_login, f"  {email.upper()} ", _address())

    time.sleep(PAST_WINDOW)
    limits.check_login(email, address)


def test_success_clears_the_account_but_not_the_address(limits: RateLimits) -> None:
    email, address = _email(), _address()
    for _ in range(3):
        limits.login_failed(email, address)
    _raises_retry(limits.check_login, email, address)

    limits.login_succeeded(email)
    limits.check_login(email, address)

    # The address kept its 3 failures: 2 more from anyone exhaust its 5.
    limits.login_failed(_email(), address)
    limits.login_failed(_email(), address)
    assert 1 <= _raises_retry(limits.check_login, email, address) <= WINDOW
    limits.check_login(email, _address())


def test_address_limit_trips_across_different_emails(limits: RateLimits) -> None:
    address = _address()
    for _ in range(5):
        email = _email()
        limits.check_login(email, address)
        limits.login_failed(email, address)

    fresh = _email()
    assert 1 <= _raises_retry(limits.check_login, fresh, address) <= WINDOW
    limits.check_login(fresh, _address())


def test_token_limit_trips_and_recovers(limits: RateLimits) -> None:
    token, other = uuid.uuid4().hex, uuid.uuid4().hex
    for _ in range(4):
        limits.hit_token(token)

    retry_after = _raises_retry(limits.hit_token, token)
    assert 1 <= retry_after <= WINDOW
    limits.hit_token(other)

    time.sleep(PAST_WINDOW)
    limits.hit_token(token)


def test_keys_are_namespaced_and_never_hold_the_email(limits: RateLimits) -> None:
    email, address = f"Private.Person+{uuid.uuid4().hex[:8]}@Example.com", _address()
    limits.login_failed(email, address)
    limits.hit_token("token-" + uuid.uuid4().hex)

    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    keys = list(client.scan_iter(f"{KEY_PREFIX}:*"))
    assert any(account_id(email) in key for key in keys), keys
    for key in keys:
        assert email.lower() not in key.lower()
        assert email.split("@")[0].lower() not in key.lower()
    assert account_id(email) == account_id(f" {email.upper()} ")
    client.close()


def test_redis_down_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    down = _limits(DOWN_URL)
    email, address = _email(), _address()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="services.ratelimit"):
        for _ in range(10):
            down.login_failed(email, address)
            down.check_login(email, address)
            down.hit_token("token")
        down.login_succeeded(email)
    assert time.monotonic() - started < 5
    warnings = [r for r in caplog.records if r.name == "services.ratelimit" and r.levelno == logging.WARNING]
    assert len(warnings) >= 31


def test_factory_reads_the_settings() -> None:
    built = rate_limits()
    assert isinstance(built, RateLimits)
    assert built is rate_limits()
    built.check_login(_email(), _address())

"""Moving-window rate limits in Redis: failed logins per account and per address, requests per token."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from functools import cache

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from config.settings import get_settings
from services.errors import TooManyRequests

log = logging.getLogger(__name__)

#: Prefix of every key this module writes, so it never collides with other keys in the same database.
KEY_PREFIX = "rl"


def account_id(email: str) -> str:
    """The identifier of an account's limit: sha256 of the normalized email, so Redis never holds the email."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class RateLimits:
    """Login and API rate limits over one Redis, each a moving window."""

    def __init__(self, redis_url: str, per_account: str, per_address: str, per_token: str) -> None:
        storage = RedisStorage(redis_url, key_prefix=KEY_PREFIX, wrap_exceptions=True,
                               socket_timeout=2, socket_connect_timeout=2)
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_account = parse(per_account)
        self._per_address = parse(per_address)
        self._per_token = parse(per_token)

    def check_login(self, email: str, address: str) -> None:
        """Raise TooManyRequests when the account or the address has no failed logins left; counts nothing."""
        try:
            waits = [self._wait(self._per_account, "login-account", account_id(email)),
                     self._wait(self._per_address, "login-address", address)]
        except StorageError as exc:
            # Fail open: a cache outage must not lock every user out of their account.
            log.warning("rate limit store unavailable, login check skipped: %s", exc)
            return
        blocked = [wait for wait in waits if wait is not None]
        if blocked:
            seconds = max(blocked)
            raise TooManyRequests(f"too many failed logins; try again in {seconds} seconds", retry_after=seconds)

    def login_failed(self, email: str, address: str) -> None:
        """Count one failed login against the account and the address."""
        try:
            self._limiter.hit(self._per_account, "login-account", account_id(email))
            self._limiter.hit(self._per_address, "login-address", address)
        except StorageError as exc:
            # Fail open: losing a count during an outage is better than refusing logins.
            log.warning("rate limit store unavailable, failed login not counted: %s", exc)

    def login_succeeded(self, email: str) -> None:
        """Forget the account's failed logins (the address keeps its count)."""
        try:
            self._limiter.clear(self._per_account, "login-account", account_id(email))
        except StorageError as exc:
            # Fail open: the stale failures expire with their window anyway.
            log.warning("rate limit store unavailable, account failures not cleared: %s", exc)

    def hit_token(self, key: str) -> None:
        """Count one request for a token or user key; raise TooManyRequests when its limit is exceeded."""
        try:
            if self._limiter.hit(self._per_token, "token", key):
                return
            seconds = self._wait(self._per_token, "token", key) or 1
        except StorageError as exc:
            # Fail open: a cache outage must not turn into an outage of the whole API.
            log.warning("rate limit store unavailable, request not limited: %s", exc)
            return
        raise TooManyRequests(f"too many requests; try again in {seconds} seconds", retry_after=seconds)

    def _wait(self, item: RateLimitItem, *ids: str) -> int | None:
        """Whole seconds until the limit frees a slot (at least 1), or None when a slot is free now."""
        reset, remaining = self._limiter.get_window_stats(item, *ids)
        if remaining > 0:
            return None
        return max(1, math.ceil(reset - time.time()))


@cache
def rate_limits() -> RateLimits:
    """The rate limits of this process, configured from the settings."""
    s = get_settings()
    return RateLimits(s.redis_url, s.login_limit_per_account, s.login_limit_per_address, s.api_limit_per_token)

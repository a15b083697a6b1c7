"""The live FX provider (the Frankfurter JSON API), behind timeouts, capped retries, a breaker and a Redis cache.

    GET {url}/{YYYY-MM-DD}?from=USD&to=EUR  ->  {"amount": 1.0, "base": "USD", "date": "2026-01-15",
                                                  "rates": {"EUR": 0.9123}}

Numbers are read straight into Decimal (never through a float). The provider answers the latest rate published
on or before the date asked for; a 4xx other than 408/429 means "no such rate" and is an answer, not a failure.
Timeouts, connection errors, 5xx and malformed bodies are failures: retried once with a short capped backoff,
then counted by the circuit breaker. One lookup never takes longer than FX_TIMEOUT_SECONDS in all.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pybreaker
import redis
import requests
import urllib3

from domain.fx import MAX_RATE_AGE_DAYS, Rate, quantize_rate
from domain.money import is_known_currency
from services.fx_breaker import ThreadBreakers

log = logging.getLogger(__name__)

#: Where rates from the provider come from, as transactions and the API name it.
SOURCE = "live"
#: Attempts per lookup (the first and one retry).
ATTEMPTS = 2
#: Backoff before a retry: doubles from the first value, never above the cap.
BACKOFF_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 0.5
#: The largest body we read from the provider.
MAX_BODY_BYTES = 64 * 1024
#: How long fetched rates (and "the provider has none") stay in the Redis cache.
CACHE_SECONDS = 24 * 3600
RECENT_CACHE_SECONDS = 3600
NONE_CACHE_SECONDS = 600
CACHE_PREFIX = "fx:live:"
#: Statuses that mean the provider is in trouble, not that the rate does not exist.
_FAILING_STATUSES = frozenset({408, 429})


class ProviderError(Exception):
    """The provider did not answer usefully (timeout, connection, 5xx, a body we cannot trust)."""


@dataclass(frozen=True)
class Quote:
    """What the provider said: one `base` buys `rate` `quote` as published on `on`."""

    base: str
    quote: str
    rate: Decimal
    on: dt.date


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1-based), capped."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1))


def parse_answer(body: bytes, base: str, quote: str, asked: dt.date) -> Quote:
    """A Frankfurter answer as a Quote; ProviderError when it is not one we can trust."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_int=Decimal, parse_constant=_refuse)
        if data["base"] != base:
            raise ProviderError(f"asked for {base}, the provider answered {data['base']!r}")
        on = dt.date.fromisoformat(data["date"])
        amount = data.get("amount", Decimal(1))
        raw = data["rates"][quote]
        if not isinstance(raw, Decimal) or not isinstance(amount, Decimal) or amount <= 0:
            raise ProviderError("rates and amount must be numbers")
        rate = quantize_rate(raw / amount if amount != 1 else raw)
    except ProviderError:
        raise
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise ProviderError(f"malformed provider answer: {type(exc).__name__}: {exc}") from None
    if on > asked:
        raise ProviderError(f"asked for {asked}, the provider answered a later date {on}")
    return Quote(base, quote, rate, on)


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not a rate")


class FrankfurterClient:
    """Talks to one provider URL; each thread has its own HTTP session."""

    def __init__(self, url: str, timeout_seconds: float, attempts: int = ATTEMPTS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/")
        self.timeout = float(timeout_seconds)  # float ok: seconds, not money
        self.attempts = attempts
        self._sleep = sleep
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def fetch(self, base: str, quote: str, on: dt.date) -> Quote | None:
        """The rate base -> quote published on `on` or the latest day before; None when the provider has none.

        Raises ProviderError after the last failed attempt; all attempts together stay within the timeout.
        """
        deadline = time.monotonic() + self.timeout
        for attempt in range(1, self.attempts + 1):
            try:
                return self._attempt(base, quote, on, deadline)
            except ProviderError as exc:
                pause = backoff(attempt)
                if attempt == self.attempts or time.monotonic() + pause >= deadline:
                    raise
                log.info("fx provider attempt %d failed (%s); retrying", attempt, exc)
                self._sleep(pause)
        raise AssertionError("unreachable")

    def _attempt(self, base: str, quote: str, on: dt.date, deadline: float) -> Quote | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderError("no time left for the provider")
        try:
            with self._session().get(f"{self.url}/{on.isoformat()}", params={"from": base, "to": quote},
                                     timeout=(remaining, remaining), stream=True,
                                     headers={"Accept": "application/json"}) as response:
                if response.status_code >= 500 or response.status_code in _FAILING_STATUSES:
                    raise ProviderError(f"provider answered {response.status_code}")
                if response.status_code != 200:
                    return None
                body = _read(response, deadline)
        except requests.RequestException as exc:
            raise ProviderError(f"{type(exc).__name__}: {exc}") from None
        return parse_answer(body, base, quote, on)


def _read(response: requests.Response, deadline: float) -> bytes:
    """The body as it arrives, refusing one that is too large or not complete by the deadline (a trickling
    server): before each read the socket's timeout shrinks to the time left."""
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderError("provider answer too slow")
        _shrink_timeout(response, remaining)
        try:
            chunk = response.raw.read1(4096, decode_content=True)
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise ProviderError(f"reading the provider's answer failed: {type(exc).__name__}") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProviderError("provider answer too large")
        chunks.append(chunk)


def _shrink_timeout(response: requests.Response, seconds: float) -> None:
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


class LiveRates:
    """Rates from the live provider: the Redis cache first, then one guarded call; None whenever it cannot say."""

    def __init__(self, client: FrankfurterClient, breakers: ThreadBreakers, cache: Callable[[], redis.Redis],
                 on_fetched: Callable[[Rate], None] | None = None,
                 today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date()) -> None:
        self.client = client
        self.breakers = breakers
        self._cache = cache
        self._on_fetched = on_fetched
        self._today = today

    def rate(self, base: str, quote: str, on: dt.date) -> Rate | None:
        """The provider's rate for `on` (or a few days before, marked stale); None if it has none or is down."""
        if not (is_known_currency(base) and is_known_currency(quote)) or base == quote:
            return None
        cached = self._cached(base, quote, on)
        if cached is not None:
            return _usable(cached[0], on) if cached[0] else None
        try:
            found = self.breakers.call(self.client.fetch, base, quote, on)
        except pybreaker.CircuitBreakerError:
            return None
        except ProviderError as exc:
            log.warning("fx provider failed for %s->%s %s: %s", base, quote, on, exc)
            return None
        fetched = Rate(base, quote, found.rate, found.on, SOURCE, on) if found else None
        if fetched is not None and self._on_fetched is not None:
            self._on_fetched(fetched)  # stored in SQL before it is cached: a cache hit is always stored
        self._remember(base, quote, on, fetched)
        return _usable(fetched, on) if fetched else None

    def probe(self) -> bool:
        """One trial call (a rate of yesterday) through the breaker; True when the provider answered."""
        yesterday = self._today() - dt.timedelta(days=1)
        try:
            self.breakers.call(self.client.fetch, "EUR", "USD", yesterday)
        except (pybreaker.CircuitBreakerError, ProviderError):
            return False
        return True

    def _key(self, base: str, quote: str, on: dt.date) -> str:
        return f"{CACHE_PREFIX}{base}:{quote}:{on.isoformat()}"

    def _cached(self, base: str, quote: str, on: dt.date) -> tuple[Rate | None] | None:
        """(rate,) or (None,) when cached (None meaning "the provider has none"); None when not cached."""
        try:
            raw = self._cache().get(self._key(base, quote, on))
        except redis.RedisError:
            return None
        if raw is None:
            return None
        data = json.loads(raw, parse_float=Decimal)
        if data.get("none"):
            return (None,)
        return (Rate(base, quote, Decimal(data["rate"]), dt.date.fromisoformat(data["on"]), SOURCE, on),)

    def _remember(self, base: str, quote: str, on: dt.date, rate: Rate | None) -> None:
        recent = (self._today() - on).days <= MAX_RATE_AGE_DAYS
        if rate is None:
            value: dict[str, Any] = {"none": True}
            ttl = NONE_CACHE_SECONDS
        else:
            value = {"rate": f"{rate.value:f}", "on": rate.on.isoformat()}
            ttl = RECENT_CACHE_SECONDS if recent else CACHE_SECONDS
        try:
            self._cache().set(self._key(base, quote, on), json.dumps(value), ex=ttl)
        except redis.RedisError:
            log.info("fx rate not cached: Redis unreachable")


def _usable(rate: Rate, on: dt.date) -> Rate | None:
    """The rate if it was published within MAX_RATE_AGE_DAYS before `on` (as asked for `on`), else None."""
    age = (on - rate.on).days
    if age < 0 or age > MAX_RATE_AGE_DAYS:
        return None
    return Rate(rate.base, rate.quote, rate.value, rate.on, rate.source, on)

"""The live FX provider against a local fake that speaks its protocol, the run's real Redis (breaker state, cache) and
PostgreSQL (kept rates): timeouts, retries, the breaker shared by threads and processes, resolution order."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pybreaker
import pytest
import redis
from sqlalchemy import select

from config import wiring
from models.fx import FxRate
from models.identity import Household
from services.fx_breaker import BreakerConfig, ThreadBreakers, reset
from services.fx_provider import FrankfurterClient, LiveRates
from services.fx_rates import RateBook, default_rates, set_manual_rate, store_fetched
from tests.support.fake_fx import FakeFx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Dates no other test asks the live provider about (kept rates are global); each test keeps its own range.
DAY = dt.date(2022, 1, 5)
RATES = {("ARS", "EUR"): "0.0010512345", ("USD", "EUR"): "0.9300000000", ("EUR", "USD"): "1.08",
         ("GBP", "EUR"): "1.1700"}


@pytest.fixture
def client() -> redis.Redis:
    """The run's Redis, bytes in and out (as pybreaker needs)."""
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@pytest.fixture
def fake() -> Iterator[FakeFx]:
    """A fake provider answering from RATES."""
    server = FakeFx(RATES).start()
    yield server
    server.stop()


@pytest.fixture
def namespace(client: redis.Redis) -> Iterator[str]:
    """A breaker namespace of this test's own."""
    name = f"fx-test-{uuid.uuid4().hex[:8]}"
    yield name
    reset(client, name)


def _live(fake: FakeFx, client: redis.Redis, namespace: str, *, fail_max: int = 3, timeout: int = 1,
          transitions: list | None = None, reset_seconds: int = 1) -> LiveRates:
    record = (lambda old, new, state: transitions.append((old, new))) if transitions is not None else None
    breakers = ThreadBreakers(lambda: client, BreakerConfig(fail_max, reset_seconds, namespace), record)
    cache = _Prefixed(client, namespace)
    return LiveRates(FrankfurterClient(fake.url, timeout), breakers, lambda: cache,
                     on_fetched=lambda rate: store_fetched(wiring.session_factory(), rate))


class _Prefixed:
    """The cache under a test's own prefix, so tests never read each other's cached rates."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client, self._prefix = client, prefix

    def get(self, key: str) -> bytes | None:
        return self._client.get(f"{self._prefix}:{key}")

    def set(self, key: str, value: str, ex: int) -> None:
        self._client.set(f"{self._prefix}:{key}", value, ex=ex)


def _day(offset: int) -> dt.date:
    return DAY + dt.timedelta(days=offset)


# --- the protocol, the cache and the kept rates --------------------------------------------------------------------


def test_a_fetched_rate_is_exact_cached_in_redis_and_kept_in_sql(fake, client, namespace):
    live = _live(fake, client, namespace)
    rate = live.rate("ARS", "EUR", _day(0))
    assert (rate.value, rate.on, rate.source, rate.stale) == (Decimal("0.0010512345"), _day(0), "live", False)
    assert live.rate("ARS", "EUR", _day(0)) == rate
    assert fake.count("ARS", "EUR") == 1, "the second lookup is answered by the Redis cache"
    with wiring.session_factory()() as session:
        kept = session.scalar(select(FxRate).where(FxRate.household_id.is_(None), FxRate.base == "ARS",
                                                   FxRate.quote == "EUR", FxRate.rate_date == _day(0)))
    assert (kept.rate, kept.source) == (Decimal("0.0010512345"), "live")


def test_a_pair_the_provider_does_not_know_is_an_answer_not_a_failure(fake, client, namespace):
    live = _live(fake, client, namespace, fail_max=1)
    assert live.rate("BHD", "EUR", _day(1)) is None
    assert live.rate("BHD", "EUR", _day(1)) is None
    assert fake.count("BHD", "EUR") == 1, "the provider's 'none' is cached too"
    assert live.breakers.state().state == "closed"


def test_an_earlier_publication_is_used_as_stale_within_a_few_days_only(client, namespace):
    server = FakeFx(RATES, published=_day(200)).start()
    try:
        live = _live(server, client, namespace)
        rate = live.rate("USD", "EUR", _day(203))
        assert (rate.on, rate.requested_on, rate.stale) == (_day(200), _day(203), True)
        assert live.rate("USD", "EUR", _day(230)) is None
    finally:
        server.stop()


# --- timeouts and retries --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hang", "trickle"])
def test_a_hanging_or_trickling_provider_never_blocks_past_the_timeout(fake, client, namespace, mode):
    fake.set_mode(mode)
    book = RateBook(wiring.session_factory(), default_rates(), _live(fake, client, namespace, timeout=1))
    started = time.monotonic()
    rate = book.rate("USD", "EUR", _day(300 if mode == "hang" else 310))
    elapsed = time.monotonic() - started
    # The fake never answers (or trickles forever): without the deadline this would not return at all. The margin
    # allows for a machine busy with other work; it is not a speed target.
    assert elapsed < 4, f"{mode}: the lookup took {elapsed:.2f}s with a 1 s timeout"
    assert rate.source == "ECB", "the ECB reference rate answers instead"
    assert fake.count("USD", "EUR") == 1, "no retry is started once the time is up"


def test_a_failing_provider_is_retried_once_then_counted_as_one_failure(fake, client, namespace):
    fake.set_mode("fail")
    live = _live(fake, client, namespace)
    assert live.rate("USD", "EUR", _day(400)) is None
    assert fake.count("USD", "EUR") == 2
    assert live.breakers.state().failures == 1


# --- the breaker -----------------------------------------------------------------------------------------------------


def test_the_breaker_opens_after_fail_max_failures_and_then_stops_calling(fake, client, namespace):
    fake.set_mode("fail")
    transitions: list = []
    live = _live(fake, client, namespace, fail_max=3, transitions=transitions)
    for offset in range(3):
        assert live.rate("USD", "EUR", _day(500 + offset)) is None
    assert live.breakers.state().state == "open"
    calls = fake.count()
    fake.set_mode("ok")
    assert live.rate("USD", "EUR", _day(510)) is None, "an open breaker answers at once, without the provider"
    assert fake.count() == calls
    assert transitions == [("closed", "open")]


def test_the_breaker_half_opens_after_the_reset_time_and_a_success_closes_it(fake, client, namespace):
    fake.set_mode("fail")
    transitions: list = []
    live = _live(fake, client, namespace, fail_max=1, transitions=transitions)
    assert live.rate("USD", "EUR", _day(600)) is None
    assert live.breakers.state().state == "open"
    fake.set_mode("ok")
    time.sleep(1.1)
    assert live.probe()
    assert live.breakers.state().state == "closed"
    assert transitions == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]
    assert live.rate("USD", "EUR", _day(601)).source == "live"


def test_each_thread_has_its_own_breaker_and_all_share_one_state(fake, client, namespace):
    fake.set_mode("fail")
    transitions: list = []
    live = _live(fake, client, namespace, fail_max=2, transitions=transitions)
    seen: dict[str, pybreaker.CircuitBreaker] = {}

    def lookup(name: str, offset: int) -> None:
        live.rate("USD", "EUR", _day(offset))
        seen[name] = live.breakers.breaker()

    for name, offset in (("first", 700), ("second", 701)):  # one failure in each thread: together they trip it
        thread = threading.Thread(target=lookup, args=(name, offset))
        thread.start()
        thread.join()
    assert seen["first"] is not seen["second"]
    assert live.breakers.state().state == "open"
    calls = fake.count()
    assert live.rate("USD", "EUR", _day(702)) is None
    assert fake.count() == calls, "this thread's breaker is open too"
    assert transitions == [("closed", "open")], "announced once, by the breaker that tripped it"


_TRIP = textwrap.dedent("""
    import datetime as dt, sys
    import redis
    from services.fx_breaker import BreakerConfig, ThreadBreakers
    from services.fx_provider import FrankfurterClient, LiveRates
    url, namespace, redis_url = sys.argv[1:4]
    client = redis.Redis.from_url(redis_url)
    breakers = ThreadBreakers(lambda: client, BreakerConfig(2, 60, namespace))
    live = LiveRates(FrankfurterClient(url, 1), breakers, lambda: client)
    for day in (1, 2):
        assert live.rate("USD", "EUR", dt.date(2024, 3, day)) is None
    print(breakers.state().state)
""")


def test_a_breaker_tripped_in_one_process_is_open_in_another(fake, client, namespace):
    fake.set_mode("fail")
    done = subprocess.run([sys.executable, "-c", _TRIP, fake.url, namespace, os.environ["REDIS_URL"]],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "open"
    healthy = FakeFx(RATES).start()
    try:
        # A reset time far longer than this test: with 1 s, a slow machine would legitimately half-open it.
        live = _live(healthy, client, namespace, reset_seconds=60)
        assert live.breakers.state().state == "open"
        assert live.rate("USD", "EUR", _day(800)) is None
        assert healthy.count() == 0, "this process never called the provider: the shared breaker is open"
    finally:
        healthy.stop()


# --- the order of the sources ---------------------------------------------------------------------------------------


def _household() -> uuid.UUID:
    with wiring.session_factory()() as session, session.begin():
        household = Household(id=uuid.uuid4(), name="FX test", base_currency="EUR")
        session.add(household)
    return household.id


def test_rates_resolve_manual_then_live_then_stored_then_ecb(fake, client, namespace):
    household = _household()
    day = _day(900)
    live = _live(fake, client, namespace, fail_max=1)
    book = RateBook(wiring.session_factory(), default_rates(), live)
    assert book.rate("GBP", "EUR", day).source == "live", "the provider before the ECB"
    with wiring.session_factory()() as session, session.begin():
        set_manual_rate(household, None, "GBP", "EUR", day, Decimal("1.2500"), session)
    manual = book.rate("GBP", "EUR", day, household)
    assert (manual.value, manual.source) == (Decimal("1.25"), "manual"), "the household's own rate first"
    inverse = book.rate("EUR", "GBP", day, household)
    assert (str(inverse.value), inverse.source) == ("0.8000000000", "manual"), "a manual rate works both ways"
    assert book.rate("GBP", "EUR", day).source == "live", "another household's rate is not ours"
    fake.set_mode("fail")
    stored = book.rate("GBP", "EUR", day + dt.timedelta(days=2))  # the provider fails: the rate kept two days ago
    assert (stored.source, stored.on, stored.stale, stored.value) == ("live", day, True, Decimal("1.17"))
    ecb = book.rate("USD", "JPY", dt.date(2020, 1, 2))  # open breaker, nothing stored: the ECB reference rate
    assert (ecb.source, str(ecb.value)) == ("ECB", "108.7733404807")
    assert book.rate("ARS", "JPY", day) is None, "no source has it: none, never a made-up one"

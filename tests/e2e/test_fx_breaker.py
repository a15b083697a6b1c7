"""The live FX provider behind its breaker, end to end: a local fake provider fails, hangs and recovers while an fx
pool pointed at it converts transactions; /readyz, /metrics, budgets and the audit trail show what happened.

The session's own fx pool consumes fx.events too, so this module stops it, runs one pointed at the fake provider
(small fail_max and reset time), and restores the default one at the end.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
import requests
from sqlalchemy import select

from config import wiring
from models.audit import AuditRecord
from services.fx import SWEEP_LEASE
from services.fx_breaker import reset
from services.fx_rates import default_rates
from tests.support.client import ApiClient, register
from tests.support.fake_fx import FakeFx
from tests.support.isolation import TEST_ENV
from tests.support.stack import Stack, free_port, wait_for

pytestmark = pytest.mark.e2e

#: What the fake provider knows, for June and July 2025 only (ARS is a currency the ECB file never quoted). The
#: sweeps this module causes visit every household's waiting transactions: other dates get "no such rate".
RATES = {("GBP", "EUR"): "1.1700", ("ARS", "EUR"): "0.0010125", ("EUR", "USD"): "1.1000", ("USD", "EUR"): "0.9"}
FAIL_MAX = 3
RESET_SECONDS = 2
TIMEOUT_SECONDS = 1
LIVE_POOL = "fx-live"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeFx]:
    """The fake provider."""
    server = FakeFx(RATES, window=(dt.date(2025, 6, 1), dt.date(2025, 7, 31))).start()
    yield server
    server.stop()


def _redis() -> redis.Redis:
    return redis.Redis.from_url(TEST_ENV["REDIS_URL"])


def _consuming(stack: Stack, name: str, before: int) -> bool:
    return stack.log(name).count("consuming") > before


def _swap_fx_pool(stack: Stack, name: str, env: dict[str, str] | None, stop: str) -> None:
    """Stop one fx process and start another, returning once it consumes."""
    stack.signal(stop, signal.SIGTERM)
    stack.wait_exit(stop)
    before = stack.log(name).count("consuming")
    stack.start_pool("fx", None if name == "fx" else name, env=env)
    wait_for(lambda: _consuming(stack, name, before), timeout=30, what=f"{name} consuming")


@pytest.fixture(scope="module")
def live_pool(stack: Stack, fake: FakeFx) -> Iterator[str]:
    """The fx pool pointed at the fake provider, in place of the session's default one."""
    reset(_redis())
    _redis().set(SWEEP_LEASE, b"1", ex=300)  # no periodic sweep in the middle: only the breaker's own
    env = {"FX_PROVIDER_URL": fake.url, "FX_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
           "FX_BREAKER_FAIL_MAX": str(FAIL_MAX), "FX_BREAKER_RESET_SECONDS": str(RESET_SECONDS),
           "FX_SWEEP_SECONDS": "3600"}
    _swap_fx_pool(stack, LIVE_POOL, env, stop="fx")
    yield LIVE_POOL
    _swap_fx_pool(stack, "fx", None, stop=LIVE_POOL)
    reset(_redis())
    _redis().delete(SWEEP_LEASE)


@pytest.fixture(scope="module")
def live_web(stack: Stack, fake: FakeFx) -> Iterator[str]:
    """Another web process, configured with the fake provider: its threads have breakers of their own."""
    url = stack.start_web("web-fx", free_port(), {"FX_PROVIDER_URL": fake.url,
                                                  "FX_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)})
    yield url
    stack.signal("web-fx", signal.SIGTERM)
    stack.wait_exit("web-fx")


@pytest.fixture
def closed_breaker(live_pool: str, fake: FakeFx) -> Iterator[None]:
    """A closed breaker and a healthy provider, before and after the test."""
    fake.set_mode("ok")
    reset(_redis())
    yield
    fake.set_mode("ok")
    reset(_redis())


def _fx_ready(stack: Stack) -> dict:
    return requests.get(f"{stack.url}/readyz", timeout=10).json()["fx"]


def _gauge(stack: Stack, state: str) -> float:
    text = requests.get(f"{stack.url}/metrics", timeout=10).text
    found = re.search(re.escape(f'finance_fx_breaker_state{{breaker="fx-provider",state="{state}"}}') + r" (\S+)",
                      text)
    return float(found.group(1)) if found else -1.0


def _post(user: ApiClient, account: dict, amount: str, currency: str, on: str) -> str:
    r = user.post_transaction(account["id"], amount, "REWE", currency=currency, occurred_on=on)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _settled(user: ApiClient, transaction_id: str, fx_status: str) -> dict | None:
    body = user.get(f"/api/v1/transactions/{transaction_id}").json()
    return body if body["status"] == "recorded" and body["fx_status"] == fx_status else None


def _converted(user: ApiClient, transaction_id: str, timeout: float = 10) -> dict:
    return wait_for(lambda: _settled(user, transaction_id, "converted"), timeout=timeout,
                    what=f"transaction {transaction_id} converted")["converted"]


def _ecb(currency: str, on: str) -> tuple[str, str]:
    rate = default_rates().rate(currency, "EUR", dt.date.fromisoformat(on))
    return f"{rate.value:f}", rate.on.isoformat()


def _audited(types: set[str]) -> set[str]:
    with wiring.session_factory()() as session:
        return set(session.scalars(select(AuditRecord.type).where(AuditRecord.type.in_(types),
                                                                  AuditRecord.household_id.is_(None))))


def test_the_breaker_opens_transactions_keep_flowing_and_flagged_ones_convert_once_it_closes(
        stack: Stack, fake: FakeFx, live_web: str, closed_breaker: None) -> None:
    """Provider fails -> after FAIL_MAX failures the breaker opens (readyz, metrics) -> transactions keep converting on
    ECB or kept rates, ARS (no ECB rate) is flagged and budgets show it pending -> the provider recovers ->
    half-open -> closed -> the ARS purchase is converted and the budget counts it."""
    user, _ = register(stack.url)
    account = user.open_account("EUR")
    budget = user.create_budget("Groceries", "200.00")
    assert _fx_ready(stack)["breaker"] == "closed"

    # While the provider works, its rate is used (and kept).
    gbp = _converted(user, _post(user, account, "10.00", "GBP", "2025-06-09"))
    assert gbp == {"amount": "11.70", "currency": "EUR", "rate": "1.1700000000", "rate_date": "2025-06-09",
                   "source": "live"}

    # The provider fails: each purchase still converts at the ECB rate of its day; FAIL_MAX failures open it.
    fake.set_mode("fail")
    usd_days = ["2025-06-10", "2025-06-11", "2025-06-12"]
    for day in usd_days:
        converted = _converted(user, _post(user, account, "20.00", "USD", day))
        assert (converted["source"], (converted["rate"], converted["rate_date"])) == ("ECB", _ecb("USD", day))
    state = wait_for(lambda: (fx := _fx_ready(stack))["breaker"] == "open" and fx, timeout=10, what="breaker open")
    assert state["breaker_detail"]["failures"] >= FAIL_MAX
    assert _gauge(stack, "open") == 1.0 and _gauge(stack, "closed") == 0.0
    calls = fake.count()

    # Open: no call reaches the provider; a kept rate (stale) or the ECB answers; ARS has neither and is flagged.
    gbp_open = _converted(user, _post(user, account, "10.00", "GBP", "2025-06-11"))
    assert (gbp_open["source"], gbp_open["rate_date"], gbp_open["amount"]) == ("live", "2025-06-09", "11.70")
    ars = _post(user, account, "5000.00", "ARS", "2025-06-12")
    flagged = wait_for(lambda: _settled(user, ars, "missing"), timeout=10, what="ARS flagged missing")
    assert flagged["converted"] is None
    # Tripped by the fx worker process, the breaker is open in the other web process too: it answers from the
    # kept rate without calling the provider.
    other_web = ApiClient(live_web, user.http.headers["Authorization"].removeprefix("Bearer "))
    kept = other_web.get("/api/v1/fx/rates", params={"base": "GBP", "quote": "EUR", "date": "2025-06-13"}).json()
    assert (kept["source"], kept["date"], kept["stale"]) == ("live", "2025-06-09", True)
    assert fake.count() == calls, "an open breaker lets no call through, in any process"
    usd_total = sum(Decimal(_converted(user, t)["amount"]) for t in _ids(user, "USD"))
    counted = Decimal("11.70") * 2 + usd_total
    status = wait_for(lambda: (s := user.budget_status(budget["id"], "2025-06"))["pending_conversion"] == 1
                      and Decimal(s["spent"]) == counted and s, timeout=10, what="the budget counts all but ARS")
    assert status["spent"] == str(counted)

    # The provider recovers: after the reset time a trial call half-opens the breaker, succeeds and closes it.
    fake.set_mode("ok")
    wait_for(lambda: _fx_ready(stack)["breaker"] == "closed", timeout=RESET_SECONDS + 10, what="breaker closed")
    assert _gauge(stack, "closed") == 1.0
    log = stack.log(LIVE_POOL)
    assert log.index("closed -> open") < log.index("open -> half-open") < log.index("half-open -> closed")

    # Closing converts what waited: the ARS purchase at the provider's rate; the budget follows.
    converted = _converted(user, ars)
    assert converted == {"amount": "5.06", "currency": "EUR", "rate": "0.0010125000", "rate_date": "2025-06-12",
                         "source": "live"}  # 5000 x 0.0010125 = 5.0625 -> 5.06 (half-even)
    final = wait_for(lambda: (s := user.budget_status(budget["id"], "2025-06"))["pending_conversion"] == 0
                     and s, timeout=10, what="nothing pending")
    assert Decimal(final["spent"]) == counted + Decimal("5.06")
    # Both transitions were published and audited, once each.
    wait_for(lambda: _audited({"CircuitOpened", "CircuitClosed"}) == {"CircuitOpened", "CircuitClosed"},
             timeout=10, what="CircuitOpened and CircuitClosed audited")


def _ids(user: ApiClient, currency: str) -> list[str]:
    items = user.get("/api/v1/transactions", params={"limit": 100}).json()["items"]
    return [t["id"] for t in items if t["currency"] == currency]


def test_a_hanging_provider_never_blocks_a_worker_past_its_timeout(
        stack: Stack, fake: FakeFx, closed_breaker: None) -> None:
    """The provider accepts requests and never answers: each conversion gives up after FX_TIMEOUT_SECONDS and
    converts at the ECB rate; a burst larger than the pool's threads is done within a few timeouts."""
    fake.set_mode("hang")
    user, _ = register(stack.url)
    account = user.open_account("EUR")
    started = time.monotonic()
    first = _post(user, account, "20.00", "USD", "2025-07-14")
    converted = _converted(user, first, timeout=TIMEOUT_SECONDS + 5)
    assert converted["source"] == "ECB"
    assert time.monotonic() - started < TIMEOUT_SECONDS + 3
    burst = [_post(user, account, "1.00", "USD", f"2025-07-{day:02d}") for day in range(15, 23)]
    for transaction_id in burst:  # 8 purchases, 4 threads: at most FAIL_MAX of them wait, then the breaker is open
        assert _converted(user, transaction_id, timeout=10)["source"] == "ECB"
    assert time.monotonic() - started < 4 * TIMEOUT_SECONDS + 6
    assert fake.count() >= 1

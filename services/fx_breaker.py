"""The circuit breaker in front of the FX provider: one pybreaker breaker per thread, their state shared in Redis.

pybreaker holds a breaker's lock for the whole guarded call, so threads sharing one breaker would queue behind a
slow provider. Every thread therefore gets its own `CircuitBreaker`; all of them (in every process) keep their
state, failure count and opening time in Redis through `CircuitRedisStorage` under one namespace, so a breaker
tripped by one worker is open for all. pybreaker tells each instance's listeners when *that instance* notices a
change, so many would report the same transition: an atomic SET ... GET on an "announced" key lets exactly one
of them announce it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pybreaker
import redis

log = logging.getLogger(__name__)

#: The Redis namespace of the FX provider's breaker.
NAMESPACE = "fx-provider"
#: Breaker states as pybreaker names them.
STATES = (pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN)
T = TypeVar("T")


@dataclass(frozen=True)
class BreakerConfig:
    """How many failures open the breaker, how long it stays open, and where its state lives."""

    fail_max: int = 5
    reset_seconds: int = 30
    namespace: str = NAMESPACE


@dataclass(frozen=True)
class BreakerState:
    """The shared state as Redis holds it."""

    state: str
    failures: int
    opened_at: dt.datetime | None
    reset_seconds: int

    @property
    def retry_at(self) -> dt.datetime | None:
        """When an open breaker lets a trial call through (None unless open)."""
        if self.state != pybreaker.STATE_OPEN or self.opened_at is None:
            return None
        return self.opened_at + dt.timedelta(seconds=self.reset_seconds)

    def trial_due(self, now: dt.datetime) -> bool:
        """Whether a trial call may be made now (open and the reset time passed, or half-open)."""
        if self.state == pybreaker.STATE_HALF_OPEN:
            return True
        retry_at = self.retry_at
        return retry_at is not None and now >= retry_at

    def to_json(self) -> dict[str, Any]:
        """JSON form for /readyz: what every process shares (fail_max and the reset time are each process's own)."""
        return {"state": self.state, "failures": self.failures,
                "opened_at": self.opened_at.isoformat() if self.opened_at else None}


#: Called once per real transition, wherever it was noticed first: (from, to, state now).
Transition = Callable[[str, str, BreakerState], None]


def storage(client: redis.Redis, namespace: str = NAMESPACE) -> pybreaker.CircuitRedisStorage:
    """pybreaker's Redis storage for one breaker namespace (the client must return bytes)."""
    return pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=namespace)


def read_state(client: redis.Redis, config: BreakerConfig) -> BreakerState:
    """The shared breaker state, read from Redis."""
    store = storage(client, config.namespace)
    return BreakerState(store.state, store.counter, store.opened_at, config.reset_seconds)


def reset(client: redis.Redis, namespace: str = NAMESPACE) -> None:
    """Forget the shared state (tests and operators): closed, no failures."""
    client.delete(*[f"{namespace}:pybreaker:{name}" for name in ("state", "fail_counter", "success_counter",
                                                                  "opened_at")], _announced_key(namespace))


def _announced_key(namespace: str) -> str:
    return f"{namespace}:announced"


class _Announcer(pybreaker.CircuitBreakerListener):
    """Reports each real transition once, across every breaker instance sharing the namespace."""

    def __init__(self, owner: ThreadBreakers) -> None:
        self._owner = owner

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        """Claim the transition in Redis; the instance that wins announces it."""
        old = old_state.name if old_state is not None else pybreaker.STATE_CLOSED
        new = new_state.name
        try:
            previous = self._owner.client().set(_announced_key(self._owner.config.namespace), new, get=True)
        except redis.RedisError:
            log.warning("fx breaker %s -> %s not announced: Redis unreachable", old, new)
            return
        previous_state = previous.decode() if previous else None
        if previous_state == new or (previous_state is None and new == pybreaker.STATE_CLOSED):
            return
        log.warning("fx provider breaker %s: %s -> %s", self._owner.config.namespace, previous_state or old, new)
        self._owner.announce(previous_state or old, new)


class ThreadBreakers:
    """One pybreaker breaker per thread, all sharing their state in Redis under one namespace."""

    def __init__(self, client: Callable[[], redis.Redis], config: BreakerConfig,
                 on_transition: Transition | None = None,
                 exclude: tuple[type[BaseException], ...] = ()) -> None:
        self.client = client
        self.config = config
        self._on_transition = on_transition
        self._exclude = exclude
        self._local = threading.local()

    def breaker(self) -> pybreaker.CircuitBreaker:
        """This thread's breaker (made on first use)."""
        breaker = getattr(self._local, "breaker", None)
        if breaker is None:
            breaker = pybreaker.CircuitBreaker(
                fail_max=self.config.fail_max, reset_timeout=self.config.reset_seconds,
                exclude=list(self._exclude), listeners=[_Announcer(self)],
                state_storage=storage(self.client(), self.config.namespace), name=self.config.namespace)
            self._local.breaker = breaker
        return breaker

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Call `fn` through this thread's breaker; pybreaker.CircuitBreakerError when it is open."""
        return self.breaker().call(fn, *args)

    def state(self) -> BreakerState:
        """The shared state."""
        return read_state(self.client(), self.config)

    def announce(self, old: str, new: str) -> None:
        """Hand a real transition to the callback; a failing callback is logged, never raised into the call."""
        if self._on_transition is None:
            return
        try:
            self._on_transition(old, new, self.state())
        except Exception:  # noqa: BLE001 - the guarded call must not fail because an announcement did
            log.warning("fx breaker transition %s -> %s not announced", old, new, exc_info=True)

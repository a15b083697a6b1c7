"""The faults a chaos run injects, each logged: pools SIGKILLed, RabbitMQ and Redis restarted, providers failing.

Two ways to restart the shared services. `proxy`: the stack under test reaches RabbitMQ and Redis through its
own TCP proxies; a restart drops every connection and refuses new ones for a while (and for Redis, empties the
run's own database, as a real restart of a Redis that keeps nothing on disk does): nobody else is harmed.
`real`: the machine's rabbitmq-server and redis-server are really restarted (every client on the machine sees it).
"""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from tests.support import rabbit_admin
from tests.support.fake_fx import FakeFx
from tests.support.fake_sendgrid import FakeHttpService
from tests.support.stack import Stack, wait_for
from tests.support.tcp_proxy import TcpProxy

logger = logging.getLogger("bench.chaos")

MODES = ("proxy", "real")
#: Seconds a restarted service stays away in proxy mode (a real restart takes what it takes).
DOWN_SECONDS = 4.0
#: The machine's own commands (from its documentation) for the `real` mode.
RABBIT_STOP = ["rabbitmqctl", "stop"]
RABBIT_START = ["rabbitmq-server", "-detached"]
REDIS_STOP = ["redis-cli", "-p", "6379", "shutdown", "nosave"]
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
               "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]


@dataclass
class Fault:
    """One fault injected: when (seconds into the run), what, on which target, for how long."""

    at_s: float
    kind: str
    target: str
    seconds: float = 0.0
    detail: str = ""


@dataclass
class FaultLog:
    """Every fault of a run, thread-safe."""

    faults: list[Fault] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, target: str, seconds: float = 0.0, detail: str = "", at: float | None = None) -> None:
        """Record one fault."""
        at_s = round((at if at is not None else time.monotonic()) - self.started, 1)
        with self._lock:
            self.faults.append(Fault(at_s, kind, target, round(seconds, 1), detail))

    def as_json(self) -> list[dict[str, Any]]:
        """The faults, oldest first."""
        with self._lock:
            return [asdict(f) for f in sorted(self.faults, key=lambda f: f.at_s)]

    def counts(self) -> dict[str, int]:
        """How many of each kind."""
        counted: dict[str, int] = {}
        for f in self.faults:
            counted[f.kind] = counted.get(f.kind, 0) + 1
        return counted


class Proxies:
    """The stack's own links to RabbitMQ and Redis (proxy mode), or none (real mode: direct)."""

    def __init__(self, mode: str, vhost: str, redis_db: int) -> None:
        assert mode in MODES, mode
        self.mode = mode
        self.vhost, self.redis_db = vhost, redis_db
        self.rabbit = TcpProxy("127.0.0.1", rabbit_admin.AMQP_PORT).start() if mode == "proxy" else None
        self.redis = TcpProxy("127.0.0.1", 6379).start() if mode == "proxy" else None

    def env(self) -> dict[str, str]:
        """Settings that point the stack's processes at the proxies."""
        if self.rabbit is None or self.redis is None:
            return {}
        return {"RABBITMQ_URL": rabbit_admin.amqp_url(self.vhost, self.rabbit.port),
                "REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/{self.redis_db}"}

    def stop(self) -> None:
        """Close the proxies."""
        for proxy in (self.rabbit, self.redis):
            if proxy is not None:
                proxy.stop()


def _run(command: list[str], timeout: float = 120, check: bool = True) -> None:
    subprocess.run(command, check=check, capture_output=True, timeout=timeout)


def _rabbit_answers() -> bool:
    try:
        rabbit_admin.list_exchanges("/")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis(port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def restart_rabbitmq(proxies: Proxies, log: FaultLog, down: float = DOWN_SECONDS) -> None:
    """Restart RabbitMQ: every connection drops, unacked messages go back to their queues."""
    start = time.monotonic()
    if proxies.rabbit is not None:
        proxies.rabbit.cut()
        time.sleep(down)
        proxies.rabbit.restore()
    else:
        _run(RABBIT_STOP)
        _run(RABBIT_START)
        wait_for(_rabbit_answers, timeout=180, every=1, what="RabbitMQ back")
    log.add("restart", "rabbitmq", time.monotonic() - start, proxies.mode, at=start)


def restart_redis(proxies: Proxies, log: FaultLog, down: float = DOWN_SECONDS) -> None:
    """Restart Redis, which keeps nothing on disk: connections drop and every key is gone."""
    start = time.monotonic()
    if proxies.redis is not None:
        proxies.redis.cut()
        redis.Redis(port=6379, db=proxies.redis_db).flushdb()  # this run's own database only
        time.sleep(down)
        proxies.redis.restore()
    else:
        _run(REDIS_STOP, check=False)  # redis-cli may report the connection the shutdown closed
        wait_for(lambda: not _redis_answers(), timeout=30, every=0.2, what="Redis stopped")
        _run(REDIS_START)
        wait_for(_redis_answers, timeout=60, every=0.5, what="Redis back")
    log.add("restart", "redis", time.monotonic() - start, f"{proxies.mode}, every key lost", at=start)


def partition_redis(proxies: Proxies, log: FaultLog, down: float = DOWN_SECONDS) -> None:
    """Redis unreachable for a while but keeping its data (a network partition): writes in between fail."""
    start = time.monotonic()
    if proxies.redis is not None:
        proxies.redis.cut()
        time.sleep(down)
        proxies.redis.restore()
    else:  # every client blocks past its 2 s socket timeout
        _run(["redis-cli", "-p", "6379", "client", "pause", str(int(down * 1000)), "ALL"])
        time.sleep(down)
    log.add("partition", "redis", time.monotonic() - start, f"{proxies.mode}, keys kept", at=start)


class PoolKeeper:
    """Kills pool processes on purpose and revives any that exited on their own (one at a time)."""

    def __init__(self, stack: Stack, log: FaultLog) -> None:
        self.stack, self.log = stack, log
        self._lock = threading.Lock()

    def pools(self) -> list[str]:
        """The names of the pool processes (web is never killed)."""
        return sorted(n for n in self.stack.procs if not n.startswith("web"))

    def kill_random(self, rng: random.Random) -> None:
        """SIGKILL one pool process chosen at random and start it again."""
        with self._lock:
            name = rng.choice(self.pools())
            start = time.monotonic()
            self.stack.signal(name, signal.SIGKILL)
            self.stack.wait_exit(name)
            self.stack.start_pool(name.split("-")[0], name)
            self.log.add("sigkill", name, time.monotonic() - start, "restarted", at=start)

    def revive(self) -> None:
        """Start again every pool process that exited without being killed (e.g. it could not boot)."""
        with self._lock:
            for name in self.pools():
                code = self.stack.procs[name].poll()
                if code is not None:
                    self.stack.start_pool(name.split("-")[0], name)
                    self.log.add("exited, restarted", name, 0, f"exit code {code}")


def fail_fx(fake: FakeFx, log: FaultLog, seconds: float) -> None:
    """The FX provider answers 500 for a while."""
    start = time.monotonic()
    fake.set_mode("fail")
    time.sleep(seconds)
    fake.set_mode("ok")
    log.add("provider down", "fx", time.monotonic() - start, "HTTP 500", at=start)


def fail_email(sendgrid: FakeHttpService, log: FaultLog, seconds: float) -> None:
    """The email provider refuses connections for a while."""
    start = time.monotonic()
    sendgrid.go_down()
    time.sleep(seconds)
    sendgrid.come_up()
    log.add("provider down", "email", time.monotonic() - start, "connection refused", at=start)


def every(seconds: float, until: float, stop: threading.Event, action: Callable[[], None]) -> threading.Thread:
    """Run `action` every `seconds` until the monotonic deadline `until` (or `stop`), in a thread."""
    def loop() -> None:
        while not stop.wait(seconds) and time.monotonic() < until:
            _guarded(action)

    thread = threading.Thread(target=loop, name="chaos-every", daemon=True)
    thread.start()
    return thread


def at(offset: float, stop: threading.Event, action: Callable[[], None]) -> threading.Thread:
    """Run `action` once, `offset` seconds from now (unless `stop` is set first), in a thread."""
    def once() -> None:
        if not stop.wait(offset):
            _guarded(action)

    thread = threading.Thread(target=once, name="chaos-at", daemon=True)
    thread.start()
    return thread


def _guarded(action: Callable[[], None]) -> None:
    """Run a fault; one that fails to inject is logged, never kills the run."""
    try:
        action()
    except Exception:  # noqa: BLE001 - reported in the run's log
        logger.exception("a fault could not be injected")

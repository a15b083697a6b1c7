"""Chaos run: sustained load while pools are SIGKILLed, RabbitMQ and Redis restarted and the FX provider fails;
then, once the system is quiet, every invariant of DESIGN.md is checked.

Prints the faults injected and the violations found, writes docs/bench/chaos.json, exits 1 on any violation.

Run: `make chaos` (real restarts of this machine's RabbitMQ and Redis), or
`python -m bench.chaos --mode proxy --seconds 60` (the stack's own links are cut instead: harms nobody else).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.support.isolation import REDIS_DB, RUN_ID  # isort: skip  (first: sets the isolated environment)
import redis  # isort: skip
from sqlalchemy import create_engine, text  # isort: skip

from bench import faults, invariants  # isort: skip
from bench.common import OUT, machine  # isort: skip
from bench.workload import Load, User, contribute, import_statement, setup_users, withdraw  # isort: skip
from tests.support import rabbit_admin  # isort: skip
from tests.support.cli import run_cli  # isort: skip
from tests.support.fake_fx import FakeFx  # isort: skip
from tests.support.fake_sendgrid import FakeSendGrid, provider_env  # isort: skip
from tests.support.fake_twilio import FakeTwilio  # isort: skip
from tests.support.stack import Stack  # isort: skip

#: Settings of the stack under chaos: production-like retries (a 4-second outage must not exhaust them).
SETTINGS = {"DRAMATIQ_MAX_RETRIES": "20", "DRAMATIQ_MIN_BACKOFF_MS": "250", "DRAMATIQ_MAX_BACKOFF_MS": "5000",
            "WORKER_THREADS": "4", "LOG_LEVEL": "WARNING", "FX_BREAKER_RESET_SECONDS": "5",
            "FX_TIMEOUT_SECONDS": "2", "BROKER_TIMEOUT_SECONDS": "3",
            # An email whose worker is SIGKILLed mid-attempt stays `sending` until its lease runs out, then is failed
            # as "outcome unknown" (never sent twice); with the 300-s default that comes after the verdict.
            "NOTIFY_SENDING_LEASE_SECONDS": "20", "NOTIFY_SWEEP_SECONDS": "5"}
#: What the fake FX provider knows (the ECB reference rates answer while it fails).
FX_RATES = {("USD", "EUR"): "0.9100"}


@dataclass(frozen=True)
class Plan:
    """How long and how hard."""

    mode: str = "proxy"
    seconds: float = 120.0
    users: int = 12
    rate: float = 25.0
    kill_every: float = 5.0
    seed: int = 1
    categorization: int = 2


@dataclass(frozen=True)
class Target:
    """The run's own database, vhost and Redis database, and the settings that reach them directly."""

    database: str
    vhost: str
    redis_db: int

    @property
    def env(self) -> dict[str, str]:
        """Direct settings (the operator CLI and the checks use them; the stack may go through proxies)."""
        return {**SETTINGS, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}",
                "RABBITMQ_URL": rabbit_admin.amqp_url(self.vhost),
                "REDIS_URL": f"redis://127.0.0.1:6379/{self.redis_db}"}


def target() -> Target:
    """Resources of this run only (its own names, so a test session's stack never shares them)."""
    return Target(f"finance_chaos_{RUN_ID}", f"finance-chaos-{RUN_ID}", REDIS_DB)


@contextmanager
def provisioned(where: Target) -> Iterator[None]:
    """Create the database (migrated) and vhost (topology declared); drop both afterwards."""
    rabbit_admin.create_vhost(where.vhost)
    release = run_cli("release", env=where.env, check=False)
    assert release.returncode == 0, release.stdout + release.stderr
    try:
        yield
    finally:
        rabbit_admin.delete_vhost(where.vhost)
        admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{where.database}" WITH (FORCE)'))
        admin.dispose()


def _budget_for(plan: Plan) -> Decimal:
    """A budget the load crosses 100% of about two thirds of the way through (purchases average ~7.50)."""
    per_user = Decimal(str(plan.rate * plan.seconds / plan.users)) * Decimal("7.5")
    return max(Decimal("50.00"), (per_user * Decimal("0.65")).quantize(Decimal("1.00")))


@dataclass
class Fakes:
    """The providers we do not own, as local fakes: FX, email (SendGrid) and SMS (Twilio)."""

    fx: FakeFx
    sendgrid: FakeSendGrid
    twilio: FakeTwilio

    @classmethod
    def start(cls) -> Fakes:
        """Start all three."""
        return cls(FakeFx(FX_RATES).start(), FakeSendGrid().start(), FakeTwilio().start())  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """The stack's settings that point at them."""
        return {**provider_env(self.sendgrid, self.twilio), "FX_PROVIDER_URL": self.fx.url}

    def mails(self) -> dict[str, int]:
        """Notification id -> how many of its emails the fake SendGrid accepted (2xx)."""
        counted: dict[str, int] = {}
        for r in list(self.sendgrid.requests):
            notification_id = r.data.get("custom_args", {}).get("notification_id")
            if notification_id and 200 <= r.status < 300:
                counted[notification_id] = counted.get(notification_id, 0) + 1
        return counted

    def stop(self) -> None:
        """Stop all three."""
        for fake in (self.fx, self.sendgrid, self.twilio):
            fake.stop()


def _schedule(plan: Plan, keeper: faults.PoolKeeper, proxies: faults.Proxies, fakes: Fakes, users: list[User],
              load: Load, log: faults.FaultLog, stop: threading.Event) -> list[threading.Thread]:
    """Start every fault and side load on its timer."""
    rng = random.Random(plan.seed)
    s = plan.seconds
    until = time.monotonic() + s
    threads = [faults.every(plan.kill_every, until, stop, lambda: keeper.kill_random(rng)),
               faults.every(1.0, until + 600, stop, keeper.revive),
               faults.at(0.25 * s, stop, lambda: faults.restart_rabbitmq(proxies, log)),
               faults.at(0.55 * s, stop, lambda: faults.restart_redis(proxies, log)),
               faults.at(0.75 * s, stop, lambda: faults.partition_redis(proxies, log)),
               faults.at(0.10 * s, stop, lambda: faults.fail_fx(fakes.fx, log, 0.3 * s)),
               faults.at(0.45 * s, stop, lambda: faults.fail_email(fakes.sendgrid, log, 0.25 * s)),
               faults.at(0.40 * s, stop, lambda: [import_statement(u, load.tally) for u in users[:2]])]
    for share in (0.2, 0.5, 0.8, 0.9):  # four contributions and a withdrawal: the goal's target is met once
        threads.append(faults.at(share * s, stop, lambda: [contribute(u, load.tally) for u in users]))
    threads.append(faults.at(0.6 * s, stop, lambda: [withdraw(u, load.tally) for u in users]))
    return threads


def run(plan: Plan, logdir: Path | None = None) -> dict[str, Any]:
    """One chaos run from start to verdict: its figures, faults and violations."""
    where = target()
    with provisioned(where):
        proxies = faults.Proxies(plan.mode, where.vhost, where.redis_db)
        fakes = Fakes.start()
        env = {**where.env, **proxies.env(), **fakes.env()}
        stack = Stack(logdir or Path(tempfile.mkdtemp(prefix="chaos-")), env=env).start()
        engine = create_engine(where.env["DATABASE_URL"])
        stop = threading.Event()
        try:
            for n in range(2, plan.categorization + 1):
                stack.start_pool("categorization", f"categorization-{n}")
            return _run_load(plan, where, stack, proxies, fakes, engine, stop)
        finally:
            stop.set()
            stack.stop()
            proxies.stop()
            fakes.stop()
            engine.dispose()


def _run_load(plan: Plan, where: Target, stack: Stack, proxies: faults.Proxies, fakes: Fakes, engine: Any,
              stop: threading.Event) -> dict[str, Any]:
    users = setup_users(stack.url, plan.users, _budget_for(plan))
    log = faults.FaultLog()
    keeper = faults.PoolKeeper(stack, log)
    load = Load(users, plan.rate).start()
    threads = _schedule(plan, keeper, proxies, fakes, users, load, log, stop)
    time.sleep(plan.seconds)
    load.stop()
    for thread in threads[2:]:
        thread.join(faults.DOWN_SECONDS + 0.3 * plan.seconds + 120)
    quiet = invariants.wait_quiet(engine, users, where.vhost, watchdog=keeper.revive)
    stop.set()
    client = redis.Redis.from_url(where.env["REDIS_URL"])
    mails = fakes.mails()
    violations = invariants.check_all(engine, users, client, where.vhost, where.env, mails)
    proven = invariants.prove_checks_fail(engine, users, client, where.vhost, where.env)
    tally = load.tally
    return {"mode": plan.mode, "plan": asdict(plan), "seconds_to_quiet": quiet, "faults": log.as_json(),
            "fault_counts": log.counts(),
            "load": {"requests": tally.attempts, "accepted": tally.accepted, "refused": tally.refused,
                     "given_up": len(tally.given_up),
                     "transactions_accepted": sum(len(u.transactions) for u in users),
                     "landed_unacknowledged": invariants.landed_unacknowledged(engine, users),
                     "contributions_accepted": sum(len(u.contributions) for u in users),
                     "imports_accepted": sum(len(u.imports) for u in users),
                     "emails_accepted_by_provider": sum(mails.values())},
            "violations": invariants.as_json(violations), "checks_proven_to_fail": proven}


def report(result: dict[str, Any]) -> str:
    """The table of faults injected and violations found."""
    lines = [f"chaos run ({result['mode']} mode), {machine()}", "", f"{'fault':<22}{'target':<18}{'count':>6}"
             f"{'seconds':>9}"]
    grouped: dict[tuple[str, str], list[float]] = {}
    for f in result["faults"]:
        grouped.setdefault((f["kind"], f["target"]), []).append(f["seconds"])
    for (kind, where), secs in sorted(grouped.items()):
        lines.append(f"{kind:<22}{where:<18}{len(secs):>6}{sum(secs):>9.1f}")
    load = result["load"]
    lines += ["", f"load: {load['requests']} requests, {load['accepted']} accepted, refused {load['refused']}, "
                  f"{load['given_up']} given up; {load['transactions_accepted']} transactions, "
                  f"{load['contributions_accepted']} contributions, {load['imports_accepted']} imports accepted; "
                  f"quiet after {result['seconds_to_quiet']} s", ""]
    violations = result["violations"]
    lines.append(f"{'invariant':<44}violations")
    for name in INVARIANTS:
        hits = [v for v in violations if v["invariant"] == name]
        lines.append(f"{name:<44}{len(hits)}")
    others = [v for v in violations if v["invariant"] not in INVARIANTS]
    for v in [*[v for v in violations if v["invariant"] in INVARIANTS], *others][:40]:
        lines.append(f"  {v['invariant']}: {v['detail']}")
    proven = result.get("checks_proven_to_fail", {})
    if proven:
        lines.append(f"\nchecks shown to catch a planted fault: {sum(proven.values())} of {len(proven)}"
                     + "".join(f"; NOT {name}" for name, ok in proven.items() if not ok))
    lines.append(f"\n{len(violations)} violation(s)")
    return "\n".join(lines)


#: Every invariant checked, as the table names them.
INVARIANTS = ("accepted transaction recorded", "recorded once", "balance equals SQL sum", "converted, never 1:1",
              "budget counts each transaction once", "budget total (Redis) equals SQL",
              "budget total (API) equals SQL", "each threshold alerted once", "BudgetThresholdCrossed notified once",
              "accepted contribution recorded", "contribution recorded once",
              "goal saved (API) equals what was accepted", "goal reached announced once",
              "GoalReached notified once", "import rows recorded once", "email sent at most once",
              "email delivered", "every event published",
              "each event audited once", "nothing dead-lettered", "reconcile finds nothing")


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write docs/bench/chaos.json; 1 when any invariant was violated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=faults.MODES, default="real")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--rate", type=float, default=25.0, help="transactions offered per second")
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    plan = Plan(args.mode, args.seconds, args.users, args.rate, args.kill_every, args.seed)
    result = run(plan)
    print(report(result))
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"date": dt.date.today().isoformat(), "machine": machine(), "command": f"make chaos ({plan.mode} mode)"}
    (OUT / "chaos.json").write_text(json.dumps({**meta, **result}, indent=2, default=str))
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())

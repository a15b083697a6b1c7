"""Ingest benchmark: HTTP clients post transactions with every pool running.

Prints, and writes to docs/bench/ingest.json: sustained transactions/s, API latency p50/p99, and
end-to-end latency p50/p99 (from the POST until the budget counts the transaction), at a fixed
offered load and at saturation; plus the ceiling of this machine: a no-op Dramatiq actor's
messages/s on the same RabbitMQ with the same publisher confirms.

Run: `make bench` (starts what it needs on its own database and vhost).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from bench.common import drop, machine, pct, stack, write  # isort: skip  (first: sets the isolated environment)
from sqlalchemy import create_engine, text  # isort: skip

from bench import cpu, http_load  # isort: skip
from tests.support import rabbit_admin  # isort: skip
from tests.support.client import register  # isort: skip
from tests.support.isolation import VHOST  # isort: skip
from tests.support.stack import wait_for  # isort: skip

USERS = 20
#: The stack as deployed by the Procfile's defaults, with two web workers of 16 threads (one per core).
STACK_ENV = {"WORKER_THREADS": "8", "DRAMATIQ_MAX_RETRIES": "5", "WEB_CONCURRENCY": "2", "WEB_THREADS": "16"}


@dataclass
class Figures:
    """One load level's results."""

    name: str
    offered_per_s: float | None
    sent: int
    seconds: float
    accepted_per_s: float
    api_p50_ms: float
    api_p99_ms: float
    e2e_p50_ms: float
    e2e_p99_ms: float
    errors: int
    #: Messages the pools handled per second over the phase (every queue, from the first POST until the last
    #: transaction was counted), from the pools' own counters.
    messages_per_s: float | None = None
    #: Non-202 answers by status ("no answer": refused, reset or timed out).
    errors_by_status: dict[str, int] = field(default_factory=dict)
    #: Fixed load: how late sends started against their schedule, because every connection was busy.
    behind_schedule_p99_ms: float | None = None
    behind_schedule_max_ms: float | None = None
    #: CPU the load generator (this process) spent per request sent.
    loadgen_cpu_ms_per_request: float | None = None
    #: Milliseconds of CPU per accepted transaction in each part of the stack, from the first POST until the last
    #: transaction was counted.
    cpu_ms_per_transaction: dict[str, float] = field(default_factory=dict)


def _users(url: str) -> list[tuple]:
    """USERS users, each with an account and a budget; returns once the pools are done with their sign-ups (their
    emails, audit and insights must not be counted as the load's)."""
    def user(_: int) -> tuple:
        client, _me = register(url)
        account = client.open_account("EUR", opening="1000000.00")
        client.create_budget("Groceries", "100000.00")
        return client, account["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        users = list(pool.map(user, range(USERS)))
    _wait_until_quiet()
    return users


def _wait_until_quiet() -> None:
    """Until no queue of the stack holds a message, twice in a row across RabbitMQ's statistics interval (5 s)."""
    def empty() -> bool:
        return all(q.get("messages", 0) == 0 for q in rabbit_admin.list_queues(VHOST))

    wait_for(lambda: empty() and (time.sleep(6) or empty()), timeout=300, every=1, what="every queue empty")


def _load(name: str, users: list[tuple], rate: float | None, seconds: float, clients: int) -> Figures:
    """Post for `seconds`, at `rate`/s (None: as fast as `clients` keep-alive connections go)."""
    tally = _Tally()
    make, url = _transactions(users), users[0][0].base
    handled_before, parts_before = _handled(), cpu.snapshot()
    start, own = time.perf_counter(), time.process_time()
    if rate:
        outcome = http_load.paced(url, make, tally.record, rate=rate, seconds=seconds, connections=clients)
    else:
        outcome = http_load.saturate(url, make, tally.record, seconds=seconds, connections=clients)
    cpu_ms = (time.process_time() - own) * 1000 / max(outcome.sent, 1)
    e2e = _end_to_end(tally.posted)
    drained = time.perf_counter() - start
    parts = cpu.ms_per(parts_before, cpu.snapshot(), len(tally.posted))
    time.sleep(1.5)  # the pools flush their counters once a second
    handled = round((_handled() - handled_before) / drained, 1)
    took, accepted, latencies = outcome.seconds, len(tally.posted), tally.latencies
    return Figures(name, rate, accepted, round(took, 1), round(accepted / took, 1), pct(latencies, 50),
                   pct(latencies, 99), pct(e2e, 50), pct(e2e, 99), sum(tally.errors.values()), handled,
                   errors_by_status=_by_status(tally.errors),
                   behind_schedule_p99_ms=pct(outcome.behind_ms, 99) if rate else None,
                   behind_schedule_max_ms=round(max(outcome.behind_ms), 1) if rate and outcome.behind_ms else None,
                   loadgen_cpu_ms_per_request=round(cpu_ms, 3), cpu_ms_per_transaction=parts)


def _transactions(users: list[tuple]) -> http_load.MakeRequest:
    """Request i: user i's expense, the body ApiClient.post_transaction sends."""
    auth = [({"Authorization": client.http.headers["Authorization"]}, account_id) for client, account_id in users]

    def make(i: int) -> http_load.Request:
        headers, account_id = auth[i % len(auth)]
        body = {"account_id": account_id, "type": "expense", "amount": f"{1 + i % 50}.{i % 100:02d}",
                "occurred_on": "2026-10-15", "payee": "REWE"}
        return "/api/v1/transactions", headers, json.dumps(body).encode()

    return make


@dataclass
class _Tally:
    """The answers as they come: 202s' ids with their send time, their latencies, other statuses counted."""

    posted: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[int] = field(default_factory=Counter)

    def record(self, i: int, status: int, body: bytes, wall: float, ms: float) -> None:
        """One answer (status 0: none came)."""
        if status == 202:
            self.latencies.append(ms)
            self.posted[json.loads(body)["id"]] = wall
        else:
            self.errors[status] += 1


def _by_status(errors: Counter[int]) -> dict[str, int]:
    return {"no answer" if s == http_load.NO_ANSWER else str(s): n for s, n in sorted(errors.items())}


def _handled() -> int:
    """Messages processed so far by every pool (the Metrics middleware's counters in Redis)."""
    import redis

    from actors.middleware import MESSAGES_KEY

    counts = redis.Redis.from_url(os.environ["REDIS_URL"]).hgetall(MESSAGES_KEY)
    return sum(int(v) for k, v in counts.items() if k.decode().endswith("|processed"))


def _end_to_end(posted: dict[str, float]) -> list[float]:
    """Milliseconds from each POST until its budget entry was committed (waits for all)."""
    engine = create_engine(os.environ["DATABASE_URL"])
    ids = list(posted)

    def counted() -> dict[str, float] | None:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT transaction_id::text, extract(epoch FROM counted_at) FROM budget_entries "
                                     "WHERE transaction_id::text = ANY(:ids)"), {"ids": ids}).all()
        return {r[0]: r[1] for r in rows} if len(rows) == len(ids) else None

    done = wait_for(counted, timeout=300, every=0.5, what="every transaction counted")
    engine.dispose()
    return [(float(done[i]) - posted[i]) * 1000 for i in ids]


def _noop_ceiling(messages: int = 5000) -> float:
    """Messages/s of a no-op actor through our broker (confirms on), enqueue and consume overlapping."""
    import dramatiq
    from dramatiq import Worker

    from actors.broker import FinanceBroker

    broker = FinanceBroker(url=rabbit_admin.amqp_url(VHOST))
    done = threading.Event()
    seen = [0]
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, queue_name="bench.noop", actor_name="bench_noop", max_retries=0)
    def noop() -> None:
        with lock:
            seen[0] += 1
            if seen[0] >= messages:
                done.set()

    broker.declare_queue("bench.noop", ensure=True)
    worker = Worker(broker, worker_threads=8)
    worker.start()
    start = time.perf_counter()
    for _ in range(messages):
        noop.send()
    done.wait(timeout=300)
    took = time.perf_counter() - start
    worker.stop()
    broker.close()
    return round(messages / took, 1)


def main() -> None:
    """Run the benchmark and print its table."""
    with stack(**STACK_ENV) as running:
        users = _users(running.url)
        results = [_load("fixed 200/s", users, 200.0, 20, 32), _load("saturation", users, None, 20, 32)]
    ceiling = _noop_ceiling()
    _report(results, ceiling)
    drop()


def _report(results: list[Figures], ceiling: float) -> None:
    best = max(r.accepted_per_s for r in results)
    handled = max(r.messages_per_s or 0 for r in results)
    write("ingest", {"ingest": [asdict(r) for r in results], "noop_actor_messages_per_s": ceiling,
                     "handled_messages_per_s": handled, "ratio_to_ceiling": round(handled / ceiling, 3)})
    print(f"\ningest benchmark, {machine()}")
    header = ("load", "sent", "tx/s", "api p50", "api p99", "e2e p50", "e2e p99", "errors", "late p99", "gen ms/req")
    print(f"{header[0]:<14}" + "".join(f"{h:>11}" for h in header[1:]))
    for r in results:
        row = (r.sent, r.accepted_per_s, r.api_p50_ms, r.api_p99_ms, r.e2e_p50_ms, r.e2e_p99_ms, r.errors,
               "-" if r.behind_schedule_p99_ms is None else r.behind_schedule_p99_ms, r.loadgen_cpu_ms_per_request)
        print(f"{r.name:<14}" + "".join(f"{v:>11}" for v in row))
        if r.errors_by_status:
            print(f"{'':<14}errors by status: {r.errors_by_status}")
        print(f"{'':<14}CPU ms per transaction: " + ", ".join(f"{k} {v}" for k, v in r.cpu_ms_per_transaction.items()))
    print("late p99: ms a fixed-rate send started behind its schedule; gen ms/req: the load generator's CPU "
          "per request")
    print(f"no-op Dramatiq actor ceiling: {ceiling} messages/s; our pools handled at most {handled} messages/s "
          f"({handled / ceiling:.1%} of it; best ingest {best} tx/s)")


if __name__ == "__main__":
    main()

"""Audit pool throughput with and without group commit: `python -m bench.audit`.

Publishes N events (spread over H households) while the audit pool is stopped, then starts it and
measures how fast it drains them: events stored per second between the first and the last commit.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from tests.support.isolation import VHOST  # isort: skip  (first: sets the isolated environment)
from sqlalchemy import text  # isort: skip

from bench.common import drop, machine, write  # isort: skip
from config import wiring  # isort: skip
from domain.events import Event  # isort: skip
from tests.support import rabbit_admin  # isort: skip
from tests.support.cli import run_cli  # isort: skip
from tests.support.stack import Stack, wait_for  # isort: skip

#: Events per run, and the households they are spread over.
EVENTS, HOUSEHOLDS = 3000, 50


def _publish(run: str) -> None:
    households = [str(uuid.uuid4()) for _ in range(HOUSEHOLDS)]
    for i in range(EVENTS):
        wiring.publish(Event("TransactionRecorded", {"transaction_id": str(uuid.uuid4()), "amount": f"{i}.00"},
                             households[i % HOUSEHOLDS], None, run, None))


def _stored(run: str) -> tuple[int, float]:
    with wiring.engine().connect() as conn:
        count, first, last = conn.execute(text(
            "SELECT count(*), min(recorded_at), max(recorded_at) FROM audit_events WHERE correlation_id = :c"),
            {"c": run}).one()
    return count, (last - first).total_seconds() if count else 0.0


def measure(stack: Stack, label: str, env: dict[str, str]) -> dict[str, float]:
    """Drain N pre-published events with one audit process configured by `env`."""
    run = f"bench-audit-{label}-{uuid.uuid4().hex[:6]}"
    _publish(run)
    started = time.perf_counter()
    stack.start_pool("audit", name=f"audit-{label}", env={"LOG_LEVEL": "WARNING", **env})
    wait_for(lambda: _stored(run)[0] == EVENTS, timeout=600, every=0.5, what=f"{EVENTS} events audited")
    wall = time.perf_counter() - started
    stack.signal(f"audit-{label}", 15)
    stack.wait_exit(f"audit-{label}")
    _, span = _stored(run)
    return {"events": EVENTS, "events_per_second": round(EVENTS / span, 1), "wall_seconds_with_boot": round(wall, 1)}


def main() -> None:
    """Print and store the figures of each configuration."""
    rabbit_admin.create_vhost(VHOST)
    assert run_cli("release").returncode == 0
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-audit-")), env={})
    configurations = {
        "no_group_commit_8_threads": {"AUDIT_BATCH_SIZE": "1", "AUDIT_WORKER_THREADS": "8"},
        "group_commit_8_threads": {"AUDIT_BATCH_SIZE": "200", "AUDIT_WORKER_THREADS": "8"},
        "group_commit_32_threads": {"AUDIT_BATCH_SIZE": "200", "AUDIT_WORKER_THREADS": "32"},
    }
    figures = {}
    try:
        for label, env in configurations.items():
            figures[label] = measure(stack, label, env)
            print(f"{label:40} {figures[label]}")
    finally:
        stack.stop()
        drop()
    write("audit", {"machine": machine(), "households": HOUSEHOLDS, **figures})


if __name__ == "__main__":
    main()

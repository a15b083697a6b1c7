"""Runs one worker pool as a single process: `python -m actors.run POOL`.

Dramatiq's CLI forks; on Heroku every process gets SIGTERM and a forked child gets a second one
and dies mid-message. This runner is one process that stops its worker gracefully on SIGTERM:
workers finish the message in hand, unstarted prefetched messages go back to RabbitMQ.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import signal
import sys
import threading
import time

from dramatiq import Worker

from actors.pools import POOLS, load, threads_for
from config import wiring
from config.heap import freeze_startup_objects
from config.logs import configure_logging
from config.settings import get_settings
from services.outbox import purge_published, relay_pending

log = logging.getLogger("actors.run")


#: Seconds between two purges of published events by one process.
PURGE_EVERY_SECONDS = 3600
#: The longest one purge runs: a large backlog (the first purge of an old outbox) goes in slices between relay
#: rounds, so the relay, which shares the thread, is never held up for longer.
PURGE_SLICE_SECONDS = 5.0


def _relay_forever(stop: threading.Event, every: int, retention_days: int) -> None:
    """Publish committed events whose publication was cut short (a crash, a broker outage); once an hour, delete
    those published more than `retention_days` ago (0: never)."""
    next_purge = time.monotonic() + random.uniform(0, PURGE_EVERY_SECONDS)  # the processes spread their purges
    while not stop.wait(every):
        try:
            relay_pending(wiring.session_factory(), wiring.publish, older_than_seconds=every)
        except Exception:  # noqa: BLE001 - keep relaying; the next round retries
            log.warning("outbox relay round failed", exc_info=True)
        if retention_days > 0 and time.monotonic() >= next_purge:
            finished = _purge(retention_days)
            next_purge = time.monotonic() + (PURGE_EVERY_SECONDS if finished else 0)  # unfinished: on after a round


def _purge(retention_days: int) -> bool:
    """One slice of the purge; whether it got to the end of what was due (a failure waits for the next hour)."""
    try:
        gone = purge_published(wiring.engine(), dt.timedelta(days=retention_days), max_seconds=PURGE_SLICE_SECONDS)
    except Exception:  # noqa: BLE001 - the next purge retries
        log.warning("outbox purge failed", exc_info=True)
        return True
    log.info("outbox: removed %d event(s) published more than %d days ago%s", gone.deleted, retention_days,
             "" if gone.finished else "; more are due, the purge goes on after the next relay round")
    return gone.finished


def run(pool: str) -> int:
    """Consume the pool's queues until SIGTERM or SIGINT; returns the exit code."""
    settings = get_settings()
    threads = threads_for(pool, settings.worker_threads)
    configure_logging(settings.log_level, process_type=pool)
    wiring.identify(pool)
    broker = wiring.broker()
    module = load(pool)
    broker.emit_after("process_boot")
    freeze_startup_objects()
    worker = Worker(broker, queues=set(module.QUEUES), worker_threads=threads, worker_timeout=1000)
    worker.queue_prefetch = settings.worker_prefetch * threads
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    threading.Thread(target=_relay_forever, args=(stop, settings.outbox_relay_seconds,
                                                      settings.outbox_retention_days), daemon=True).start()
    log.info("pool %s consuming %s with %d threads", pool, ",".join(module.QUEUES), threads)
    stop.wait()
    log.info("pool %s stopping: finishing messages in hand", pool)
    worker.stop(timeout=settings.shutdown_timeout_ms)
    wiring.outbox_marker().flush()
    broker.close()
    log.info("pool %s stopped", pool)
    return 0


def main(argv: list[str]) -> int:
    """Entry point."""
    if len(argv) != 1 or argv[0] not in POOLS:
        print(f"usage: python -m actors.run {{{','.join(POOLS)}}}", file=sys.stderr)
        return 2
    return run(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

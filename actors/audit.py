"""The audit pool: appends every event of every exchange to the audit archive, once, in group commits."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import dramatiq

from actors.bus import Envelopes, events_of, subscriber
from config import wiring
from config.settings import get_settings
from domain.events import EXCHANGES

log = logging.getLogger(__name__)

#: The queues this pool consumes.
QUEUES = ("audit.events",)
#: Seconds between two retention rounds (AUDIT_RETENTION_DAYS > 0).
RETENTION_EVERY_SECONDS = 3600
#: The audit gives up on an event last: at least this many retries, whatever DRAMATIQ_MAX_RETRIES says.
MIN_RETRIES = 20


@subscriber("audit.events", exchanges=EXCHANGES, max_retries=max(get_settings().max_retries, MIN_RETRIES))
def audit_on_event(envelopes: Envelopes) -> None:
    """Archive the events of one message; returns (and the message is acked) only once they are committed. Safe to
    run twice."""
    events = events_of(envelopes)
    if get_settings().audit_batch_size > 1:
        wiring.audit_writer().submit_all(events)
    else:  # AUDIT_BATCH_SIZE=1: every thread writes its own transaction
        for event in events:
            wiring.audit_store().append(event)


def purge_expired(days: int) -> int:
    """Remove records older than `days` (each chain anchored past them); how many went."""
    return wiring.audit_store().purge(dt.datetime.now(dt.UTC) - dt.timedelta(days=days))


class Retention(dramatiq.Middleware):
    """In the audit pool, applies AUDIT_RETENTION_DAYS once an hour (0 keeps every record forever)."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Start the retention thread when retention is configured."""
        days = get_settings().audit_retention_days
        if days > 0:
            threading.Thread(target=self._purge_forever, args=(days,), name="audit-retention", daemon=True).start()

    @staticmethod
    def _purge_forever(days: int) -> None:
        while True:
            try:
                log.info("audit retention: removed %d record(s) older than %d days", purge_expired(days), days)
            except Exception:  # noqa: BLE001 - retention retries next round
                log.warning("audit retention round failed", exc_info=True)
            threading.Event().wait(RETENTION_EVERY_SECONDS)


wiring.broker().add_middleware(Retention())

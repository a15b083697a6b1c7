"""The FX pool: converts transactions into the household's base currency, converts what waited for a rate once one
arrives, re-converts a household's history when its base currency changes, and probes the provider while its
breaker is open."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from typing import Any

import dramatiq

from actors.bus import Envelopes, command, events_of, handle_events, subscriber
from config import wiring
from config.settings import get_settings
from domain.events import Event
from services.fx import (
    SWEEP_LEASE,
    ManualRate,
    Reconvert,
    Sweep,
    apply_manual_rate,
    convert_transaction,
    reconvert_batch,
    stalled_reconversions,
    sweep,
)
from services.uow import UnitOfWork

log = logging.getLogger(__name__)

#: The queues this pool consumes: events of the ledger, and its own commands.
QUEUES = ("fx.events", "fx")
#: Seconds between two looks at the breaker (a trial call is made once its reset time has passed).
WATCH_SECONDS = 1.0


@subscriber("fx.events", exchanges=("finance.transactions",))
def fx_on_transaction_event(envelopes: Envelopes) -> None:
    """Convert recorded transactions that wait for a rate; start re-converting history after a change of base
    currency. Safe to run twice."""
    events = events_of(envelopes)
    if any(_converts(event) for event in events):  # most wait for nothing: no transaction for them
        handle_events([e for e in events if _converts(e)], _convert)
    for event in events:
        if event.type == "BaseCurrencyChanged":
            _reconvert(Reconvert(event.payload["job_id"], 0))


def _converts(event: Event) -> bool:
    return event.type in ("TransactionRecorded", "TransactionUpdated") and event.payload.get("fx_status") == "pending"


def _convert(event: Event, uow: UnitOfWork) -> None:
    convert_transaction(uuid.UUID(event.payload["transaction_id"]), wiring.rates(), event, uow)


@command("fx")
def fx_reconvert_command(payload: dict[str, Any]) -> None:
    """Re-convert one batch of a household's history, then hand the rest to the next command. Safe to run twice."""
    _reconvert(Reconvert.from_dict(payload))


def _reconvert(cmd: Reconvert) -> None:
    following = reconvert_batch(cmd, wiring.rates(), wiring.uow())
    if following is not None:
        wiring.broker().send_command("fx", "fx_reconvert_command", following.to_dict())


@command("fx")
def fx_sweep_command(payload: dict[str, Any]) -> None:
    """Convert a batch of what waits for a rate (after the breaker closed, or periodically). Safe to run twice."""
    cmd = Sweep.from_dict(payload)
    if cmd.after is None:
        for resumed in stalled_reconversions(wiring.uow()):
            wiring.broker().send_command("fx", "fx_reconvert_command", resumed.to_dict())
    following = sweep(cmd, wiring.rates(), wiring.uow())
    if following is not None:
        wiring.broker().send_command("fx", "fx_sweep_command", following.to_dict())


@command("fx")
def fx_manual_rate_command(payload: dict[str, Any]) -> None:
    """A household set its own rate: convert again what it applies to. Safe to run twice."""
    apply_manual_rate(ManualRate.from_dict(payload), wiring.rates(), wiring.uow())


# --- the watch: trial calls while the breaker is open, and the periodic sweep ------------------------------------


def _probe_if_due(now: dt.datetime) -> None:
    """While the breaker is open and its reset time has passed (or it is half-open), make one trial call: a
    success closes it, and the close converts what waited for a rate."""
    live = wiring.fx_live()
    if live is not None and live.breakers.state().trial_due(now):
        live.probe()


def _sweep_if_due() -> None:
    """Once per FX_SWEEP_SECONDS across every fx process, sweep what waits for a rate."""
    every = get_settings().fx_sweep_seconds
    if wiring.redis_client().set(SWEEP_LEASE, b"1", nx=True, ex=every):
        wiring.broker().send_command("fx", "fx_sweep_command", Sweep("periodic").to_dict())


def _watch(stop: threading.Event) -> None:
    while not stop.wait(WATCH_SECONDS):
        try:
            _probe_if_due(dt.datetime.now(dt.UTC))
            _sweep_if_due()
        except Exception:  # noqa: BLE001 - keep watching; the next round retries
            log.warning("fx watch round failed; the next one retries", exc_info=True)


class FxWatch(dramatiq.Middleware):
    """Runs the watch in every fx pool process (started when the process boots, stopped with the worker)."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """Start watching."""
        threading.Thread(target=_watch, args=(self._stop,), name="fx-watch", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Stop watching."""
        self._stop.set()


wiring.broker().add_middleware(FxWatch())

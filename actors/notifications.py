"""The notifications pool: turns events into notifications, delivers each once, and sweeps what is overdue."""

from __future__ import annotations

import logging
import threading
import uuid
from functools import cache, partial
from typing import Any
from urllib.parse import quote

import dramatiq
from dramatiq.message import Message

from actors.bus import Envelopes, command, events_of, handle_events, subscriber
from config import wiring
from config.settings import get_settings
from domain.events import Event
from services.notifications import notify, worth_notifying
from services.notify_channels import Channel, build_channels
from services.notify_delivery import Policy, deliver, sweep
from services.notify_preferences import unsubscribe_token
from services.uow import UnitOfWork

log = logging.getLogger(__name__)

#: The queues this pool consumes: events, and its own delivery commands.
QUEUES = ("notifications.events", "notifications")
#: The exchanges whose events may notify someone.
EXCHANGES = ("finance.users", "finance.budgets", "finance.goals", "finance.security", "finance.transactions",
             "finance.insights")
#: The actor that delivers one notification.
DELIVER = "notifications_deliver_command"
#: Redis key that lets one process per period sweep.
SWEEP_LEASE = "notifications:sweep"


@cache
def channels() -> dict[str, Channel]:
    """Email, SMS and webhooks as configured: without SendGrid or Twilio keys, the log sink."""
    return build_channels(get_settings())


def policy() -> Policy:
    """Delivery retries and limits from the settings."""
    s = get_settings()
    return Policy(s.notify_min_backoff_ms, s.notify_max_backoff_ms, s.notify_max_attempts, s.webhook_max_attempts,
                  s.notify_sms_max_age_seconds, s.notify_sending_lease_seconds)


def unsubscribe_url(user_id: uuid.UUID, kind: str) -> str:
    """The public link that turns one kind of email off for one person."""
    s = get_settings()
    token = unsubscribe_token(user_id, kind, s.jwt_secret_key)
    return f"{s.public_url.rstrip('/')}/api/v1/notification-preferences/unsubscribe?token={quote(token)}"


def send_delivery(notification_id: uuid.UUID, delay_ms: int | None = None) -> None:
    """Enqueue the delivery of one notification (after `delay_ms`), confirmed by RabbitMQ."""
    message = Message(queue_name="notifications", actor_name=DELIVER, args=({"notification_id": str(notification_id)},),
                      kwargs={}, options={})
    wiring.broker().enqueue(message, delay=delay_ms)


@subscriber("notifications.events", exchanges=EXCHANGES)
def notifications_on_event(envelopes: Envelopes) -> None:
    """Write the notifications the events of one message ask for; send each to delivery once committed. Safe to
    run twice."""
    events = worth_notifying(events_of(envelopes), wiring.engine())
    if events:
        handle_events(events, _notify)


def _notify(event: Event, uow: UnitOfWork) -> None:
    for notification_id in notify(event, uow, unsubscribe_url):
        uow.after_commit(partial(send_delivery, notification_id))


@command("notifications", actor_name=DELIVER)
def notifications_deliver_command(payload: dict[str, Any]) -> None:
    """One attempt at one notification; a retry is scheduled with capped backoff. Safe to run twice."""
    notification_id = uuid.UUID(payload["notification_id"])
    delay = deliver(notification_id, wiring.uow(), lambda name: channels()[name], policy(), unsubscribe_url)
    if delay is not None:
        try:
            send_delivery(notification_id, delay)
        except Exception:  # noqa: BLE001 - the row is queued with its time: the sweep sends it
            log.warning("retry of notification %s not scheduled; the sweep will", notification_id, exc_info=True)


def _sweep_if_due() -> None:
    """Once per NOTIFY_SWEEP_SECONDS across every process: resolve stuck attempts, resend what is overdue."""
    every = get_settings().notify_sweep_seconds
    if wiring.redis_client().set(SWEEP_LEASE, b"1", nx=True, ex=every):
        for notification_id in sweep(wiring.uow(), policy()):
            send_delivery(notification_id)


def _watch(stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            _sweep_if_due()
        except Exception:  # noqa: BLE001 - keep sweeping; the next round retries
            log.warning("notification sweep failed; the next one retries", exc_info=True)


class NotifySweep(dramatiq.Middleware):
    """Runs the sweep in every notifications process (started at boot, stopped with the worker)."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """Start sweeping."""
        threading.Thread(target=_watch, args=(self._stop,), name="notify-sweep", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Stop sweeping."""
        self._stop.set()


wiring.broker().add_middleware(NotifySweep())

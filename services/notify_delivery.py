"""Delivering one notification at most once: claim the row, call the provider, record the outcome and the attempt.

A row is claimed (queued -> sending, attempts + 1) and committed BEFORE the provider is called, and the outcome is
recorded after. A redelivered or duplicate command finds nothing to claim and does nothing. If the process dies
between the provider's answer and the record, the row stays `sending`; the sweep resolves it after a lease: email
and SMS are marked failed ("outcome unknown", never sent twice), webhooks are queued again (receivers deduplicate
by the X-Finance-Delivery id).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update

from domain.notifications import backoff_ms, is_stale
from models.identity import User
from models.notifications import DeliveryAttempt, Notification, Webhook
from services.notify_channels import Channel, Outcome, Outgoing
from services.uow import UnitOfWork

#: (user id, kind) -> the unsubscribe link of an email.
UnsubscribeUrl = Callable[[uuid.UUID, str], str]
#: Seconds a queued row may be overdue before the sweep sends it again (its own delayed command comes first).
SWEEP_GRACE_SECONDS = 2
#: Seconds a delivery command may arrive before its row's next attempt is due and still claim it.
EARLY_TOLERANCE_SECONDS = 1


@dataclass(frozen=True)
class Policy:
    """Retries and limits of delivery."""

    min_backoff_ms: int
    max_backoff_ms: int
    max_attempts: int
    webhook_max_attempts: int
    sms_max_age_seconds: int
    lease_seconds: int

    def attempts_for(self, channel: str) -> int:
        """How many attempts a channel gets before it is failed."""
        return self.webhook_max_attempts if channel == "webhook" else self.max_attempts


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _outgoing(row: Notification, uow: UnitOfWork, unsubscribe_url: UnsubscribeUrl) -> Outgoing | str:
    """The message for a claimed row, or why it cannot go out."""
    if row.channel == "webhook":
        hook = uow.session.get(Webhook, uuid.UUID(row.target))
        if hook is None or hook.deleted_at is not None:
            return "the webhook was deleted"
        return Outgoing(str(row.id), "webhook", hook.url, row.title, row.body, document=row.document,
                        secret=hook.secret)
    user = uow.session.get(User, row.user_id)
    if row.channel == "sms":
        return Outgoing(str(row.id), "sms", user.phone, row.title, row.body, sms=row.short) if user.phone \
            else "no phone number"
    url = unsubscribe_url(row.user_id, row.kind or "")
    text = f"{row.body}\n\n--\nUnsubscribe from these emails: {url}"
    return Outgoing(str(row.id), "email", user.email, row.title, text, html=row.html, unsubscribe_url=url)


def claim(notification_id: uuid.UUID, uow: UnitOfWork, unsubscribe_url: UnsubscribeUrl
          ) -> tuple[Notification, Outgoing | str] | None:
    """Take a queued notification for one attempt (committed), with its message; None when it is not queued."""
    with uow:
        row = uow.session.execute(update(Notification).where(
            Notification.id == notification_id, Notification.status == "queued",
            # A command early for its backoff (a duplicate) leaves the row to its own command or the sweep.
            Notification.next_attempt_at <= _now() + dt.timedelta(seconds=EARLY_TOLERANCE_SECONDS),
        ).values(status="sending", attempts=Notification.attempts + 1, claimed_at=_now())
            .returning(Notification)).scalar_one_or_none()
        if row is None:
            return None
        message = _outgoing(row, uow, unsubscribe_url)
        uow.commit()
        return row, message


def _verdict(row: Notification, outcome: Outcome, policy: Policy) -> tuple[str, int | None, str | None]:
    """(status, retry delay in ms, reason) after an attempt."""
    if outcome.result == "sent":
        return "sent", None, None
    if outcome.result == "retry" and row.attempts < policy.attempts_for(row.channel):
        return "queued", backoff_ms(row.attempts, policy.min_backoff_ms, policy.max_backoff_ms), outcome.detail
    if outcome.result == "retry":
        return "failed", None, f"gave up after {row.attempts} attempts: {outcome.detail}"
    return outcome.result, None, outcome.detail


def record(row: Notification, outcome: Outcome, provider: str, started: dt.datetime, policy: Policy,
           uow: UnitOfWork) -> int | None:
    """Store an attempt's outcome and its log line; the delay before the next attempt, if there is one."""
    status, delay, reason = _verdict(row, outcome, policy)
    finished = _now()
    values: dict = {"status": status, "reason": reason, "provider": provider}
    if status == "sent":
        values |= {"sent_at": finished, "provider_message_id": outcome.provider_id}
    if delay is not None:
        values["next_attempt_at"] = finished + dt.timedelta(milliseconds=delay)
    with uow:
        uow.session.execute(update(Notification).where(
            Notification.id == row.id, Notification.status == "sending", Notification.attempts == row.attempts,
        ).values(**values))
        uow.session.add(DeliveryAttempt(
            notification_id=row.id, attempt=row.attempts, outcome="retry" if delay is not None else status,
            status_code=outcome.status_code, detail=outcome.detail[:1000], retry_in_ms=delay, started_at=started,
            finished_at=finished))
        uow.commit()
    return delay


def deliver(notification_id: uuid.UUID, uow: UnitOfWork, channels: Callable[[str], Channel], policy: Policy,
            unsubscribe_url: UnsubscribeUrl) -> int | None:
    """One attempt at one notification; the delay before the next attempt, if one is due. Safe to run twice."""
    claimed = claim(notification_id, uow, unsubscribe_url)
    if claimed is None:
        return None
    row, message = claimed
    started = _now()
    channel = channels(row.channel)
    if row.channel == "sms" and row.event_occurred_at and is_stale(row.event_occurred_at, started,
                                                                   policy.sms_max_age_seconds):
        outcome = Outcome("skipped", None, f"stale: the event is older than {policy.sms_max_age_seconds} s")
    elif isinstance(message, str):
        outcome = Outcome("skipped", None, message)
    else:
        outcome = channel.send(message)
    return record(row, outcome, channel.provider, started, policy, uow)


def _resolve_stuck(uow: UnitOfWork, policy: Policy, now: dt.datetime) -> None:
    """Rows left `sending` by a process that died mid-attempt: webhooks go again, email and SMS are failed."""
    cutoff = now - dt.timedelta(seconds=policy.lease_seconds)
    stuck = list(uow.session.scalars(select(Notification).where(
        Notification.status == "sending", Notification.claimed_at < cutoff).limit(500).with_for_update(
        skip_locked=True)))
    for row in stuck:
        again = row.channel == "webhook"
        row.status = "queued" if again else "failed"
        row.next_attempt_at = now if again else row.next_attempt_at
        row.reason = ("the attempt did not finish; sent again (the receiver deduplicates by delivery id)" if again
                      else "outcome unknown: the worker stopped during the provider call; not sent again")
        uow.session.add(DeliveryAttempt(notification_id=row.id, attempt=row.attempts, outcome="unknown",
                                        detail=row.reason, started_at=row.claimed_at, finished_at=now))


def sweep(uow: UnitOfWork, policy: Policy, limit: int = 500) -> list[uuid.UUID]:
    """Resolve stuck attempts; the queued notifications overdue (their command was lost or the broker was down)."""
    now = _now()
    with uow:
        _resolve_stuck(uow, policy, now)
        due = list(uow.session.scalars(select(Notification.id).where(
            Notification.status == "queued",
            Notification.next_attempt_at < now - dt.timedelta(seconds=SWEEP_GRACE_SECONDS),
        ).order_by(Notification.next_attempt_at).limit(limit)))
        uow.commit()
        return due


"""Notification rules: which events notify, on which channels by default, and how retries back off."""

from __future__ import annotations

import datetime as dt

#: Channels a notification can go out on.
CHANNELS: tuple[str, ...] = ("in_app", "email", "sms", "webhook")
#: Statuses every notification moves through: queued -> sending -> sent | failed | skipped (in_app is sent at once).
STATUSES: tuple[str, ...] = ("queued", "sending", "sent", "failed", "skipped")

#: Event type -> the kind of notification it is (the key of preferences).
KIND_OF: dict[str, str] = {
    "UserRegistered": "welcome",
    "HouseholdMemberAdded": "household",
    "BudgetThresholdCrossed": "budget_threshold",
    "GoalReached": "goal_reached",
    "AnomalyDetected": "unusual_transaction",
    "ImportFinished": "import_finished",
    "LoginSucceeded": "security",
    "PasswordChanged": "security",
    "TransactionRecorded": "transaction",
}
#: Every kind, in a stable order.
KINDS: tuple[str, ...] = tuple(dict.fromkeys(KIND_OF.values()))
#: Kinds that concern only the person who caused the event (not every member of the household).
PERSONAL_KINDS = frozenset({"welcome", "security"})

_ALL_BUT_SMS = {"in_app": True, "email": True, "sms": False, "webhook": True}
_URGENT = {"in_app": True, "email": True, "sms": True, "webhook": True}

#: Defaults per kind and channel when a person has not said otherwise: email and the inbox for most, SMS only for
#: what is urgent (security, budget thresholds, unusual transactions), per-transaction notifications off.
DEFAULTS: dict[str, dict[str, bool]] = {
    "welcome": _ALL_BUT_SMS,
    "household": _ALL_BUT_SMS,
    "budget_threshold": _URGENT,
    "goal_reached": _ALL_BUT_SMS,
    "unusual_transaction": _URGENT,
    "import_finished": _ALL_BUT_SMS,
    "security": _URGENT,
    "transaction": {"in_app": False, "email": False, "sms": False, "webhook": False},
}


def kind_of(event_type: str) -> str | None:
    """The notification kind of an event type, or None when it does not notify."""
    return KIND_OF.get(event_type)


def notification_kind(event_type: str, payload: dict) -> str | None:
    """The kind of notification one event makes, or None when it makes none."""
    # A sign-in from a known device is routine: telling of each one by email and SMS trains people to ignore the
    # one that matters. Events from before devices were remembered carry no `new_device` and notify as they did.
    if event_type == "LoginSucceeded" and payload.get("new_device") is False:
        return None
    return kind_of(event_type)


def enabled(kind: str, channel: str, overrides: dict[tuple[str, str], bool]) -> bool:
    """Whether a person wants `kind` on `channel`: their own choice, else the default."""
    return overrides.get((kind, channel), DEFAULTS[kind][channel])


def matrix(overrides: dict[tuple[str, str], bool]) -> dict[str, dict[str, bool]]:
    """Every kind and channel with the person's effective choice."""
    return {kind: {channel: enabled(kind, channel, overrides) for channel in CHANNELS} for kind in KINDS}


def backoff_ms(attempt: int, min_ms: int, max_ms: int) -> int:
    """Delay before the attempt after `attempt` (1-based): doubling from `min_ms`, capped at `max_ms`."""
    return min(max_ms, min_ms * 2 ** min(max(attempt - 1, 0), 30))


def is_stale(occurred_at: dt.datetime, now: dt.datetime, max_age_seconds: int) -> bool:
    """An alert older than `max_age_seconds` is no longer worth a text message."""
    return (now - occurred_at).total_seconds() > max_age_seconds


def is_retryable(status: int | None) -> bool:
    """Provider answers worth another try: no answer at all (None), 408, 429 and every 5xx."""
    return status is None or status in (408, 429) or status >= 500

"""A household's outbound webhooks: created with a secret shown once, listed, deleted, and their delivery log."""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import uuid
from urllib.parse import urlsplit

from sqlalchemy import select

from domain.notifications import KINDS
from domain.webhooks import is_public_address
from models.notifications import DeliveryAttempt, Notification, Webhook
from services.context import Caller
from services.errors import Forbidden, Invalid, NotFound
from services.uow import UnitOfWork

#: Most webhooks one household may have.
MAX_PER_HOUSEHOLD = 20
#: Most deliveries one page of the log shows.
LOG_MAX = 200


def check_url(url: str, allow_private: bool = True) -> str:
    """An absolute http(s) URL with a host (and unless `allow_private`, one whose every address is public);
    Invalid(field="url") otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("must be an absolute http:// or https:// URL", field="url")
    if parts.username or parts.password:
        raise Invalid("must not carry credentials; the signature authenticates deliveries", field="url")
    if not allow_private and (reason := private_target(url)):
        raise Invalid(reason, field="url")
    return url


def private_target(url: str) -> str | None:
    """Why a webhook must not be delivered to `url` (its host resolves to no address, or to one that is not
    public: loopback, private, link-local...), or None when every address it resolves to is public. Checked
    when a webhook is created and again before every delivery, so a name re-pointed later is caught too."""
    return public_addresses(url)[0]


def public_addresses(url: str) -> tuple[str | None, list[str]]:
    """The addresses `url`'s host resolves to, once, when every one is public: (None, addresses); otherwise why
    not and no address. A delivery connects to one of these, so the name is not resolved a second time."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    try:
        addresses = sorted(set(resolve(host, port or (443 if parts.scheme == "https" else 80))))
    except (OSError, UnicodeError):
        return f"{host} does not resolve", []
    if not addresses:
        return f"{host} does not resolve", []
    refused = [a for a in addresses if not is_public_address(a)]
    if refused:
        return f"{host} resolves to a non-public address ({refused[0]}); webhooks go to public hosts only", []
    return None, addresses


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for a TCP connection."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def create_webhook(caller: Caller, url: str, kinds: list[str], uow: UnitOfWork,
                   allow_private: bool = True) -> tuple[Webhook, str]:
    """A new webhook of the caller's household, and its secret (shown this once)."""
    if not caller.can_write:
        raise Forbidden("viewers cannot add webhooks")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise Invalid(f"unknown kind {unknown[0][:40]!r}: one of {', '.join(KINDS)}", field="kinds")
    check_url(url, allow_private)
    secret = "whsec_" + secrets.token_urlsafe(32)
    with uow:
        if len(_active(caller, uow)) >= MAX_PER_HOUSEHOLD:
            raise Invalid(f"a household has at most {MAX_PER_HOUSEHOLD} webhooks", field="url")
        hook = Webhook(id=uuid.uuid4(), household_id=caller.household_id, user_id=caller.user_id, url=url,
                       secret=secret, kinds=sorted(set(kinds)))
        uow.session.add(hook)
        uow.commit()
        return hook, secret


def _active(caller: Caller, uow: UnitOfWork) -> list[Webhook]:
    return list(uow.session.scalars(select(Webhook).where(
        Webhook.household_id == caller.household_id, Webhook.deleted_at.is_(None)).order_by(Webhook.created_at)))


def list_webhooks(caller: Caller, uow: UnitOfWork) -> list[Webhook]:
    """The household's webhooks (never their secrets)."""
    with uow:
        return _active(caller, uow)


def _get(caller: Caller, webhook_id: uuid.UUID, uow: UnitOfWork) -> Webhook:
    hook = uow.session.get(Webhook, webhook_id)
    if hook is None or hook.household_id != caller.household_id or hook.deleted_at is not None:
        raise NotFound("no such webhook")
    return hook


def delete_webhook(caller: Caller, webhook_id: uuid.UUID, uow: UnitOfWork) -> None:
    """Stop a webhook; deliveries still queued for it are skipped, its log stays."""
    with uow:
        _get(caller, webhook_id, uow).deleted_at = dt.datetime.now(dt.UTC)
        uow.commit()


def deliveries(caller: Caller, webhook_id: uuid.UUID, uow: UnitOfWork
               ) -> list[tuple[Notification, list[DeliveryAttempt]]]:
    """The webhook's latest deliveries, newest first, each with every attempt."""
    with uow:
        _get(caller, webhook_id, uow)
        rows = list(uow.session.scalars(select(Notification).where(
            Notification.channel == "webhook", Notification.target == str(webhook_id),
            Notification.household_id == caller.household_id,
        ).order_by(Notification.created_at.desc(), Notification.id.desc()).limit(LOG_MAX)))
        attempts = attempts_of([r.id for r in rows], uow)
        return [(row, attempts.get(row.id, [])) for row in rows]


def attempts_of(ids: list[uuid.UUID], uow: UnitOfWork) -> dict[uuid.UUID, list[DeliveryAttempt]]:
    """Every attempt of these notifications, in order (inside an open unit of work)."""
    found: dict[uuid.UUID, list[DeliveryAttempt]] = {}
    if ids:
        for attempt in uow.session.scalars(select(DeliveryAttempt).where(
                DeliveryAttempt.notification_id.in_(ids)).order_by(DeliveryAttempt.attempt,
                                                                   DeliveryAttempt.started_at)):
            found.setdefault(attempt.notification_id, []).append(attempt)
    return found

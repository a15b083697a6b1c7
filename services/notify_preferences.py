"""Who wants what: per person, per kind of notification, per channel; and the signed unsubscribe links of emails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain.notifications import CHANNELS, KINDS, matrix
from models.notifications import NotificationPreference
from services.errors import Invalid
from services.uow import UnitOfWork

#: Keeps unsubscribe signatures apart from every other use of the secret.
_PURPOSE = b"unsubscribe:"


def overrides_of(user_ids: list[uuid.UUID], uow: UnitOfWork) -> dict[uuid.UUID, dict[tuple[str, str], bool]]:
    """Each person's own choices (inside an open unit of work)."""
    found: dict[uuid.UUID, dict[tuple[str, str], bool]] = {user_id: {} for user_id in user_ids}
    if user_ids:
        for row in uow.session.scalars(select(NotificationPreference).where(
                NotificationPreference.user_id.in_(user_ids))):
            found[row.user_id][(row.kind, row.channel)] = row.enabled
    return found


def preferences(user_id: uuid.UUID, uow: UnitOfWork) -> dict[str, dict[str, bool]]:
    """Every kind and channel with the person's effective choice (theirs, else the default)."""
    with uow:
        return matrix(overrides_of([user_id], uow)[user_id])


def _check(changes: dict[str, dict[str, bool]]) -> None:
    for kind, channels in changes.items():
        if kind not in KINDS:
            raise Invalid(f"unknown kind {kind[:40]!r}: one of {', '.join(KINDS)}", field="preferences")
        for channel in channels:
            if channel not in CHANNELS:
                raise Invalid(f"unknown channel {channel[:20]!r} for {kind}: one of {', '.join(CHANNELS)}",
                              field="preferences")


def set_preferences(user_id: uuid.UUID, changes: dict[str, dict[str, bool]], uow: UnitOfWork
                    ) -> dict[str, dict[str, bool]]:
    """Set the given kinds and channels (the others keep their setting); the whole matrix after."""
    _check(changes)
    rows = [{"user_id": user_id, "kind": kind, "channel": channel, "enabled": on}
            for kind, channels in changes.items() for channel, on in channels.items()]
    with uow:
        if rows:
            stmt = insert(NotificationPreference).values(rows)
            uow.session.execute(stmt.on_conflict_do_update(index_elements=["user_id", "kind", "channel"],
                                                           set_={"enabled": stmt.excluded.enabled}))
        uow.commit()
        return matrix(overrides_of([user_id], uow)[user_id])


def _mac(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode(), _PURPOSE + message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:20]).decode().rstrip("=")


def unsubscribe_token(user_id: uuid.UUID, kind: str, secret: str) -> str:
    """A token that turns one kind of email off for one person, and nothing else."""
    message = f"{user_id}:{kind}".encode()
    return f"{base64.urlsafe_b64encode(message).decode().rstrip('=')}.{_mac(secret, message)}"


def read_unsubscribe_token(token: str, secret: str) -> tuple[uuid.UUID, str]:
    """(user, kind) of a genuine token; Invalid(field="token") otherwise."""
    try:
        encoded, mac = token.split(".", 1)
        message = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        if not hmac.compare_digest(mac, _mac(secret, message)):
            raise ValueError("bad signature")
        user, kind = message.decode().split(":", 1)
        if kind not in KINDS:
            raise ValueError("unknown kind")
        return uuid.UUID(user), kind
    except (ValueError, UnicodeDecodeError):
        raise Invalid("this unsubscribe link is not valid", field="token") from None


def unsubscribe(token: str, secret: str, uow: UnitOfWork) -> str:
    """Turn off the email of the token's kind for its person; the kind."""
    user_id, kind = read_unsubscribe_token(token, secret)
    set_preferences(user_id, {kind: {"email": False}}, uow)
    return kind

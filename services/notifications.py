"""Turning events into notifications: one row per (event, channel, recipient), whatever the redelivery; the inbox."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, and_, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from domain.notifications import DEFAULTS, enabled, notification_kind
from models.goals import GroupMember
from models.identity import HouseholdMember, User
from models.notifications import Notification, NotificationPreference, Webhook
from services.context import Caller
from services.errors import Invalid, NotFound
from services.notify_preferences import overrides_of
from services.notify_templates import Rendered, render
from services.uow import UnitOfWork

#: (user id, kind) -> the link that turns that kind of email off.
UnsubscribeUrl = Callable[[uuid.UUID, str], str]
#: Most notifications one page of the inbox holds.
PAGE_MAX = 200
#: The (household, kind) pairs, among some households and kinds, where a member turned the kind on (on any channel).
_OPTED_IN = text("SELECT DISTINCT m.household_id, p.kind FROM household_members m"
                 " JOIN notification_preferences p ON p.user_id = m.user_id"
                 " WHERE m.household_id = ANY(CAST(:households AS uuid[])) AND p.kind = ANY(CAST(:kinds AS varchar[]))"
                 " AND p.enabled")


def _audience(event: Event, kind: str, uow: UnitOfWork) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(household, user) of everyone to tell: the person concerned for personal kinds; a group's members, each in
    their own household, for a group's event; otherwise every member of the event's household."""
    household_id = uuid.UUID(event.household_id)
    if kind in ("welcome", "security"):
        return [(household_id, uuid.UUID(event.user_id))] if event.user_id else []
    if event.payload.get("group_id"):
        return list(uow.session.execute(select(User.household_id, GroupMember.user_id).join(
            User, User.id == GroupMember.user_id).where(GroupMember.group_id == uuid.UUID(event.payload["group_id"]))))
    return [(household_id, user_id) for user_id in uow.session.scalars(select(HouseholdMember.user_id).where(
        HouseholdMember.household_id == household_id))]


@dataclass(frozen=True)
class _Row:
    """What every row of one event shares."""

    event: Event
    kind: str
    now: dt.datetime

    def make(self, household_id: uuid.UUID, user_id: uuid.UUID, channel: str, content: Rendered, **extra: object
             ) -> dict:
        inbox = channel == "in_app"
        return dict(id=extra.pop("id", None) or uuid.uuid4(), household_id=household_id, user_id=user_id,
                    event_id=uuid.UUID(self.event.event_id), event_type=self.event.type, kind=self.kind,
                    channel=channel, target=extra.pop("target", ""), title=content.subject, body=content.text,
                    short=content.sms if channel == "sms" else None, status="sent" if inbox else "queued",
                    provider="inbox" if inbox else None, sent_at=self.now if inbox else None,
                    next_attempt_at=None if inbox else self.now, attempts=0,
                    event_occurred_at=dt.datetime.fromisoformat(self.event.occurred_at),
                    html=extra.pop("html", None), document=extra.pop("document", None))


def _personal_rows(base: _Row, uow: UnitOfWork, unsubscribe_url: UnsubscribeUrl) -> list[dict]:
    audience = _audience(base.event, base.kind, uow)
    users = {u.id: u for u in uow.session.scalars(select(User).where(User.id.in_([u for _, u in audience])))}
    overrides = overrides_of(list(users), uow)
    rows = []
    for household_id, user_id in audience:
        user = users.get(user_id)
        if user is None:
            continue
        content = render(base.event.type, base.event.payload, user.locale)
        for channel in ("in_app", "email", "sms"):
            if not enabled(base.kind, channel, overrides[user_id]) or (channel == "sms" and not user.phone):
                continue
            extra = {"html": content.html(unsubscribe_url(user_id, base.kind))} if channel == "email" else {}
            rows.append(base.make(household_id, user_id, channel, content, **extra))
    return rows


def _document(base: _Row, notification_id: uuid.UUID, content: Rendered) -> dict:
    event = base.event
    return {"id": str(notification_id), "event_id": event.event_id, "type": event.type, "kind": base.kind,
            "occurred_at": event.occurred_at, "household_id": event.household_id, "title": content.subject,
            "text": content.text, "data": event.payload}


def _webhook_rows(base: _Row, uow: UnitOfWork) -> list[dict]:
    household_id = uuid.UUID(base.event.household_id)
    hooks = [h for h in uow.session.scalars(select(Webhook).where(
        Webhook.household_id == household_id, Webhook.deleted_at.is_(None))) if not h.kinds or base.kind in h.kinds]
    overrides = overrides_of(list({h.user_id for h in hooks}), uow)
    content = render(base.event.type, base.event.payload, "en")
    rows = []
    for hook in hooks:
        if enabled(base.kind, "webhook", overrides[hook.user_id]):
            row_id = uuid.uuid4()
            rows.append(base.make(household_id, hook.user_id, "webhook", content, id=row_id, target=str(hook.id),
                                  document=_document(base, row_id, content)))
    return rows


def _anyone_opted_in(event: Event, kind: str, uow: UnitOfWork) -> bool:
    """For kinds off by default on every channel (each transaction): did any member turn one on? One indexed
    query, so the pool's work on every recorded transaction stays small."""
    if any(DEFAULTS[kind].values()):
        return True
    return uow.session.scalar(select(NotificationPreference.user_id).join(
        HouseholdMember, HouseholdMember.user_id == NotificationPreference.user_id).where(
        HouseholdMember.household_id == uuid.UUID(event.household_id), NotificationPreference.kind == kind,
        NotificationPreference.enabled.is_(True)).limit(1)) is not None


def _kind(event: Event) -> str | None:
    return notification_kind(event.type, event.payload)


def worth_notifying(events: list[Event], engine: Engine) -> list[Event]:
    """The events that may notify someone, in one query for a batch: those of a kind that notifies, of a household,
    and, for kinds off by default everywhere (each transaction), of a household where a member turned one on."""
    kinds = [(e, kind) for e in events if e.household_id is not None and (kind := _kind(e)) is not None]
    quiet = {(e.household_id, kind) for e, kind in kinds if not any(DEFAULTS[kind].values())}
    if not quiet:
        return [e for e, _ in kinds]
    # Every recorded transaction asks this, and almost always nobody opted in: one read on a bare connection, in
    # autocommit (no session to build, no transaction to open and roll back).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        opted = set(conn.execute(_OPTED_IN, {"households": list({uuid.UUID(h) for h, _ in quiet}),
                                             "kinds": list({k for _, k in quiet})}).tuples())
    return [e for e, kind in kinds if (e.household_id, kind) not in quiet
            or (uuid.UUID(e.household_id), kind) in opted]


def notify(event: Event, uow: UnitOfWork, unsubscribe_url: UnsubscribeUrl) -> list[uuid.UUID]:
    """Write one notification per (channel, recipient) the preferences ask for; the ids still waiting to be
    delivered (redelivered: the same rows, nothing new). Safe to run twice."""
    kind = _kind(event)
    if kind is None or event.household_id is None:
        return []
    base = _Row(event, kind, dt.datetime.now(dt.UTC))
    with uow:
        if not _anyone_opted_in(event, kind, uow):
            return []
        rows = _personal_rows(base, uow, unsubscribe_url) + _webhook_rows(base, uow)
        if rows:
            uow.session.execute(insert(Notification).values(rows).on_conflict_do_nothing(
                constraint="uq_notifications_event_recipient"))
        uow.commit()
        return list(uow.session.scalars(select(Notification.id).where(
            Notification.event_id == uuid.UUID(event.event_id), Notification.status == "queued")))


# --- the inbox -----------------------------------------------------------------------------------------------------


def encode_cursor(row: Notification) -> str:
    """The keyset cursor after a row (its creation time and id)."""
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        created, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return dt.datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("not a cursor this API gave out", field="cursor") from None


@dataclass(frozen=True)
class InboxQuery:
    """Which of the caller's notifications to list."""

    channel: str = "in_app"
    unread: bool | None = None
    status: str | None = None
    limit: int = 50
    cursor: str | None = None


def inbox(caller: Caller, uow: UnitOfWork, query: InboxQuery | None = None) -> tuple[list[Notification], str | None]:
    """The caller's notifications in the current household, newest first, one page; and the next page's cursor."""
    q = query or InboxQuery()
    stmt = select(Notification).where(Notification.user_id == caller.user_id,
                                      Notification.household_id == caller.household_id)
    if q.channel != "all":
        stmt = stmt.where(Notification.channel == q.channel)
    if q.unread is not None:
        stmt = stmt.where(Notification.read_at.is_(None) if q.unread else Notification.read_at.is_not(None))
    if q.status:
        stmt = stmt.where(Notification.status == q.status)
    if q.cursor:
        created, row_id = _decode_cursor(q.cursor)
        stmt = stmt.where(or_(Notification.created_at < created,
                              and_(Notification.created_at == created, Notification.id < row_id)))
    with uow:
        rows = list(uow.session.scalars(stmt.order_by(Notification.created_at.desc(), Notification.id.desc())
                                        .limit(q.limit + 1)))
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    return rows, encode_cursor(rows[-1]) if more else None


def mark(caller: Caller, notification_id: uuid.UUID, read: bool, uow: UnitOfWork) -> Notification:
    """Mark one of the caller's notifications read or unread."""
    with uow:
        row = uow.session.execute(update(Notification).where(
            Notification.id == notification_id, Notification.user_id == caller.user_id,
            Notification.household_id == caller.household_id, Notification.channel != "webhook",
        ).values(read_at=dt.datetime.now(dt.UTC) if read else None).returning(Notification)).scalar_one_or_none()
        if row is None:
            raise NotFound("no such notification")
        uow.commit()
        return row

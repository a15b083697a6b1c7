"""The inbox and every notification's status: GET /notifications (keyset pages), PATCH /notifications/{id}."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from domain.notifications import CHANNELS, STATUSES
from services import notifications
from services.notifications import PAGE_MAX, InboxQuery

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications",
                description="In-app inbox, and the status of every notification sent to you")


class NotificationOut(Schema):
    """One notification and where its delivery stands."""

    id = fields.UUID()
    event_id = fields.UUID()
    event_type = fields.String()
    kind = fields.String(allow_none=True)
    channel = fields.String()
    title = fields.String()
    body = fields.String()
    status = fields.String(metadata={"description": "queued, sending, sent, failed or skipped"})
    reason = fields.String(allow_none=True, metadata={"description": "why it failed or was skipped"})
    attempts = fields.Integer()
    provider = fields.String(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    read_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class NotificationList(Schema):
    """One page of the caller's notifications."""

    items = fields.List(fields.Nested(NotificationOut))
    next_cursor = fields.String(allow_none=True)


class InboxArgs(Schema):
    """Which notifications to list."""

    channel = fields.String(load_default="in_app", validate=validate.OneOf((*CHANNELS, "all")),
                            metadata={"description": "in_app (the inbox, default), email, sms, webhook or all"})
    unread = fields.Boolean(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=PAGE_MAX))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class MarkIn(Schema):
    """Read or unread."""

    read = fields.Boolean(required=True, truthy={True}, falsy={False})


@blp.route("")
class Inbox(MethodView):
    """The caller's notifications."""

    decorators = [auth_required()]

    @blp.arguments(InboxArgs, location="query")
    @blp.response(200, NotificationList)
    def get(self, args: dict) -> dict:
        """List notifications, newest first (the inbox by default; `channel` shows email, SMS or all)."""
        items, cursor = notifications.inbox(current_caller(), wiring.uow(), InboxQuery(**args))
        return {"items": items, "next_cursor": cursor}


@blp.route("/<uuid:notification_id>")
class NotificationById(MethodView):
    """One of the caller's notifications."""

    decorators = [auth_required(personal=True)]

    @blp.arguments(MarkIn)
    @blp.response(200, NotificationOut)
    def patch(self, data: dict, notification_id: uuid.UUID) -> object:
        """Mark a notification read or unread."""
        return notifications.mark(current_caller(), notification_id, data["read"], wiring.uow())

"""The in-app inbox."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from services import notifications

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications", description="In-app inbox")


class NotificationOut(Schema):
    """One notification."""

    id = fields.UUID()
    event_id = fields.UUID()
    event_type = fields.String()
    channel = fields.String()
    title = fields.String()
    body = fields.String()
    status = fields.String()
    read_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class NotificationList(Schema):
    """The caller's inbox."""

    items = fields.List(fields.Nested(NotificationOut))
    next_cursor = fields.String(allow_none=True)


@blp.route("")
class Inbox(MethodView):
    """The caller's in-app notifications."""

    decorators = [auth_required()]

    @blp.response(200, NotificationList)
    def get(self) -> dict:
        """List notifications, newest first."""
        return {"items": notifications.inbox(current_caller(), wiring.uow()), "next_cursor": None}

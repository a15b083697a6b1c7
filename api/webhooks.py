"""Outbound webhooks of the household: signed with HMAC-SHA256 over "timestamp.body", with a delivery log."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from config.settings import get_settings
from domain.notifications import KINDS
from models.notifications import DeliveryAttempt, Notification, Webhook
from services import webhooks

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks",
                description="Outbound webhooks: X-Finance-Signature: t=<unix>, v1=HMAC-SHA256(secret, t.body)")


class WebhookIn(Schema):
    """A new webhook."""

    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)), load_default=list,
                        metadata={"description": "kinds of notification delivered; empty: all"})


class WebhookOut(Schema):
    """A webhook (its secret only in the answer that created it)."""

    id = fields.String()
    url = fields.String()
    kinds = fields.List(fields.String())
    created_at = fields.String()
    secret = fields.String(metadata={"description": "shown once, at creation"})


class WebhookList(Schema):
    """The household's webhooks."""

    items = fields.List(fields.Nested(WebhookOut))
    next_cursor = fields.String(allow_none=True)


class AttemptOut(Schema):
    """One attempt at one delivery."""

    attempt = fields.Integer()
    outcome = fields.String()
    status_code = fields.Integer(allow_none=True)
    detail = fields.String(allow_none=True)
    retry_in_ms = fields.Integer(allow_none=True)
    started_at = fields.String()
    finished_at = fields.String()


class DeliveryOut(Schema):
    """One event delivered (or not) to the webhook, with every attempt."""

    id = fields.String()
    event_id = fields.String()
    event_type = fields.String()
    status = fields.String()
    reason = fields.String(allow_none=True)
    attempts = fields.List(fields.Nested(AttemptOut))
    created_at = fields.String()


class DeliveryList(Schema):
    """A webhook's latest deliveries, newest first."""

    items = fields.List(fields.Nested(DeliveryOut))
    next_cursor = fields.String(allow_none=True)


def webhook_out(hook: Webhook, secret: str | None = None) -> dict:
    """A webhook as the API shows it."""
    shown = {"id": str(hook.id), "url": hook.url, "kinds": list(hook.kinds or []),
             "created_at": hook.created_at.isoformat() if hook.created_at else None}
    return {**shown, "secret": secret} if secret else shown


def attempt_out(a: DeliveryAttempt) -> dict:
    """One attempt as the API shows it."""
    return {"attempt": a.attempt, "outcome": a.outcome, "status_code": a.status_code, "detail": a.detail,
            "retry_in_ms": a.retry_in_ms, "started_at": a.started_at.isoformat(),
            "finished_at": a.finished_at.isoformat()}


def delivery_out(row: Notification, attempts: list[DeliveryAttempt]) -> dict:
    """One delivery as the API shows it."""
    return {"id": str(row.id), "event_id": str(row.event_id), "event_type": row.event_type, "status": row.status,
            "reason": row.reason, "attempts": [attempt_out(a) for a in attempts],
            "created_at": row.created_at.isoformat()}


@blp.route("")
class Webhooks(MethodView):
    """The household's webhooks."""

    decorators = [auth_required()]

    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookOut)
    def post(self, data: dict) -> dict:
        """Add a webhook; the answer shows its signing secret, this once."""
        hook, secret = webhooks.create_webhook(current_caller(), data["url"], data["kinds"], wiring.uow(),
                                               get_settings().webhook_allow_private_addresses)
        return webhook_out(hook, secret)

    @blp.response(200, WebhookList)
    def get(self) -> dict:
        """List the household's webhooks (without secrets)."""
        return {"items": [webhook_out(h) for h in webhooks.list_webhooks(current_caller(), wiring.uow())],
                "next_cursor": None}


@blp.route("/<uuid:webhook_id>")
class WebhookById(MethodView):
    """One webhook."""

    decorators = [auth_required()]

    @blp.response(204)
    def delete(self, webhook_id: uuid.UUID) -> None:
        """Delete a webhook: nothing more is sent to it; its delivery log stays."""
        webhooks.delete_webhook(current_caller(), webhook_id, wiring.uow())


@blp.route("/<uuid:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    """The delivery log of one webhook."""

    decorators = [auth_required()]

    @blp.response(200, DeliveryList)
    def get(self, webhook_id: uuid.UUID) -> dict:
        """The latest 200 deliveries, newest first, with every attempt (status code, outcome, next retry)."""
        rows = webhooks.deliveries(current_caller(), webhook_id, wiring.uow())
        return {"items": [delivery_out(row, attempts) for row, attempts in rows], "next_cursor": None}

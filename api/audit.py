"""The caller's own activity from the audit archive."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="Audit trail")


class AuditOut(Schema):
    """One audited event."""

    event_id = fields.String()
    type = fields.String()
    version = fields.Integer()
    occurred_at = fields.String()
    user_id = fields.String()
    correlation_id = fields.String()
    causation_id = fields.String(allow_none=True)
    payload = fields.Dict()


class AuditList(Schema):
    """The household's audited events, newest first."""

    items = fields.List(fields.Nested(AuditOut))
    next_cursor = fields.String(allow_none=True)


@blp.route("")
class Audit(MethodView):
    """The household's audit trail."""

    decorators = [auth_required()]

    @blp.response(200, AuditList)
    def get(self) -> dict:
        """The household's audited activity, newest first (the latest 100); security events only your own."""
        caller = current_caller()
        return {"items": wiring.audit_store().for_household(str(caller.household_id), str(caller.user_id)),
                "next_cursor": None}

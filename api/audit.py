"""The audit trail: the caller's household's activity (GET /audit); every household's for admins (/admin/audit)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from domain.events import EXCHANGE_OF
from services.audit import MAX_PAGE, AuditPage, AuditQuery

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="Audit trail")


class Moment(fields.Field):
    """An ISO 8601 date or date-time (UTC unless it names an offset); a date alone is its day's start, or with
    `end_of_day` the next day's start, so `to=2026-11-30` includes that day."""

    default_error_messages = {"invalid": "must be an ISO 8601 date or date-time, such as 2026-11-01T12:00:00Z"}

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._end_of_day = end_of_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        text = value if isinstance(value, str) else ""
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if self._end_of_day else 0)
                return dt.datetime.combine(day, dt.time(), dt.UTC)
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise self.make_error("invalid") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class AuditFilters(Schema):
    """Filters and paging of the audit trail (newest first)."""

    types = fields.List(fields.String(validate=validate.OneOf(sorted(EXCHANGE_OF))), data_key="type",
                        load_default=list, validate=validate.Length(max=len(EXCHANGE_OF)))
    since = Moment(load_default=None, data_key="from")
    until = Moment(load_default=None, data_key="to", end_of_day=True)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = fields.String(load_default=None, validate=validate.Length(max=300))

    @validates_schema
    def _ordered(self, data: dict, **_: object) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("must be after from", field_name="to")


class AuditOut(Schema):
    """One audited event with its place in its household's hash chain."""

    event_id = fields.String()
    type = fields.String()
    version = fields.Integer()
    occurred_at = fields.String()
    household_id = fields.String(allow_none=True)
    user_id = fields.String(allow_none=True)
    correlation_id = fields.String()
    causation_id = fields.String(allow_none=True)
    origin = fields.Dict(allow_none=True, metadata={"description": "client_address and user_agent of the request"})
    payload = fields.Dict()
    seq = fields.Integer()
    hash = fields.String()


class AuditList(Schema):
    """A page of audited events, newest first."""

    items = fields.List(fields.Nested(AuditOut))
    next_cursor = fields.String(allow_none=True)


def audit_page(filters: dict, household_id: str | None = None, viewer_id: str | None = None) -> dict:
    """One page of the audit trail as the API answers it."""
    page: AuditPage = wiring.audit_store().query(AuditQuery(
        household_id=household_id, viewer_id=viewer_id, types=tuple(filters["types"]), since=filters["since"],
        until=filters["until"], cursor=filters["cursor"], limit=filters["limit"]))
    return {"items": page.items, "next_cursor": page.next_cursor}


@blp.route("")
class Audit(MethodView):
    """The household's audit trail."""

    decorators = [auth_required()]

    @blp.arguments(AuditFilters, location="query")
    @blp.response(200, AuditList)
    def get(self, filters: dict) -> dict:
        """The household's audited activity, newest first.

        Others' security events and request origins left out. Filter by `type` (repeatable), `from`, `to`; page with
        `cursor`."""
        caller = current_caller()
        return audit_page(filters, str(caller.household_id), str(caller.user_id))

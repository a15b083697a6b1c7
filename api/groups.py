"""Group savings challenges: people of any household saving toward one target; only members see a group."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import request, url_for
from flask.views import MethodView
from marshmallow import Schema, fields, validate, validates

from api.goals import (
    ContributionAccepted,
    ContributionIn,
    MoneyIn,
    MoneyOut,
    check_target_date,
    money,
    send_to_pool,
)
from api.schemas import Blueprint, Line
from api.security import auth_required, current_caller
from config import wiring
from services import groups
from services.fx_rates import default_rates
from services.groups import GroupView

blp = Blueprint("groups", __name__, url_prefix="/api/v1/groups", description="Group savings challenges")


class GroupIn(Schema):
    """A new group savings challenge (the target's currency defaults to your household's base currency)."""

    name = Line(required=True, validate=validate.Length(min=1, max=100))
    target = fields.Nested(MoneyIn, required=True)
    target_date = fields.Date(load_default=None)

    @validates("target_date")
    def _future(self, value: dt.date | None, **_: object) -> None:
        if value is not None:
            check_target_date(value)


class GroupMemberIn(Schema):
    """Someone to invite, by the email they registered with (any household)."""

    email = fields.Email(required=True, validate=validate.Length(max=320))


class MemberProgressOut(Schema):
    """One member's part of the group's savings."""

    user_id = fields.String()
    name = fields.String()
    role = fields.String()
    total = fields.Nested(MoneyOut)
    percent = fields.String(metadata={"description": "the member's total as a percentage of the group's target"})
    contributions = fields.Integer()


class GroupOut(Schema):
    """A group with the group's progress and each member's."""

    id = fields.String()
    name = fields.String()
    creator_id = fields.String()
    target = fields.Nested(MoneyOut)
    target_date = fields.String(allow_none=True)
    created_at = fields.String()
    total = fields.Nested(MoneyOut)
    remaining = fields.Nested(MoneyOut)
    percent = fields.String()
    status = fields.String(metadata={"description": "on_track, behind or reached"})
    suggested_monthly_contribution = fields.Nested(MoneyOut, allow_none=True)
    reached_at = fields.String(allow_none=True)
    members = fields.List(fields.Nested(MemberProgressOut))
    former_members_total = fields.Nested(MoneyOut, metadata={
        "description": "what members who have left put in: still counted in total, no longer listed"})
    pending_contributions = fields.Integer()
    sequence = fields.Integer(metadata={"description": "recorded contributions; live updates carry the same count"})


class GroupList(Schema):
    """The groups you are a member of."""

    items = fields.List(fields.Nested(GroupOut))
    next_cursor = fields.String(allow_none=True)


def group_out(view: GroupView) -> dict:
    """A group as its members see it."""
    group, p, currency = view.group, view.progress, view.group.currency
    return {"id": str(group.id), "name": group.name, "creator_id": str(group.creator_id),
            "target": money(group.target_amount, currency),
            "target_date": group.target_date.isoformat() if group.target_date else None,
            "created_at": group.created_at.isoformat(), "total": money(p.saved, currency),
            "remaining": money(p.remaining, currency), "percent": str(p.percent), "status": p.status,
            "suggested_monthly_contribution": money(p.monthly, currency) if group.target_date else None,
            "reached_at": group.reached_at.isoformat() if group.reached_at else None,
            "members": [{"user_id": str(m.user_id), "name": m.name, "role": m.role, "total": money(m.total, currency),
                         "percent": str(m.percent), "contributions": m.contributions} for m in view.members],
            "former_members_total": money(view.former_members_total, currency),
            "pending_contributions": view.pending, "sequence": view.sequence}


@blp.route("")
class Groups(MethodView):
    """Your group savings challenges."""

    decorators = [auth_required(personal=True)]

    @blp.arguments(GroupIn)
    @blp.response(201, GroupOut)
    def post(self, data: dict) -> dict:
        """Start a group savings challenge; you are its creator and first member."""
        caller = current_caller()
        target = data["target"]
        return group_out(groups.create_group(caller, data["name"], target["amount"],
                                             target["currency"] or caller.base_currency, data["target_date"],
                                             wiring.uow()))

    @blp.response(200, GroupList)
    def get(self) -> dict:
        """List the groups you are a member of."""
        return {"items": [group_out(v) for v in groups.list_groups(current_caller(), wiring.uow())],
                "next_cursor": None}


@blp.route("/<uuid:group_id>")
class GroupById(MethodView):
    """One group savings challenge."""

    decorators = [auth_required(personal=True)]

    @blp.response(200, GroupOut)
    def get(self, group_id: uuid.UUID) -> dict:
        """Show a group: its total, each member's total and percent of the target (members only; 404 otherwise)."""
        return group_out(groups.get_group(current_caller(), group_id, wiring.uow()))


@blp.route("/<uuid:group_id>/members")
class GroupMembers(MethodView):
    """Who takes part."""

    decorators = [auth_required(personal=True)]

    @blp.arguments(GroupMemberIn)
    @blp.response(201, GroupOut)
    def post(self, data: dict, group_id: uuid.UUID) -> dict:
        """Invite a registered user of any household (the group's creator only)."""
        return group_out(groups.add_member(current_caller(), group_id, data["email"], wiring.uow()))


@blp.route("/<uuid:group_id>/members/<uuid:user_id>")
class GroupMemberById(MethodView):
    """One person in a group."""

    decorators = [auth_required(personal=True)]

    @blp.response(204)
    def delete(self, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Leave a group (your own user id) or, as its creator, remove another member.

        What they contributed stays
        in the group's total (shown as `former_members_total`); they no longer see the group (404), contribute to
        it or get its live updates and notifications, and an open live socket of theirs is closed. The creator
        cannot leave (409: groups cannot be deleted); a member removing someone else gets 403; a group you are no
        member of, or a user who is no member of it, 404."""
        groups.remove_member(current_caller(), group_id, user_id, wiring.uow())


@blp.route("/<uuid:group_id>/contributions")
class GroupContributions(MethodView):
    """Money members put toward the group's target."""

    decorators = [auth_required(personal=True)]

    @blp.arguments(ContributionIn)
    @blp.response(202, ContributionAccepted)
    def post(self, data: dict, group_id: uuid.UUID) -> tuple[dict, int, dict]:
        """Contribute to the group (202: the pool counts it and every member's live feed shows it).

        The same Idempotency-Key again changes nothing. Another currency is converted as for goals."""
        contribution_id, _ = groups.submit_group_contribution(
            current_caller(), group_id, data, request.headers.get("Idempotency-Key"), wiring.uow(),
            send_to_pool("record_group_contribution_command"), default_rates())
        location = url_for("groups.GroupById", group_id=group_id)
        return {"id": str(contribution_id), "status": "pending"}, 202, {"Location": location}

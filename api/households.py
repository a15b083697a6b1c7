"""Households and their members."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from models.identity import MEMBER_ROLES
from services import households

blp = Blueprint("households", __name__, url_prefix="/api/v1/households", description="Households and members")


class MemberIn(Schema):
    """Someone to add, by the email they registered with."""

    email = fields.Email(required=True, validate=validate.Length(max=320))
    role = fields.String(required=True, validate=validate.OneOf(MEMBER_ROLES))


class RoleIn(Schema):
    """A member's new role."""

    role = fields.String(required=True, validate=validate.OneOf(MEMBER_ROLES))


class MemberOut(Schema):
    """A household member."""

    user_id = fields.String()
    name = fields.String()
    email = fields.String()
    role = fields.String()


class HouseholdOut(Schema):
    """A household as one of its members sees it."""

    id = fields.String()
    name = fields.String()
    base_currency = fields.String()
    role = fields.String()
    members = fields.List(fields.Nested(MemberOut))


class HouseholdList(Schema):
    """The households the caller belongs to."""

    items = fields.List(fields.Nested(HouseholdOut))
    next_cursor = fields.String(allow_none=True)


def member_out(member: households.Member) -> dict:
    """A member as the API shows it."""
    return {"user_id": str(member.user_id), "name": member.name, "email": member.email, "role": member.role}


@blp.route("")
class Households(MethodView):
    """The caller's households (send X-Household-ID to act in one other than your own)."""

    decorators = [auth_required(personal=True)]

    @blp.response(200, HouseholdList)
    def get(self) -> dict:
        """List the households you belong to."""
        items = [{"id": str(m.household.id), "name": m.household.name, "base_currency": m.household.base_currency,
                  "role": m.role} for m in households.memberships(current_caller(), wiring.uow())]
        return {"items": items, "next_cursor": None}


@blp.route("/<uuid:household_id>")
class HouseholdById(MethodView):
    """One household."""

    decorators = [auth_required(personal=True)]

    @blp.response(200, HouseholdOut)
    def get(self, household_id: uuid.UUID) -> dict:
        """Show a household you belong to, with its members."""
        household, role, people = households.members(current_caller(), household_id, wiring.uow())
        return {"id": str(household.id), "name": household.name, "base_currency": household.base_currency,
                "role": role, "members": [member_out(p) for p in people]}


@blp.route("/<uuid:household_id>/members")
class Members(MethodView):
    """Who belongs to a household."""

    decorators = [auth_required(personal=True)]

    @blp.arguments(MemberIn)
    @blp.response(201, MemberOut)
    def post(self, data: dict, household_id: uuid.UUID) -> dict:
        """Add a registered user as owner, member or viewer (owners only)."""
        return member_out(households.add_member(current_caller(), household_id, data["email"], data["role"],
                                                wiring.uow()))


@blp.route("/<uuid:household_id>/members/<uuid:user_id>")
class MemberById(MethodView):
    """One member of a household."""

    decorators = [auth_required(personal=True)]

    @blp.arguments(RoleIn)
    @blp.response(204)
    def patch(self, data: dict, household_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Change a member's role (owners only)."""
        households.change_role(current_caller(), household_id, user_id, data["role"], wiring.uow())

    @blp.response(204)
    def delete(self, household_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a member (owners only; never the last owner)."""
        households.remove_member(current_caller(), household_id, user_id, wiring.uow())

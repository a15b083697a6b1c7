"""Administration: users and their platform roles (admins only)."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate

from api.audit import AuditFilters, AuditList, audit_page
from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from models.identity import USER_ROLES, User
from services import users

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Administration (admins only)")


class AdminUserOut(Schema):
    """A user as administrators see it (never a password, hash or phone)."""

    id = fields.String()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    household_id = fields.String()
    created_at = fields.String()
    last_login_at = fields.String(allow_none=True)


class AdminUserList(Schema):
    """Users, newest first."""

    items = fields.List(fields.Nested(AdminUserOut))
    next_cursor = fields.String(allow_none=True)


class RolesIn(Schema):
    """A user's platform roles: exactly one of user or admin."""

    roles = fields.List(fields.String(validate=validate.OneOf(USER_ROLES)), required=True,
                        validate=validate.Length(equal=1, error="give exactly one role"))


class GrantIn(Schema):
    """Grant a platform role to a user."""

    user_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=validate.OneOf(USER_ROLES))


class ListQuery(Schema):
    """How many users to list."""

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


def admin_user_out(user: User) -> dict:
    """A user as administrators see it."""
    return {"id": str(user.id), "email": user.email, "name": user.name, "role": user.role,
            "household_id": str(user.household_id), "created_at": user.created_at.isoformat(),
            "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None}


@blp.route("/users")
class AdminUsers(MethodView):
    """All users."""

    decorators = [auth_required(admin=True, personal=True)]

    @blp.arguments(ListQuery, location="query")
    @blp.response(200, AdminUserList)
    def get(self, query: dict) -> dict:
        """List users, newest first."""
        return {"items": [admin_user_out(u) for u in users.list_users(query["limit"], wiring.uow())],
                "next_cursor": None}


@blp.route("/users/<uuid:user_id>/roles")
class AdminUserRoles(MethodView):
    """A user's platform role."""

    decorators = [auth_required(admin=True, personal=True)]

    @blp.arguments(RolesIn)
    @blp.response(200, AdminUserOut)
    def put(self, data: dict, user_id: uuid.UUID) -> dict:
        """Set a user's role (audited as RoleChanged)."""
        return admin_user_out(users.set_role(current_caller(), user_id, data["roles"][0], wiring.uow()))


@blp.route("/roles")
class AdminRoles(MethodView):
    """Role grants."""

    decorators = [auth_required(admin=True, personal=True)]

    @blp.arguments(GrantIn)
    @blp.response(200, AdminUserOut)
    def post(self, data: dict) -> dict:
        """Grant a role to a user (audited as RoleChanged)."""
        if data["role"] not in USER_ROLES:
            raise ValidationError({"role": ["unknown role"]})
        return admin_user_out(users.set_role(current_caller(), data["user_id"], data["role"], wiring.uow()))


class AdminAuditFilters(AuditFilters):
    """The audit trail's filters, plus one household."""

    household_id = fields.UUID(load_default=None)


@blp.route("/audit")
class AdminAudit(MethodView):
    """Every household's audit trail."""

    decorators = [auth_required(admin=True, personal=True)]

    @blp.arguments(AdminAuditFilters, location="query")
    @blp.response(200, AuditList)
    def get(self, filters: dict) -> dict:
        """Every audited event, newest first, with request origins.

        All households and the platform. Filter by `household_id`, `type` (repeatable), `from`, `to`; page with
        `cursor`."""
        household = filters["household_id"]
        return audit_page(filters, str(household) if household else None)

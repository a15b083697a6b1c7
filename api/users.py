"""The caller's own profile."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate

from api.schemas import Blueprint, Currency, Line, TimeZone
from api.security import auth_required, current_caller
from config import wiring
from models.identity import User
from services import users
from services.notify_templates import is_locale

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Your profile")

#: E.164: a plus, then up to 15 digits.
E164 = r"\A\+[1-9][0-9]{6,14}\Z"


def masked(phone: str | None) -> str | None:
    """A phone number as responses show it: never in full."""
    return None if not phone else phone[:3] + "*" * (len(phone) - 6) + phone[-3:]


def _known_locale(value: str) -> None:
    if not is_locale(value):
        raise ValidationError("unknown locale: use one such as en, de_DE or fr_CH")


class ProfileIn(Schema):
    """What a user may change about themselves (role, ids and dates are not among it)."""

    name = Line(validate=validate.Length(min=1, max=100))
    phone = fields.String(allow_none=True, validate=validate.Regexp(E164, error="phone must be E.164"))
    base_currency = Currency()
    timezone = TimeZone()
    locale = fields.String(validate=[validate.Length(min=2, max=16), _known_locale])


class ProfileOut(Schema):
    """The caller's profile."""

    id = fields.String()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    household_id = fields.String()
    base_currency = fields.String()
    phone = fields.String(allow_none=True)
    timezone = fields.String()
    locale = fields.String()
    created_at = fields.String()


def profile_out(user: User, base_currency: str) -> dict:
    """A profile as the API shows it: the phone masked."""
    return {"id": str(user.id), "email": user.email, "name": user.name, "role": user.role,
            "household_id": str(user.household_id), "base_currency": base_currency, "phone": masked(user.phone),
            "timezone": user.timezone, "locale": user.locale,
            "created_at": user.created_at.isoformat()}


@blp.route("/me")
class Me(MethodView):
    """The caller's own profile."""

    decorators = [auth_required(personal=True)]

    @blp.response(200, ProfileOut)
    def get(self) -> dict:
        """Show your profile."""
        caller = current_caller()
        return profile_out(users.profile(caller, wiring.uow()), caller.base_currency)

    @blp.arguments(ProfileIn)
    @blp.response(200, ProfileOut)
    def patch(self, data: dict) -> dict:
        """Change your name or phone."""
        caller = current_caller()
        return profile_out(users.update_profile(caller, data, wiring.uow()),
                           data.get("base_currency") or caller.base_currency)

"""Register and log in."""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_jwt_extended import create_access_token, create_refresh_token
from marshmallow import Schema, fields, validate

from api.schemas import Blueprint, Currency, Line
from config import wiring
from config.settings import get_settings
from services import identity

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Register and log in")

#: E.164: a plus, then up to 15 digits (\Z, not $: a trailing newline is not part of a phone number).
E164 = r"\A\+[1-9][0-9]{6,14}\Z"
#: Longest name: the household is named after its first user ("<name>'s household", at most 200 characters).
NAME_MAX = 100
#: Longest password accepted at registration, so longer ones can never log in.
PASSWORD_MAX = 200


class RegisterIn(Schema):
    """What a person gives to register."""

    email = fields.Email(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=10, max=PASSWORD_MAX))
    name = Line(required=True, validate=validate.Length(min=1, max=NAME_MAX))
    base_currency = Currency(load_default="EUR")
    phone = fields.String(load_default=None,
                          validate=validate.Regexp(E164, error="phone must be E.164, e.g. +4930123456"))


class UserOut(Schema):
    """A user as others may see it: never a password or hash."""

    id = fields.UUID()
    email = fields.String()
    name = fields.String()
    household_id = fields.UUID()
    role = fields.String()
    created_at = fields.DateTime()


class LoginIn(Schema):
    """Credentials."""

    email = Line(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX))


class TokensOut(Schema):
    """Bearer tokens."""

    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


@blp.route("/register")
class Register(MethodView):
    """Create a user with a personal household."""

    @blp.arguments(RegisterIn)
    @blp.response(201, UserOut)
    def post(self, data: dict) -> object:
        """Register a new user."""
        reg = identity.Registration(correlation_id=g.request_id, **data)
        return identity.register(reg, wiring.uow())


@blp.route("/login")
class Login(MethodView):
    """Exchange credentials for tokens."""

    @blp.arguments(LoginIn)
    @blp.response(200, TokensOut)
    def post(self, data: dict) -> dict:
        """Log in."""
        user = identity.authenticate(data["email"], data["password"], wiring.uow())
        claims = {"household_id": str(user.household_id), "role": user.role}
        return {
            "access_token": create_access_token(str(user.id), additional_claims=claims),
            "refresh_token": create_refresh_token(str(user.id), additional_claims=claims),
            "token_type": "Bearer",
            "expires_in": get_settings().access_token_minutes * 60,
        }

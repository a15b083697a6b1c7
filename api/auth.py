"""Register, log in, refresh, log out."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import g, request
from flask.views import MethodView
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    decode_token,
    get_jwt,
    verify_jwt_in_request,
)
from marshmallow import Schema, fields, validate

from api.observability import MAX_USER_AGENT
from api.schemas import Blueprint, Currency, Line, TimeZone
from api.security import auth_required, blocklist, current_caller
from config import wiring
from config.settings import get_settings
from domain.devices import Device
from services import identity, tokens, users
from services.errors import Invalid, Unauthorized
from services.ratelimit import rate_limits

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Register, log in, refresh and log out")

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
    timezone = TimeZone(load_default="UTC")
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
        reg = identity.Registration(correlation_id=g.request_id, device=_client_device(), **data)
        return identity.register(reg, wiring.uow())


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _client_device() -> Device:
    # The User-Agent as the audit trail keeps it (cut to its length), so `backfill-devices` finds the same devices.
    return Device(_client_address(), request.headers.get("User-Agent", "")[:MAX_USER_AGENT])


def issue_tokens(user_id: uuid.UUID, family_id: uuid.UUID) -> dict:
    """A new access and refresh token pair in a login session; the refresh token is remembered."""
    claims = {"fam": str(family_id)}
    refresh = create_refresh_token(str(user_id), additional_claims=claims)
    decoded = decode_token(refresh)
    tokens.remember_refresh(family_id, decoded["jti"], dt.datetime.fromtimestamp(decoded["exp"], dt.UTC),
                            wiring.uow())
    return {"access_token": create_access_token(str(user_id), additional_claims=claims), "refresh_token": refresh,
            "token_type": "Bearer", "expires_in": get_settings().access_token_minutes * 60}


@blp.route("/login")
class Login(MethodView):
    """Exchange credentials for tokens."""

    @blp.arguments(LoginIn)
    @blp.response(200, TokensOut)
    def post(self, data: dict) -> dict:
        """Log in (failed attempts are limited per account and per address: 429 with Retry-After).

        A sign-in from a device or network not seen before is announced by email, SMS and in the inbox."""
        email, address = data["email"], _client_address()
        rate_limits().check_login(email, address)
        try:
            user = identity.authenticate(email, data["password"], wiring.uow())
        except Unauthorized:
            rate_limits().login_failed(email, address)
            identity.record_login(email, False, _client_device(), g.request_id, wiring.uow())
            raise
        rate_limits().login_succeeded(email)
        identity.record_login(email, True, _client_device(), g.request_id, wiring.uow())
        return issue_tokens(user.id, tokens.open_family(user.id, wiring.uow()))


@blp.route("/refresh")
class Refresh(MethodView):
    """Rotate a refresh token."""

    @blp.response(200, TokensOut)
    def post(self) -> dict:
        """New access and refresh tokens for a refresh token, which is spent; reusing it revokes the session."""
        verify_jwt_in_request(refresh=True)
        claims = get_jwt()
        user_id, family_id = uuid.UUID(claims["sub"]), uuid.UUID(claims["fam"])
        tokens.use_refresh(claims["jti"], family_id, user_id, g.request_id, wiring.uow())
        return issue_tokens(user_id, family_id)


@blp.route("/logout")
class Logout(MethodView):
    """End this session."""

    @auth_required(personal=True, jwt_only=True)
    @blp.response(204)
    def post(self) -> None:
        """Log out: this access token and its refresh token stop working."""
        caller = current_caller()
        blocklist(get_jwt()["jti"], get_jwt()["exp"])
        tokens.revoke_family(caller.family_id, caller.user_id, "logged out", caller.correlation_id, wiring.uow())


class PasswordChangeIn(Schema):
    """The current password and the new one."""

    current_password = fields.String(required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX))
    new_password = fields.String(required=True, load_only=True, validate=validate.Length(min=10, max=PASSWORD_MAX))


@blp.route("/password")
class PasswordChange(MethodView):
    """Change your password."""

    @auth_required(personal=True, jwt_only=True)
    @blp.arguments(PasswordChangeIn)
    @blp.response(204)
    def post(self, data: dict) -> None:
        """Change your password.

        The current one is checked and wrong guesses count as failed logins; you are told by email, SMS and in the
        inbox."""
        caller, address = current_caller(), _client_address()
        email = users.profile(caller, wiring.uow()).email
        rate_limits().check_login(email, address)
        try:
            users.change_password(caller, data["current_password"], data["new_password"], wiring.uow())
        except Invalid as exc:
            if exc.field == "current_password":
                rate_limits().login_failed(email, address)
            raise


@blp.route("/logout-all")
class LogoutEverywhere(MethodView):
    """End every session."""

    @auth_required(personal=True, jwt_only=True)
    @blp.response(204)
    def post(self) -> None:
        """Log out everywhere: every access and refresh token issued so far stops working."""
        caller = current_caller()
        blocklist(get_jwt()["jti"], get_jwt()["exp"])
        tokens.revoke_everywhere(caller.user_id, caller.correlation_id, wiring.uow())

"""JWT set-up and the caller of each request: user, household, base currency, request id."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import Flask, g
from flask_jwt_extended import JWTManager, get_jwt, get_jwt_identity
from flask_jwt_extended import jwt_required as _jwt_required

from api.errors import error_body
from config import wiring
from config.settings import Settings
from models.identity import Household
from services.context import Caller
from services.errors import Unauthorized

#: Every protected view is decorated with this.
jwt_required = _jwt_required


def install(app: Flask, settings: Settings) -> None:
    """Configure flask-jwt-extended; its errors answer in the API's one shape."""
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=dt.timedelta(minutes=settings.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=dt.timedelta(days=settings.refresh_token_days),
        JWT_ERROR_MESSAGE_KEY="message",
    )
    jwt = JWTManager(app)

    def unauthorized(reason: str) -> tuple[dict, int]:
        return error_body(401, reason), 401

    jwt.unauthorized_loader(lambda reason: unauthorized(f"authentication required: {reason}"))
    jwt.invalid_token_loader(lambda reason: unauthorized(f"invalid token: {reason}"))
    jwt.expired_token_loader(lambda header, payload: unauthorized("the token has expired"))
    jwt.needs_fresh_token_loader(lambda header, payload: unauthorized("a fresh token is required"))
    jwt.revoked_token_loader(lambda header, payload: unauthorized("the token has been revoked"))
    jwt.user_lookup_error_loader(lambda header, payload: unauthorized("the user no longer exists"))


def current_caller() -> Caller:
    """The authenticated caller of this request (after @jwt_required)."""
    if "caller" not in g:
        household_id = uuid.UUID(get_jwt()["household_id"])
        with wiring.session_factory()() as session:
            household = session.get(Household, household_id)
        if household is None:
            raise Unauthorized("the household no longer exists")
        g.caller = Caller(uuid.UUID(get_jwt_identity()), household_id, household.base_currency,
                          g.get("request_id", ""))
    return g.caller

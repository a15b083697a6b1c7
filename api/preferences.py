"""Notification preferences per kind and channel, and the public unsubscribe link of emails."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from config.settings import get_settings
from domain.notifications import CHANNELS, KINDS
from services import notify_preferences

blp = Blueprint("notification_preferences", __name__, url_prefix="/api/v1/notification-preferences",
                description="Which notifications you get, on which channel")

_CHANNELS = fields.Dict(keys=fields.String(validate=validate.OneOf(CHANNELS)), values=fields.Boolean())


class PreferencesIn(Schema):
    """Kinds and channels to set; the ones not named keep their setting."""

    preferences = fields.Dict(keys=fields.String(validate=validate.OneOf(KINDS)), values=_CHANNELS, required=True,
                              metadata={"description": 'e.g. {"security": {"sms": false}, "transaction": '
                                                       '{"in_app": true}}'})


class PreferencesOut(Schema):
    """Every kind with every channel on or off."""

    preferences = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Boolean()))
    channels = fields.List(fields.String())
    kinds = fields.List(fields.String())


class UnsubscribeArgs(Schema):
    """The token from an email's link."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=300))


class Unsubscribed(Schema):
    """What was turned off."""

    kind = fields.String()
    channel = fields.String()
    enabled = fields.Boolean()


def preferences_out(matrix: dict) -> dict:
    """Preferences as the API shows them."""
    return {"preferences": matrix, "channels": list(CHANNELS), "kinds": list(KINDS)}


@blp.route("")
class Preferences(MethodView):
    """The caller's own notification preferences."""

    decorators = [auth_required(personal=True)]

    @blp.response(200, PreferencesOut)
    def get(self) -> dict:
        """Every kind of notification and its channels (your choices, else the defaults)."""
        return preferences_out(notify_preferences.preferences(current_caller().user_id, wiring.uow()))

    @blp.arguments(PreferencesIn)
    @blp.response(200, PreferencesOut)
    def put(self, data: dict) -> dict:
        """Turn channels on or off per kind (SMS needs a phone number on your profile)."""
        return preferences_out(notify_preferences.set_preferences(current_caller().user_id, data["preferences"],
                                                                  wiring.uow()))


@blp.route("/unsubscribe")
class Unsubscribe(MethodView):
    """The link at the bottom of every email: no login, the signed token says who and what."""

    @blp.arguments(UnsubscribeArgs, location="query")
    @blp.response(200, Unsubscribed)
    def get(self, args: dict) -> dict:
        """Stop emails of one kind (the token's)."""
        kind = notify_preferences.unsubscribe(args["token"], get_settings().jwt_secret_key, wiring.uow())
        return {"kind": kind, "channel": "email", "enabled": False}

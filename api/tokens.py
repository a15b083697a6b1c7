"""Personal access tokens for scripts."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.schemas import Blueprint, Line
from api.security import auth_required, current_caller
from config import wiring
from models.identity import PersonalAccessToken
from services import tokens

blp = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens", description="Personal access tokens")


class TokenIn(Schema):
    """A new token."""

    name = Line(required=True, validate=validate.Length(min=1, max=100))
    scope = fields.String(required=True, validate=validate.OneOf(tokens.PAT_SCOPES))


class TokenOut(Schema):
    """A token; `token` (the secret) appears only in the answer that created it."""

    id = fields.String()
    name = fields.String()
    scope = fields.String()
    prefix = fields.String()
    household_id = fields.String()
    created_at = fields.String()
    last_used_at = fields.String(allow_none=True)
    revoked_at = fields.String(allow_none=True)
    token = fields.String()


class TokenList(Schema):
    """The caller's tokens."""

    items = fields.List(fields.Nested(TokenOut))
    next_cursor = fields.String(allow_none=True)


def token_out(record: PersonalAccessToken) -> dict:
    """A token without its secret."""
    def when(value: object) -> str | None:
        return value.isoformat() if value else None

    return {"id": str(record.id), "name": record.name, "scope": record.scope, "prefix": record.prefix,
            "household_id": str(record.household_id), "created_at": when(record.created_at),
            "last_used_at": when(record.last_used_at), "revoked_at": when(record.revoked_at)}


@blp.route("")
class Tokens(MethodView):
    """Your personal access tokens (managed with a login, never with a token)."""

    decorators = [auth_required(personal=True, jwt_only=True)]

    @blp.arguments(TokenIn)
    @blp.response(201, TokenOut)
    def post(self, data: dict) -> dict:
        """Create a token for the current household; copy `token` now, it is never shown again."""
        created = tokens.create_pat(current_caller(), data["name"], data["scope"], wiring.uow())
        return {**token_out(created.record), "token": created.secret}

    @blp.response(200, TokenList)
    def get(self) -> dict:
        """List your tokens."""
        return {"items": [token_out(t) for t in tokens.list_pats(current_caller(), wiring.uow())],
                "next_cursor": None}


@blp.route("/<uuid:token_id>")
class TokenById(MethodView):
    """One token."""

    decorators = [auth_required(personal=True, jwt_only=True)]

    @blp.response(204)
    def delete(self, token_id: uuid.UUID) -> None:
        """Revoke a token."""
        tokens.revoke_pat(current_caller(), token_id, wiring.uow())

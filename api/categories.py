"""Categories of the caller's household."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from services import accounts

blp = Blueprint("categories", __name__, url_prefix="/api/v1/categories", description="Categories")


class CategoryOut(Schema):
    """A category."""

    id = fields.UUID()
    name = fields.String()
    parent_id = fields.UUID(allow_none=True)


class CategoryList(Schema):
    """The household's categories."""

    items = fields.List(fields.Nested(CategoryOut))
    next_cursor = fields.String(allow_none=True)


@blp.route("")
class Categories(MethodView):
    """The household's categories."""

    decorators = [auth_required()]

    @blp.response(200, CategoryList)
    def get(self) -> dict:
        """List categories."""
        return {"items": accounts.list_categories(current_caller(), wiring.uow()), "next_cursor": None}

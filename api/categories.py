"""Categories of the caller's household: a hierarchy that can be renamed, moved and merged."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.schemas import Blueprint, Line
from api.security import auth_required, current_caller
from config import wiring
from services import accounts, categories

blp = Blueprint("categories", __name__, url_prefix="/api/v1/categories", description="Categories")


class CategoryIn(Schema):
    """A new category."""

    name = Line(required=True, validate=validate.Length(min=1, max=100))
    parent_id = fields.UUID(load_default=None, allow_none=True)


class CategoryPatch(Schema):
    """Rename or move a category."""

    name = Line(validate=validate.Length(min=1, max=100))
    parent_id = fields.UUID(allow_none=True)


class DeleteQuery(Schema):
    """Where a deleted category's transactions, budgets and rules go."""

    merge_into = fields.UUID(load_default=None)


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

    @blp.arguments(CategoryIn)
    @blp.response(201, CategoryOut)
    def post(self, data: dict) -> object:
        """Create a category, optionally below another (children count toward their parent's budget)."""
        return categories.create(current_caller(), data["name"], data["parent_id"], wiring.uow())


@blp.route("/<uuid:category_id>")
class CategoryById(MethodView):
    """One category."""

    decorators = [auth_required()]

    @blp.arguments(CategoryPatch)
    @blp.response(200, CategoryOut)
    def patch(self, data: dict, category_id: uuid.UUID) -> object:
        """Rename a category or move it below another."""
        return categories.change(current_caller(), category_id, data, wiring.uow())

    @blp.arguments(DeleteQuery, location="query")
    @blp.response(204)
    def delete(self, query: dict, category_id: uuid.UUID) -> None:
        """Delete a category; `?merge_into=<id>` moves its transactions, budgets, rules and children first."""
        categories.remove(current_caller(), category_id, query["merge_into"], wiring.uow())

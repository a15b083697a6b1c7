"""Categorization rules of the caller's household."""

from __future__ import annotations

import uuid

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.schemas import Blueprint, Line
from api.security import auth_required, current_caller
from config import wiring
from models.ledger import Rule
from services import rules

blp = Blueprint("rules", __name__, url_prefix="/api/v1/rules", description="Categorization rules")

#: Stages rules run in.
STAGES = ("pre", "default", "post")


class RuleIn(Schema):
    """A rule: a condition tree (all/any/not over field-operator-value leaves) and actions."""

    name = Line(required=True, validate=validate.Length(min=1, max=200))
    stage = fields.String(load_default="default", validate=validate.OneOf(STAGES))
    order = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=1_000_000))
    conditions = fields.Dict(required=True)
    actions = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=10))
    enabled = fields.Boolean(load_default=True)


class RulePatch(Schema):
    """Fields of a rule that may change."""

    name = Line(validate=validate.Length(min=1, max=200))
    stage = fields.String(validate=validate.OneOf(STAGES))
    order = fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000))
    conditions = fields.Dict()
    actions = fields.List(fields.Dict(), validate=validate.Length(min=1, max=10))
    enabled = fields.Boolean()


class RuleOut(Schema):
    """A rule."""

    id = fields.String()
    name = fields.String()
    stage = fields.String()
    order = fields.Integer()
    conditions = fields.Dict()
    actions = fields.List(fields.Dict())
    enabled = fields.Boolean()
    learned = fields.Boolean()


class RuleList(Schema):
    """The household's rules in the order they run."""

    items = fields.List(fields.Nested(RuleOut))
    next_cursor = fields.String(allow_none=True)


class RuleApplyAccepted(Schema):
    """A rule's re-run over history, accepted for the pools."""

    id = fields.String()
    status = fields.String()


def rule_out(rule: Rule) -> dict:
    """A rule as the API shows it."""
    return {"id": str(rule.id), "name": rule.name, "stage": rule.stage, "order": rule.order,
            "conditions": rule.conditions, "actions": rule.actions, "enabled": rule.enabled, "learned": rule.learned}


@blp.route("")
class Rules(MethodView):
    """The household's rules."""

    decorators = [auth_required()]

    @blp.arguments(RuleIn)
    @blp.response(201, RuleOut)
    def post(self, data: dict) -> dict:
        """Add a rule; it applies to new transactions (POST /rules/{id}/apply for history)."""
        return rule_out(rules.create(current_caller(), data, wiring.uow()))

    @blp.response(200, RuleList)
    def get(self) -> dict:
        """List rules in the order they run: stage (pre, default, post), then order."""
        return {"items": [rule_out(r) for r in rules.listed(current_caller(), wiring.uow())], "next_cursor": None}


@blp.route("/<uuid:rule_id>")
class RuleById(MethodView):
    """One rule."""

    decorators = [auth_required()]

    @blp.response(200, RuleOut)
    def get(self, rule_id: uuid.UUID) -> dict:
        """Show a rule."""
        return rule_out(rules.get(current_caller(), rule_id, wiring.uow()))

    @blp.arguments(RulePatch)
    @blp.response(200, RuleOut)
    def patch(self, data: dict, rule_id: uuid.UUID) -> dict:
        """Change a rule."""
        return rule_out(rules.change(current_caller(), rule_id, data, wiring.uow()))

    @blp.response(204)
    def delete(self, rule_id: uuid.UUID) -> None:
        """Delete a rule."""
        rules.remove(current_caller(), rule_id, wiring.uow())


@blp.route("/<uuid:rule_id>/apply")
class ApplyRule(MethodView):
    """Run one rule over history."""

    decorators = [auth_required()]

    @blp.response(202, RuleApplyAccepted)
    def post(self, rule_id: uuid.UUID) -> dict:
        """Re-run the rule over every recorded transaction in batches (never over fields set by hand)."""
        caller = current_caller()
        rules.get(caller, rule_id, wiring.uow())
        command = rules.ApplyRule(str(rule_id), str(caller.household_id), str(caller.user_id), g.request_id)
        wiring.broker().send_command("categorization", "apply_rule_command", command.to_dict())
        return {"id": str(rule_id), "status": "pending"}

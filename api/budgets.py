"""Budgets and where each stands."""

from __future__ import annotations

import datetime as dt
import uuid

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate

from api.schemas import AmountText, Blueprint, Currency, Line, money_amount, money_out
from api.security import auth_required, current_caller
from config import wiring
from domain.periods import DEFAULT_THRESHOLDS, PERIODS, local_today, parse_label
from models.budgets import Budget
from services import budgets

blp = Blueprint("budgets", __name__, url_prefix="/api/v1/budgets", description="Budgets")

#: Rollover modes.
ROLLOVERS = ("none", "surplus", "surplus_and_deficit")
#: Periods before this year are typing mistakes (transactions start in 1900 too).
EARLIEST_YEAR = 1900
#: How many years ahead a status may be asked for.
YEARS_AHEAD = 10


class BudgetIn(Schema):
    """A new budget."""

    category = Line(required=True, validate=validate.Length(min=1, max=100))
    amount = AmountText(required=True)
    currency = Currency(load_default=None)
    period = fields.String(load_default="monthly", validate=validate.OneOf(PERIODS))
    thresholds = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=1000)),
                             load_default=list(DEFAULT_THRESHOLDS), validate=validate.Length(min=1, max=10))
    rollover = fields.String(load_default="none", validate=validate.OneOf(ROLLOVERS))


class BudgetOut(Schema):
    """A budget."""

    id = fields.String()
    category = fields.String()
    amount = fields.String()
    currency = fields.String()
    period = fields.String()
    thresholds = fields.List(fields.Integer())
    rollover = fields.String()


class BudgetList(Schema):
    """The household's budgets."""

    items = fields.List(fields.Nested(BudgetOut))
    next_cursor = fields.String(allow_none=True)


class StatusQuery(Schema):
    """Which period to show."""

    period = fields.String(load_default=None, validate=validate.Length(max=20))


class StatusOut(Schema):
    """Where a budget stands in a period."""

    budget_id = fields.String()
    category = fields.String()
    period = fields.String()
    spent = fields.String()
    remaining = fields.String()
    limit = fields.String()
    percent = fields.String()
    currency = fields.String()
    thresholds_crossed = fields.List(fields.Integer())
    pending_conversion = fields.Integer()
    carried_in = fields.String()


def parse_period(period: str, label: str) -> dt.date:
    """The first day of the budget period a label names, or a 422 on "period"."""
    try:
        start = parse_label(period, label)
    except ValueError as exc:
        raise ValidationError({"period": [f"{label!r} is not a {period} period: {exc}"]}) from None
    latest = dt.date.today().year + YEARS_AHEAD
    if not EARLIEST_YEAR <= start.year <= latest:
        raise ValidationError({"period": [f"must be between {EARLIEST_YEAR} and {latest}"]})
    return start


def budget_out(budget: Budget, category: str) -> dict:
    """A budget as the API shows it."""
    return {"id": str(budget.id), "category": category, "amount": money_out(budget.amount, budget.currency),
            "currency": budget.currency, "period": budget.period, "thresholds": budget.thresholds,
            "rollover": budget.rollover}


@blp.route("")
class Budgets(MethodView):
    """The household's budgets."""

    decorators = [auth_required()]

    @blp.arguments(BudgetIn)
    @blp.response(201, BudgetOut)
    def post(self, data: dict) -> dict:
        """Create a budget."""
        caller = current_caller()
        currency = data["currency"] or caller.base_currency
        amount = money_amount(data["amount"], currency)
        budget = budgets.create_budget(caller, data["category"], amount, currency, data["period"],
                                       data["thresholds"], data["rollover"], wiring.uow())
        return budget_out(*budgets.get_budget(caller, budget.id, wiring.uow()))

    @blp.response(200, BudgetList)
    def get(self) -> dict:
        """List budgets."""
        return {"items": [budget_out(b, c) for b, c in budgets.list_budgets(current_caller(), wiring.uow())],
                "next_cursor": None}


@blp.route("/<uuid:budget_id>")
class BudgetById(MethodView):
    """One budget."""

    decorators = [auth_required()]

    @blp.response(200, BudgetOut)
    def get(self, budget_id: uuid.UUID) -> dict:
        """Show a budget."""
        return budget_out(*budgets.get_budget(current_caller(), budget_id, wiring.uow()))


@blp.route("/<uuid:budget_id>/status")
class BudgetStatus(MethodView):
    """Where a budget stands."""

    decorators = [auth_required()]

    @blp.arguments(StatusQuery, location="query")
    @blp.response(200, StatusOut)
    def get(self, query: dict, budget_id: uuid.UUID) -> dict:
        """Spent, remaining, percent and thresholds crossed in a period (default: the current one)."""
        caller = current_caller()
        budget, _ = budgets.get_budget(caller, budget_id, wiring.uow())
        on = (parse_period(budget.period, query["period"]) if query["period"]
              else local_today(dt.datetime.now(dt.UTC), caller.timezone))  # "now" is the caller's own date
        s = budgets.status(caller, budget_id, on, wiring.uow(), wiring.redis_client())
        return {"budget_id": str(s.budget_id), "category": s.category, "period": s.period,
                "spent": money_out(s.spent, s.currency), "remaining": money_out(s.remaining, s.currency),
                "limit": money_out(s.limit, s.currency), "percent": str(s.percent), "currency": s.currency,
                "thresholds_crossed": s.thresholds_crossed, "pending_conversion": s.pending_conversion,
                "carried_in": money_out(s.carried_in, s.currency)}

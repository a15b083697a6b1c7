"""Savings goals: progress, the on-track status and the monthly suggestion; contributions and withdrawals as
commands (202)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from flask import request, url_for
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates

from api.schemas import AmountText, Blueprint, Currency, Line, money_out
from api.security import auth_required, current_caller
from config import wiring
from models.goals import GoalContribution
from services import goals
from services.fx_rates import default_rates
from services.goals import GoalView, today

blp = Blueprint("goals", __name__, url_prefix="/api/v1/goals", description="Savings goals")

#: How far ahead a target date may lie.
YEARS_AHEAD = 100
#: Contributions dated before this are typing mistakes.
EARLIEST = dt.date(1900, 1, 1)


class MoneyIn(Schema):
    """An amount as a decimal string, in a currency (by default the household's base currency)."""

    amount = AmountText(required=True)
    currency = Currency(load_default=None)


class MoneyOut(Schema):
    """Money: the amount as a string with the currency's exponent."""

    amount = fields.String()
    currency = fields.String()


def check_target_date(value: dt.date) -> None:
    """A target date lies after today and at most a hundred years ahead."""
    now = today()
    if value <= now:
        raise ValidationError("must be after today")
    if value.year > now.year + YEARS_AHEAD:
        raise ValidationError(f"must be within {YEARS_AHEAD} years")


def check_contribution_date(value: dt.date) -> None:
    """A contribution is dated today or earlier (its FX rate is that day's)."""
    if not EARLIEST <= value <= today():
        raise ValidationError("must be between 1900-01-01 and today")


class GoalIn(Schema):
    """A new savings goal."""

    name = Line(required=True, validate=validate.Length(min=1, max=100))
    target = fields.Nested(MoneyIn, required=True)
    target_date = fields.Date(required=True)

    @validates("target_date")
    def _future(self, value: dt.date, **_: object) -> None:
        check_target_date(value)


class GoalPatch(Schema):
    """What may change about a goal."""

    name = Line(validate=validate.Length(min=1, max=100))
    target = fields.Nested(MoneyIn)
    target_date = fields.Date()

    @validates("target_date")
    def _future(self, value: dt.date, **_: object) -> None:
        check_target_date(value)


class ContributionIn(Schema):
    """Money put toward a goal: in the goal's currency by default, else converted at the ECB rate of its day."""

    amount = AmountText(required=True)
    currency = Currency(load_default=None)
    contributed_on = fields.Date(load_default=None)

    @validates("contributed_on")
    def _past(self, value: dt.date | None, **_: object) -> None:
        if value is not None:
            check_contribution_date(value)


class WithdrawalIn(Schema):
    """Money taken out of a goal: in the goal's currency by default, else converted at the ECB rate of its day."""

    amount = AmountText(required=True)
    currency = Currency(load_default=None)
    withdrawn_on = fields.Date(load_default=None)

    @validates("withdrawn_on")
    def _past(self, value: dt.date | None, **_: object) -> None:
        if value is not None:
            check_contribution_date(value)


class GoalOut(Schema):
    """A goal and where it stands."""

    id = fields.String()
    name = fields.String()
    target = fields.Nested(MoneyOut)
    target_date = fields.String()
    created_at = fields.String()
    saved = fields.Nested(MoneyOut)
    remaining = fields.Nested(MoneyOut)
    percent = fields.String()
    status = fields.String(metadata={"description": "on_track, behind or reached (against a linear plan)"})
    planned = fields.Nested(MoneyOut, metadata={"description": "what the linear plan expects saved by today"})
    months_left = fields.Integer()
    suggested_monthly_contribution = fields.Nested(MoneyOut)
    reached_at = fields.String(allow_none=True, metadata={
        "description": "when savings first met the target; kept as history if a withdrawal takes them below it"})
    pending_contributions = fields.Integer()
    pending_withdrawals = fields.Integer()


class GoalList(Schema):
    """The household's goals."""

    items = fields.List(fields.Nested(GoalOut))
    next_cursor = fields.String(allow_none=True)


class ContributionAccepted(Schema):
    """A contribution or withdrawal accepted for processing."""

    id = fields.String()
    status = fields.String()


class ContributionOut(Schema):
    """A contribution or withdrawal: as given, and as counted in the goal's currency (amounts are positive)."""

    id = fields.String()
    kind = fields.String(metadata={"description": "contribution (adds to saved) or withdrawal (takes from it)"})
    status = fields.String(metadata={"description": "pending, recorded or rejected (see reject_reason)"})
    reject_reason = fields.String(allow_none=True)
    amount = fields.Nested(MoneyOut)
    original = fields.Nested(MoneyOut)
    rate = fields.String(allow_none=True)
    rate_date = fields.String(allow_none=True)
    contributed_on = fields.String(metadata={"description": "the day of the contribution or withdrawal"})
    user_id = fields.String()


class ContributionList(Schema):
    """A goal's contributions and withdrawals, newest first."""

    items = fields.List(fields.Nested(ContributionOut))
    next_cursor = fields.String(allow_none=True)


def money(amount: Decimal, currency: str) -> dict:
    """Money as the API shows it."""
    return {"amount": money_out(amount, currency), "currency": currency}


def goal_out(view: GoalView) -> dict:
    """A goal as the API shows it."""
    goal, p, currency = view.goal, view.progress, view.goal.currency
    return {"id": str(goal.id), "name": goal.name, "target": money(goal.target_amount, currency),
            "target_date": goal.target_date.isoformat(), "created_at": goal.created_at.isoformat(),
            "saved": money(p.saved, currency), "remaining": money(p.remaining, currency), "percent": str(p.percent),
            "status": p.status, "planned": money(p.planned, currency), "months_left": p.months_left,
            "suggested_monthly_contribution": money(p.monthly, currency),
            "reached_at": goal.reached_at.isoformat() if goal.reached_at else None,
            "pending_contributions": view.pending, "pending_withdrawals": view.pending_withdrawals}


def contribution_out(row: GoalContribution, currency: str) -> dict:
    """A contribution or withdrawal as the API shows it."""
    return {"id": str(row.id), "kind": row.kind, "status": row.status, "reject_reason": row.reject_reason,
            "amount": money(row.amount, currency),
            "original": money(row.original_amount, row.original_currency),
            "rate": str(row.fx_rate) if row.fx_rate is not None else None,
            "rate_date": row.fx_rate_date.isoformat() if row.fx_rate_date else None,
            "contributed_on": row.contributed_on.isoformat(), "user_id": str(row.user_id)}


def send_to_pool(actor: str) -> goals.SendCommand:
    """Sends a command to the pool that records contributions and withdrawals (confirmed by RabbitMQ)."""
    def send(command: dict) -> None:
        wiring.broker().send_command("categorization", actor, command)
    return send


@blp.route("")
class Goals(MethodView):
    """The household's savings goals."""

    decorators = [auth_required()]

    @blp.arguments(GoalIn)
    @blp.response(201, GoalOut)
    def post(self, data: dict) -> dict:
        """Create a savings goal (the target's currency defaults to the household's base currency)."""
        caller = current_caller()
        target = data["target"]
        return goal_out(goals.create_goal(caller, data["name"], target["amount"],
                                          target["currency"] or caller.base_currency, data["target_date"],
                                          wiring.uow()))

    @blp.response(200, GoalList)
    def get(self) -> dict:
        """List the household's goals with their progress."""
        return {"items": [goal_out(v) for v in goals.list_goals(current_caller(), wiring.uow())], "next_cursor": None}


@blp.route("/<uuid:goal_id>")
class GoalById(MethodView):
    """One savings goal."""

    decorators = [auth_required()]

    @blp.response(200, GoalOut)
    def get(self, goal_id: uuid.UUID) -> dict:
        """Show a goal: saved, percent, on-track status and the suggested monthly contribution."""
        return goal_out(goals.get_goal(current_caller(), goal_id, wiring.uow()))

    @blp.arguments(GoalPatch)
    @blp.response(200, GoalOut)
    def patch(self, data: dict, goal_id: uuid.UUID) -> dict:
        """Rename a goal or change its target or date (its currency stays)."""
        return goal_out(goals.change_goal(current_caller(), goal_id, data, wiring.uow()))

    @blp.response(204)
    def delete(self, goal_id: uuid.UUID) -> None:
        """Delete a goal and its contributions."""
        goals.delete_goal(current_caller(), goal_id, wiring.uow())


@blp.route("/<uuid:goal_id>/contributions")
class GoalContributions(MethodView):
    """Money put toward a goal."""

    decorators = [auth_required()]

    @blp.arguments(ContributionIn)
    @blp.response(202, ContributionAccepted)
    def post(self, data: dict, goal_id: uuid.UUID) -> tuple[dict, int, dict]:
        """Contribute to a goal (202: the pool counts it; the same Idempotency-Key again changes nothing).

        Another currency is converted at the ECB rate of `contributed_on` (default today, or up to 7 days before
        it); without such a rate the contribution is refused (422 on currency), never taken 1:1."""
        contribution_id, _ = goals.submit_goal_contribution(
            current_caller(), goal_id, data, request.headers.get("Idempotency-Key"), wiring.uow(),
            send_to_pool("record_goal_contribution_command"), default_rates())
        location = url_for("goals.GoalById", goal_id=goal_id)
        return {"id": str(contribution_id), "status": "pending"}, 202, {"Location": location}

    @blp.response(200, ContributionList)
    def get(self, goal_id: uuid.UUID) -> dict:
        """The goal's latest 200 contributions and withdrawals, newest first.

        Each with its `kind`, its status (pending, recorded, or rejected with `reject_reason`) and any conversion."""
        goal, rows = goals.list_contributions(current_caller(), goal_id, wiring.uow())
        return {"items": [contribution_out(r, goal.currency) for r in rows], "next_cursor": None}


@blp.route("/<uuid:goal_id>/withdrawals")
class GoalWithdrawals(MethodView):
    """Money taken out of a goal."""

    decorators = [auth_required()]

    @blp.arguments(WithdrawalIn)
    @blp.response(202, ContributionAccepted)
    def post(self, data: dict, goal_id: uuid.UUID) -> tuple[dict, int, dict]:
        """Withdraw from a goal (202: the pool takes it out; the same Idempotency-Key again changes nothing).

        At most what is saved, less withdrawals still pending (422 on amount otherwise); if by the time the pool
        records it it is more than is saved, it is kept as `rejected` with a reason and saved is unchanged.
        Another currency is converted at the ECB rate of `withdrawn_on` (default today, or up to 7 days before it;
        422 on currency without one, never 1:1). A reached goal keeps `reached_at` as history (it is announced
        once, ever); its saved, percent, status and monthly suggestion follow the withdrawal."""
        withdrawal_id, _ = goals.submit_goal_withdrawal(
            current_caller(), goal_id, data, request.headers.get("Idempotency-Key"), wiring.uow(),
            send_to_pool("record_goal_withdrawal_command"), default_rates())
        location = url_for("goals.GoalById", goal_id=goal_id)
        return {"id": str(withdrawal_id), "status": "pending"}, 202, {"Location": location}

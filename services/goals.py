"""Savings goals: progress against a linear plan, contributions sent as commands and recorded once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from domain.events import Event
from domain.fx import Rate, convert
from domain.money import MAX_AMOUNT, InvalidMoney, format_amount, parse_amount, quantize
from domain.periods import add_months
from models.goals import Goal, GoalContribution
from services.context import Caller
from services.contributions import ContributionCommand, command_fields, row_values
from services.errors import Invalid, NotFound
from services.uow import UnitOfWork

#: Sends a command to its pool; raises when RabbitMQ did not confirm it.
SendCommand = Callable[[dict[str, Any]], None]
#: Goal statuses: against the linear plan from creation to the target date.
STATUSES = ("on_track", "behind", "reached")
#: How far back a contribution's FX rate may be from its date (EcbRates' default, as for transactions).
RATE_MAX_AGE_DAYS = 7


class Rates(Protocol):
    """Where FX rates come from (services.fx_rates.EcbRates: the day's rate, or the latest of the 7 days before)."""

    def rate(self, base: str, quote: str, on: dt.date) -> Rate | None:
        """The rate base->quote on a day, or None."""


def today() -> dt.date:
    """Today in UTC: the day plans and contributions are counted on."""
    return dt.datetime.now(dt.UTC).date()


# --- progress: pure rules ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where savings stand against a target and a linear plan."""

    saved: Decimal
    remaining: Decimal
    percent: Decimal
    status: str
    #: What the linear plan expects to be saved by today.
    planned: Decimal
    months_left: int
    #: What to put aside each month from now to reach the target on time.
    monthly: Decimal


def whole_months(start: dt.date, end: dt.date) -> int:
    """Whole calendar months from `start` to `end` (a partial month does not count; 0 if `end` is not later)."""
    if end <= start:
        return 0
    months = (end.year - start.year) * 12 + end.month - start.month
    return months if add_months(start, months) <= end else months - 1


def percent_of(part: Decimal, whole: Decimal) -> Decimal:
    """`part` as a percentage of `whole`, to two places, half-even."""
    return (part * 100 / whole).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def progress(target: Decimal, saved: Decimal, currency: str, created_on: dt.date, target_date: dt.date | None,
             on: dt.date) -> Progress:
    """Progress on day `on` toward `target` (in `currency`), planned linearly from `created_on` to `target_date`.

    Reached once saved >= target; otherwise on track while saved keeps up with the plan, behind when not.
    The monthly suggestion spreads what remains over the whole months left, at least one, rounded half-even.
    Without a target date there is no plan: on track until reached, no months, no suggestion.
    """
    remaining = max(target - saved, Decimal(0))
    if target_date is None:
        status = "reached" if saved >= target else "on_track"
        return Progress(saved, remaining, percent_of(saved, target), status, Decimal(0), 0, Decimal(0))
    total_days = max((target_date - created_on).days, 1)
    elapsed = min(max((on - created_on).days, 0), total_days)
    planned = quantize(target * elapsed / total_days, currency)
    status = "reached" if saved >= target else "on_track" if saved >= planned else "behind"
    months = max(whole_months(on, target_date), 1)
    monthly = quantize(remaining / months, currency)
    return Progress(saved, remaining, percent_of(saved, target), status, planned, months, monthly)


# --- contributions in another currency ------------------------------------------------------------------------


@dataclass(frozen=True)
class Converted:
    """A contribution as given and as counted in the target's currency."""

    amount: Decimal
    original_amount: Decimal
    original_currency: str
    rate: Decimal | None
    rate_date: dt.date | None


def convert_contribution(text: str, currency: str, target_currency: str, on: dt.date, rates: Rates) -> Converted:
    """Parse a contribution and convert it at the ECB rate of its day (or up to 7 days before);
    Invalid when there is no such rate: never 1:1."""
    try:
        amount = parse_amount(text, currency)
    except InvalidMoney as exc:
        raise Invalid(exc.reason, field="amount") from None
    if currency == target_currency:
        return Converted(amount, amount, currency, None, None)
    rate = rates.rate(currency, target_currency, on)
    if rate is None:
        raise Invalid(f"no ECB rate from {currency} to {target_currency} on {on.isoformat()} or the "
                      f"{RATE_MAX_AGE_DAYS} days before; contribute in {target_currency}", field="currency")
    converted = convert(amount, rate.value, target_currency)
    if converted.is_zero():
        raise Invalid(f"amount is worth nothing in {target_currency} once converted", field="amount")
    if converted >= MAX_AMOUNT:
        raise Invalid(f"amount is too large once converted to {target_currency}", field="amount")
    return Converted(converted, amount, currency, rate.value, rate.on)


def contribution_fields(c: Converted) -> dict[str, Any]:
    """The columns a converted contribution fills."""
    return {"amount": c.amount, "original_amount": c.original_amount, "original_currency": c.original_currency,
            "fx_rate": c.rate, "fx_rate_date": c.rate_date}


def check_idempotency_key(key: str | None) -> None:
    """An Idempotency-Key is 1 to 200 characters."""
    if key is not None and not 1 <= len(key) <= 200:
        raise Invalid("must be 1 to 200 characters", field="Idempotency-Key")


# --- goals ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalView:
    """A goal with its savings and progress."""

    goal: Goal
    progress: Progress
    pending: int


def _totals(goal_ids: list[uuid.UUID], uow: UnitOfWork) -> dict[uuid.UUID, tuple[Decimal, int]]:
    """Per goal: the recorded savings and how many contributions are still pending."""
    if not goal_ids:
        return {}
    recorded = GoalContribution.status == "recorded"
    rows = uow.session.execute(select(
        GoalContribution.goal_id, func.coalesce(func.sum(case((recorded, GoalContribution.amount), else_=0)), 0),
        func.count().filter(GoalContribution.status == "pending"),
    ).where(GoalContribution.goal_id.in_(goal_ids)).group_by(GoalContribution.goal_id))
    return {goal_id: (Decimal(saved), pending) for goal_id, saved, pending in rows}


def _view(goal: Goal, totals: dict[uuid.UUID, tuple[Decimal, int]], on: dt.date) -> GoalView:
    saved, pending = totals.get(goal.id, (Decimal(0), 0))
    return GoalView(goal, progress(goal.target_amount, saved, goal.currency, goal.created_at.date(),
                                   goal.target_date, on), pending)


def _saved(goal_id: uuid.UUID, uow: UnitOfWork) -> Decimal:
    return _totals([goal_id], uow).get(goal_id, (Decimal(0), 0))[0]


def _event(goal: Goal, type: str, payload: dict[str, Any], user_id: uuid.UUID | None, correlation_id: str,
           causation_id: str | None = None) -> Event:
    return Event(type, {"goal_id": str(goal.id), **payload}, str(goal.household_id),
                 str(user_id) if user_id else None, correlation_id, causation_id)


def _described(goal: Goal) -> dict[str, Any]:
    return {"name": goal.name, "target": format_amount(goal.target_amount, goal.currency), "currency": goal.currency,
            "target_date": goal.target_date.isoformat()}


def parse_target(text: str, currency: str) -> Decimal:
    """A target amount: positive, at most the currency's decimals; Invalid naming "target" otherwise."""
    try:
        return parse_amount(text, currency)
    except InvalidMoney as exc:
        raise Invalid(f"amount: {exc.reason}", field="target") from None


def create_goal(caller: Caller, name: str, target: str, currency: str, target_date: dt.date,
                uow: UnitOfWork) -> GoalView:
    """Create a savings goal in the caller's household."""
    amount = parse_target(target, currency)
    with uow:
        goal = Goal(id=uuid.uuid4(), household_id=caller.household_id, user_id=caller.user_id, name=name,
                    target_amount=amount, currency=currency, target_date=target_date,
                    created_at=dt.datetime.now(dt.UTC))
        uow.session.add(goal)
        uow.emit(_event(goal, "GoalCreated", _described(goal), caller.user_id, caller.correlation_id))
        uow.commit()
        return _view(goal, {}, today())


def _goal(caller: Caller, goal_id: uuid.UUID, uow: UnitOfWork, *, lock: bool = False) -> Goal:
    query = select(Goal).where(Goal.id == goal_id, Goal.household_id == caller.household_id)
    goal = uow.session.scalar(query.with_for_update(key_share=True) if lock else query)
    if goal is None:
        raise NotFound("no such goal")
    return goal


def _one_snapshot(uow: UnitOfWork) -> None:
    """Read a goal and its totals from one snapshot: a contribution committing in between must not show the
    new total beside the old reached state."""
    uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def get_goal(caller: Caller, goal_id: uuid.UUID, uow: UnitOfWork) -> GoalView:
    """One of the household's goals with its progress; NotFound for any other id."""
    with uow:
        _one_snapshot(uow)
        goal = _goal(caller, goal_id, uow)
        return _view(goal, _totals([goal.id], uow), today())


def list_goals(caller: Caller, uow: UnitOfWork) -> list[GoalView]:
    """The household's goals, oldest first, with their progress."""
    with uow:
        _one_snapshot(uow)
        goals = list(uow.session.scalars(select(Goal).where(Goal.household_id == caller.household_id)
                                         .order_by(Goal.created_at, Goal.id)))
        totals, on = _totals([g.id for g in goals], uow), today()
        return [_view(g, totals, on) for g in goals]


def change_goal(caller: Caller, goal_id: uuid.UUID, changes: dict[str, Any], uow: UnitOfWork) -> GoalView:
    """Rename a goal or move its target or date; a target now met makes it reached (once)."""
    with uow:
        goal = _goal(caller, goal_id, uow, lock=True)
        if not changes:
            return _view(goal, _totals([goal.id], uow), today())
        if "target" in changes:
            target = changes["target"]
            if (target.get("currency") or goal.currency) != goal.currency:
                raise Invalid(f"currency: a goal keeps its currency ({goal.currency}); create another goal",
                              field="target")
            goal.target_amount = parse_target(target["amount"], goal.currency)
        for name in ("name", "target_date"):
            if name in changes:
                setattr(goal, name, changes[name])
        uow.session.flush()
        updated = _event(goal, "GoalUpdated", _described(goal), caller.user_id, caller.correlation_id)
        uow.emit(updated)
        reach_goal(goal, _saved(goal.id, uow), updated, uow)
        uow.commit()
        return _view(goal, _totals([goal.id], uow), today())


def delete_goal(caller: Caller, goal_id: uuid.UUID, uow: UnitOfWork) -> None:
    """Delete a goal and its contributions; contributions still on their way are then dropped."""
    with uow:
        goal = _goal(caller, goal_id, uow, lock=True)
        uow.emit(_event(goal, "GoalDeleted", {"name": goal.name}, caller.user_id, caller.correlation_id))
        uow.session.execute(delete(Goal).where(Goal.id == goal.id))
        uow.commit()


def reach_goal(goal: Goal, saved: Decimal, cause: Event, uow: UnitOfWork) -> bool:
    """Mark a goal reached and announce it, the first time its savings meet the target; never again."""
    if saved < goal.target_amount or goal.reached_event_id is not None:
        return False
    event = cause.caused("GoalReached", {"goal_id": str(goal.id), "kind": "goal", **_described(goal),
                                         "saved": format_amount(saved, goal.currency)})
    marked = uow.session.execute(update(Goal).where(Goal.id == goal.id, Goal.reached_event_id.is_(None)).values(
        reached_at=dt.datetime.now(dt.UTC), reached_event_id=uuid.UUID(event.event_id)))
    if marked.rowcount != 1:
        return False
    uow.emit(event)
    return True


# --- contributions: sent as commands, recorded once -----------------------------------------------------------


@dataclass(frozen=True)
class RecordGoalContribution(ContributionCommand):
    """The command: count this contribution toward its goal."""

    goal_id: str


def goal_command(row: GoalContribution, currency: str) -> RecordGoalContribution:
    """The command that records a contribution (also what a redelivery carries)."""
    return RecordGoalContribution(goal_id=str(row.goal_id), **command_fields(row, currency))


def _known_goal_key(goal_id: uuid.UUID, key: str, uow: UnitOfWork) -> uuid.UUID | None:
    return uow.session.scalar(select(GoalContribution.id).where(
        GoalContribution.goal_id == goal_id, GoalContribution.idempotency_key == key))


def submit_goal_contribution(caller: Caller, goal_id: uuid.UUID, data: dict[str, Any], key: str | None,
                             uow: UnitOfWork, send: SendCommand, rates: Rates) -> tuple[uuid.UUID, bool]:
    """Accept a contribution as pending and send it to its pool; (id, created). Nothing stays if sending fails."""
    check_idempotency_key(key)
    with uow:
        goal = _goal(caller, goal_id, uow)
        if key and (known := _known_goal_key(goal.id, key, uow)):
            return known, False
        on = data.get("contributed_on") or today()
        converted = convert_contribution(data["amount"], data.get("currency") or goal.currency, goal.currency, on,
                                         rates)
        row = GoalContribution(id=uuid.uuid4(), goal_id=goal.id, household_id=goal.household_id,
                               user_id=caller.user_id, contributed_on=on, status="pending", idempotency_key=key,
                               correlation_id=caller.correlation_id, **contribution_fields(converted))
        uow.session.add(row)
        try:
            uow.session.flush()
        except IntegrityError:
            uow.session.rollback()
            return _known_goal_key(goal.id, key or "", uow) or row.id, False
        send(goal_command(row, goal.currency).to_dict())
        uow.commit()
        return row.id, True


def _row_values(cmd: RecordGoalContribution) -> dict[str, Any]:
    return {**row_values(cmd), "goal_id": uuid.UUID(cmd.goal_id)}


def record_goal_contribution(cmd: RecordGoalContribution, uow: UnitOfWork) -> bool:
    """Count a contribution toward its goal and announce it; GoalReached the first time the target is met.
    Safe to run twice: a contribution counts once. False when there was nothing (more) to do."""
    with uow:
        goal = uow.session.scalar(select(Goal).where(Goal.id == uuid.UUID(cmd.goal_id))
                                  .with_for_update(key_share=True))
        if goal is None or str(goal.household_id) != cmd.household_id:
            return False  # the goal was deleted while the contribution was on its way
        # The API inserts the pending row before it sends the command; if its commit is still in flight this
        # insert waits for it, then does nothing. Any other conflict (the key is another's) leaves no row.
        uow.session.execute(insert(GoalContribution).values(**_row_values(cmd)).on_conflict_do_nothing())
        row = uow.session.scalar(select(GoalContribution).where(GoalContribution.id == uuid.UUID(cmd.contribution_id))
                                 .with_for_update().execution_options(populate_existing=True))
        if row is None or row.status != "pending" or row.goal_id != goal.id:
            return False
        row.status, row.recorded_at = "recorded", dt.datetime.now(dt.UTC)
        uow.session.flush()
        saved = _saved(goal.id, uow)
        contributed = _event(goal, "GoalContributed", {
            "contribution_id": str(row.id), "amount": format_amount(row.amount, goal.currency),
            "currency": goal.currency, "original_amount": format_amount(row.original_amount, row.original_currency),
            "original_currency": row.original_currency, "saved": format_amount(saved, goal.currency),
            "target": format_amount(goal.target_amount, goal.currency),
            "percent": str(percent_of(saved, goal.target_amount))}, row.user_id, row.correlation_id, str(row.id))
        uow.emit(contributed)
        reach_goal(goal, saved, contributed, uow)
        uow.commit()
        return True


def list_contributions(caller: Caller, goal_id: uuid.UUID, uow: UnitOfWork, limit: int = 200
                       ) -> tuple[Goal, list[GoalContribution]]:
    """A goal's contributions, newest first."""
    with uow:
        goal = _goal(caller, goal_id, uow)
        rows = list(uow.session.scalars(select(GoalContribution).where(GoalContribution.goal_id == goal.id)
                                        .order_by(GoalContribution.created_at.desc(), GoalContribution.id)
                                        .limit(limit)))
        return goal, rows

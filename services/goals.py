"""Savings goals: progress against a linear plan, contributions sent as commands and recorded once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar, Protocol

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from domain.events import Event
from domain.fx import Rate, convert
from domain.money import MAX_AMOUNT, InvalidMoney, format_amount, parse_amount, quantize
from domain.periods import add_months
from models.goals import Goal, GoalContribution
from services.context import Caller
from services.contributions import ContributionCommand, claim_pending, command_fields, row_values
from services.errors import Conflict, Invalid, NotFound
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
    #: Contributions still on their way to the pool.
    pending: int
    #: Withdrawals still on their way to the pool.
    pending_withdrawals: int = 0


@dataclass(frozen=True)
class Totals:
    """A goal's recorded savings (contributions less withdrawals) and what is still pending."""

    saved: Decimal = Decimal(0)
    pending: int = 0
    pending_withdrawals: int = 0
    #: The sum of the pending withdrawals: what may not be withdrawn again meanwhile.
    withdrawing: Decimal = Decimal(0)


def _totals(goal_ids: list[uuid.UUID], uow: UnitOfWork) -> dict[uuid.UUID, Totals]:
    """Per goal: the recorded savings and the contributions and withdrawals still pending."""
    if not goal_ids:
        return {}
    c = GoalContribution
    recorded, pending, out = c.status == "recorded", c.status == "pending", c.kind == "withdrawal"
    rows = uow.session.execute(select(
        c.goal_id, func.coalesce(func.sum(case((recorded & out, -c.amount), (recorded, c.amount), else_=0)), 0),
        func.count().filter(pending & ~out), func.count().filter(pending & out),
        func.coalesce(func.sum(c.amount).filter(pending & out), 0),
    ).where(c.goal_id.in_(goal_ids)).group_by(c.goal_id))
    return {goal_id: Totals(Decimal(saved), pending_in, pending_out, Decimal(withdrawing))
            for goal_id, saved, pending_in, pending_out, withdrawing in rows}


def _view(goal: Goal, totals: dict[uuid.UUID, Totals], on: dt.date) -> GoalView:
    t = totals.get(goal.id, Totals())
    return GoalView(goal, progress(goal.target_amount, t.saved, goal.currency, goal.created_at.date(),
                                   goal.target_date, on), t.pending, t.pending_withdrawals)


def _saved(goal_id: uuid.UUID, uow: UnitOfWork) -> Decimal:
    return _totals([goal_id], uow).get(goal_id, Totals()).saved


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


# --- contributions and withdrawals: sent as commands, recorded once -----------------------------------------


@dataclass(frozen=True)
class RecordGoalContribution(ContributionCommand):
    """The command: count this contribution toward its goal."""

    #: The row's kind: what the pool records (the command's type says it; the payload stays the same shape).
    kind: ClassVar[str] = "contribution"

    goal_id: str


@dataclass(frozen=True)
class RecordGoalWithdrawal(RecordGoalContribution):
    """The command: take this withdrawal out of its goal, unless it is more than is saved by then."""

    kind: ClassVar[str] = "withdrawal"


def goal_command(row: GoalContribution, currency: str) -> RecordGoalContribution:
    """The command that records a contribution or a withdrawal (also what a redelivery carries)."""
    command = RecordGoalWithdrawal if row.kind == "withdrawal" else RecordGoalContribution
    return command(goal_id=str(row.goal_id), **command_fields(row, currency))


def _known_goal_key(goal_id: uuid.UUID, key: str, kind: str, uow: UnitOfWork) -> uuid.UUID | None:
    """The movement this Idempotency-Key already names; Conflict when it names one of the other kind."""
    known = uow.session.execute(select(GoalContribution.id, GoalContribution.kind).where(
        GoalContribution.goal_id == goal_id, GoalContribution.idempotency_key == key)).first()
    if known is not None and known.kind != kind:
        raise Conflict(f"this Idempotency-Key already names a {known.kind} to this goal; use another key",
                       field="Idempotency-Key")
    return known.id if known is not None else None


def _submit(caller: Caller, goal: Goal, kind: str, on: dt.date, key: str | None, converted: Converted,
            uow: UnitOfWork, send: SendCommand) -> tuple[uuid.UUID, bool]:
    """Keep a movement as pending and send its command; (id, created). Nothing stays if sending fails."""
    row = GoalContribution(id=uuid.uuid4(), goal_id=goal.id, household_id=goal.household_id, kind=kind,
                           user_id=caller.user_id, contributed_on=on, status="pending", idempotency_key=key,
                           correlation_id=caller.correlation_id, **contribution_fields(converted))
    uow.session.add(row)
    try:
        uow.session.flush()
    except IntegrityError:
        uow.session.rollback()
        return _known_goal_key(goal.id, key or "", kind, uow) or row.id, False
    send(goal_command(row, goal.currency).to_dict())
    uow.commit()
    return row.id, True


def submit_goal_contribution(caller: Caller, goal_id: uuid.UUID, data: dict[str, Any], key: str | None,
                             uow: UnitOfWork, send: SendCommand, rates: Rates) -> tuple[uuid.UUID, bool]:
    """Accept a contribution as pending and send it to its pool; (id, created). Nothing stays if sending fails."""
    check_idempotency_key(key)
    with uow:
        goal = _goal(caller, goal_id, uow)
        if key and (known := _known_goal_key(goal.id, key, "contribution", uow)):
            return known, False
        on = data.get("contributed_on") or today()
        converted = convert_contribution(data["amount"], data.get("currency") or goal.currency, goal.currency, on,
                                         rates)
        return _submit(caller, goal, "contribution", on, key, converted, uow, send)


def withdrawable(totals: Totals) -> Decimal:
    """What may still be withdrawn: the savings recorded, less the withdrawals on their way."""
    return max(totals.saved - totals.withdrawing, Decimal(0))


def submit_goal_withdrawal(caller: Caller, goal_id: uuid.UUID, data: dict[str, Any], key: str | None,
                           uow: UnitOfWork, send: SendCommand, rates: Rates) -> tuple[uuid.UUID, bool]:
    """Accept a withdrawal of at most what is saved (less withdrawals still pending) as pending and send it to its
    pool; (id, created). Invalid on `amount` when it is more; nothing stays if sending fails."""
    check_idempotency_key(key)
    with uow:
        # Locked: two withdrawals submitted at once each see the other's pending row, so together they cannot
        # pass a check that each passes alone.
        goal = _goal(caller, goal_id, uow, lock=True)
        if key and (known := _known_goal_key(goal.id, key, "withdrawal", uow)):
            return known, False
        on = data.get("withdrawn_on") or today()
        converted = convert_contribution(data["amount"], data.get("currency") or goal.currency, goal.currency, on,
                                         rates)
        available = withdrawable(_totals([goal.id], uow).get(goal.id, Totals()))
        if converted.amount > available:
            raise Invalid(f"more than is saved: at most {format_amount(available, goal.currency)} {goal.currency} "
                          "can be withdrawn now (what is saved, less withdrawals still pending)", field="amount")
        return _submit(caller, goal, "withdrawal", on, key, converted, uow, send)


def _row_values(cmd: RecordGoalContribution) -> dict[str, Any]:
    return {**row_values(cmd), "goal_id": uuid.UUID(cmd.goal_id), "kind": cmd.kind}


def _claim(cmd: RecordGoalContribution, uow: UnitOfWork) -> tuple[Goal, GoalContribution] | None:
    """The locked goal and the command's pending row, or None when there is nothing (more) to do."""
    goal = uow.session.scalar(select(Goal).where(Goal.id == uuid.UUID(cmd.goal_id)).with_for_update(key_share=True))
    if goal is None or str(goal.household_id) != cmd.household_id:
        return None  # the goal was deleted while the command was on its way
    row, _ = claim_pending(GoalContribution, _row_values(cmd), uow)
    if row is None or row.goal_id != goal.id or row.kind != cmd.kind:
        return None
    return goal, row


def _moved(goal: Goal, row: GoalContribution, saved: Decimal) -> dict[str, Any]:
    """What a contribution's or withdrawal's event says: the money moved and where the goal stands after it."""
    return {"contribution_id": str(row.id), "amount": format_amount(row.amount, goal.currency),
            "currency": goal.currency, "original_amount": format_amount(row.original_amount, row.original_currency),
            "original_currency": row.original_currency, "saved": format_amount(saved, goal.currency),
            "target": format_amount(goal.target_amount, goal.currency),
            "percent": str(percent_of(saved, goal.target_amount))}


def record_goal_contribution(cmd: RecordGoalContribution, uow: UnitOfWork) -> bool:
    """Count a contribution toward its goal and announce it; GoalReached the first time the target is met.
    Safe to run twice: a contribution counts once. False when there was nothing (more) to do."""
    with uow:
        if (claimed := _claim(cmd, uow)) is None:
            return False
        goal, row = claimed
        row.status, row.recorded_at = "recorded", dt.datetime.now(dt.UTC)
        uow.session.flush()
        saved = _saved(goal.id, uow)
        contributed = _event(goal, "GoalContributed", _moved(goal, row, saved), row.user_id, row.correlation_id,
                             str(row.id))
        uow.emit(contributed)
        reach_goal(goal, saved, contributed, uow)
        uow.commit()
        return True


def record_goal_withdrawal(cmd: RecordGoalWithdrawal, uow: UnitOfWork) -> bool:
    """Take a withdrawal out of its goal (GoalWithdrawalRecorded), or, when it is more than is saved by now, keep it
    as rejected with the reason (GoalWithdrawalRejected): saved never goes below zero. A goal once reached stays
    announced (reached_at is history); its status and percent follow the savings. Safe to run twice."""
    with uow:
        # The goal's row lock (taken in _claim) serializes the movements of one goal, so the savings read below
        # include every withdrawal recorded before this one.
        if (claimed := _claim(cmd, uow)) is None:
            return False
        goal, row = claimed
        saved, now = _saved(goal.id, uow), dt.datetime.now(dt.UTC)
        if row.amount > saved:
            row.status, row.recorded_at = "rejected", now
            row.reject_reason = (f"more than is saved: {format_amount(saved, goal.currency)} {goal.currency} by "
                                 "the time it was recorded")
            uow.emit(_event(goal, "GoalWithdrawalRejected", {**_moved(goal, row, saved),
                                                             "reason": row.reject_reason},
                            row.user_id, row.correlation_id, str(row.id)))
        else:
            row.status, row.recorded_at = "recorded", now
            uow.emit(_event(goal, "GoalWithdrawalRecorded", _moved(goal, row, saved - row.amount), row.user_id,
                            row.correlation_id, str(row.id)))
        uow.commit()
        return True


def list_contributions(caller: Caller, goal_id: uuid.UUID, uow: UnitOfWork, limit: int = 200
                       ) -> tuple[Goal, list[GoalContribution]]:
    """A goal's contributions and withdrawals, newest first."""
    with uow:
        goal = _goal(caller, goal_id, uow)
        rows = list(uow.session.scalars(select(GoalContribution).where(GoalContribution.goal_id == goal.id)
                                        .order_by(GoalContribution.created_at.desc(), GoalContribution.id)
                                        .limit(limit)))
        return goal, rows

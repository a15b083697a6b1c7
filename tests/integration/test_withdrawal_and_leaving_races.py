"""Withdrawals and leaving members on the run's PostgreSQL, where the races are: two withdrawals that each passed the
API's check but together exceed what is saved leave saved at zero or more (one recorded, one rejected with its
reason); a redelivered withdrawal counts once; a contribution accepted from a member who then left is still
counted, and one the pool must create for a non-member is rejected."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from config import wiring
from domain.events import Event
from models.goals import GoalContribution, GroupContribution
from models.identity import Household, HouseholdMember, User
from services import goals, groups
from services.context import Caller
from services.errors import Invalid, NotFound
from services.fx_rates import default_rates
from services.goals import RecordGoalWithdrawal
from services.groups import RecordGroupContribution
from services.uow import UnitOfWork

TARGET_DATE = dt.date.today() + dt.timedelta(days=400)


def _uow(published: list[Event] | None = None) -> UnitOfWork:
    return UnitOfWork(wiring.session_factory(), (published if published is not None else []).append,
                      lambda ids: None)


def _person(name: str = "P") -> Caller:
    """A registered user with a household of their own (base EUR)."""
    user_id, household_id = uuid.uuid4(), uuid.uuid4()
    with wiring.session_factory()() as session, session.begin():
        session.add(Household(id=household_id, name="Home", base_currency="EUR"))
        session.flush()
        session.add(User(id=user_id, email=f"{user_id.hex}@example.com", password_hash="x", name=name,
                         household_id=household_id, role="user", timezone="UTC"))
        session.flush()
        session.add(HouseholdMember(household_id=household_id, user_id=user_id, role="owner"))
    return Caller(user_id, household_id, "EUR", f"test-{uuid.uuid4().hex[:8]}")


def _commands() -> tuple[list[dict], goals.SendCommand]:
    """Commands "sent" to the pool, kept for the test to deliver when it chooses."""
    sent: list[dict] = []
    return sent, sent.append


def _goal_with(caller: Caller, saved: str) -> uuid.UUID:
    """A 1000.00 EUR goal with `saved` contributed and recorded."""
    goal_id = uuid.UUID(str(goals.create_goal(caller, "Car", "1000.00", "EUR", TARGET_DATE, _uow()).goal.id))
    sent, send = _commands()
    goals.submit_goal_contribution(caller, goal_id, {"amount": saved}, None, _uow(), send, default_rates())
    assert goals.record_goal_contribution(goals.RecordGoalContribution.from_dict(sent[0]), _uow())
    return goal_id


def _saved(caller: Caller, goal_id: uuid.UUID) -> Decimal:
    return goals.get_goal(caller, goal_id, _uow()).progress.saved


def _pending_withdrawal(caller: Caller, goal_id: uuid.UUID, amount: str) -> RecordGoalWithdrawal:
    """A pending withdrawal as if the API had accepted it (its check bypassed, as when two race past it)."""
    row = GoalContribution(id=uuid.uuid4(), goal_id=goal_id, household_id=caller.household_id,
                           user_id=caller.user_id, kind="withdrawal", amount=Decimal(amount),
                           original_amount=Decimal(amount), original_currency="EUR", contributed_on=dt.date.today(),
                           status="pending", correlation_id=caller.correlation_id)
    with wiring.session_factory()() as session, session.begin():
        session.add(row)
        session.flush()
        command = goals.goal_command(row, "EUR")
    assert isinstance(command, RecordGoalWithdrawal)
    return command


def _row(row_id: str) -> GoalContribution:
    with wiring.session_factory()() as session:
        return session.get(GoalContribution, uuid.UUID(row_id))


def test_two_withdrawals_racing_past_the_check_never_take_saved_below_zero() -> None:
    """Given 100.00 saved and two pending withdrawals of 70.00 each, when the pool records both at once, one is
    recorded and the other rejected with its reason, and 30.00 stays saved."""
    caller = _person()
    goal_id = _goal_with(caller, "100.00")
    commands = [_pending_withdrawal(caller, goal_id, "70.00") for _ in range(2)]
    published: list[Event] = []
    start = threading.Barrier(len(commands))

    def record(command: RecordGoalWithdrawal) -> None:
        start.wait()
        goals.record_goal_withdrawal(command, _uow(published))

    threads = [threading.Thread(target=record, args=(c,)) for c in commands]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    rows = [_row(c.contribution_id) for c in commands]
    assert sorted(r.status for r in rows) == ["recorded", "rejected"]
    [rejected] = [r for r in rows if r.status == "rejected"]
    assert rejected.reject_reason and "more than is saved" in rejected.reject_reason
    assert _saved(caller, goal_id) == Decimal("30.00")
    assert sorted(e.type for e in published) == ["GoalWithdrawalRecorded", "GoalWithdrawalRejected"]
    [recorded] = [e for e in published if e.type == "GoalWithdrawalRecorded"]
    assert (recorded.payload["amount"], recorded.payload["saved"], recorded.payload["percent"]) == (
        "70.00", "30.00", "3.00")


def test_a_redelivered_withdrawal_counts_once() -> None:
    """Given a withdrawal recorded, when its command comes again (twice), nothing more is taken out."""
    caller = _person()
    goal_id = _goal_with(caller, "100.00")
    sent, send = _commands()
    goals.submit_goal_withdrawal(caller, goal_id, {"amount": "30.00"}, "w-1", _uow(), send, default_rates())
    command = RecordGoalWithdrawal.from_dict(sent[0])
    assert goals.record_goal_withdrawal(command, _uow())
    assert not goals.record_goal_withdrawal(command, _uow())
    assert not goals.record_goal_withdrawal(command, _uow())
    assert _saved(caller, goal_id) == Decimal("70.00")


def test_the_api_check_counts_withdrawals_still_pending() -> None:
    """Given 100.00 saved and 70.00 on its way out, 40.00 more is refused on amount before anything is sent."""
    caller = _person()
    goal_id = _goal_with(caller, "100.00")
    sent, send = _commands()
    goals.submit_goal_withdrawal(caller, goal_id, {"amount": "70.00"}, None, _uow(), send, default_rates())
    with pytest.raises(Invalid) as refused:
        goals.submit_goal_withdrawal(caller, goal_id, {"amount": "40.00"}, None, _uow(), send, default_rates())
    assert refused.value.field == "amount" and "30.00 EUR" in refused.value.message
    assert len(sent) == 1


def _group_of(creator: Caller, member: Caller) -> uuid.UUID:
    group_id = groups.create_group(creator, "Trip", "500.00", "EUR", None, _uow()).group.id
    with wiring.session_factory()() as session:
        email = session.scalar(select(User.email).where(User.id == member.user_id))
    groups.add_member(creator, group_id, email, _uow())
    return group_id


def test_a_contribution_accepted_before_its_member_left_is_still_counted() -> None:
    """Given a contribution accepted (202) but not yet recorded, when its member leaves, the pool still counts it:
    accepted is never lost. The member no longer sees the group nor may contribute."""
    ann, ben = _person("Ann"), _person("Ben")
    group_id = _group_of(ann, ben)
    sent, send = _commands()
    groups.submit_group_contribution(ben, group_id, {"amount": "25.00"}, None, _uow(), send, default_rates())
    groups.remove_member(ben, group_id, ben.user_id, _uow())
    published: list[Event] = []
    assert groups.record_group_contribution(RecordGroupContribution.from_dict(sent[0]), _uow(published))

    view = groups.get_group(ann, group_id, _uow())
    assert view.progress.saved == Decimal("25.00") and view.former_members_total == Decimal("25.00")
    assert [m.user_id for m in view.members] == [ann.user_id]
    [added] = [e for e in published if e.type == "GroupContributionAdded"]
    assert (added.payload["member_name"], added.payload["member_total"]) == ("Ben", "25.00")
    with pytest.raises(NotFound):
        groups.get_group(ben, group_id, _uow())
    with pytest.raises(NotFound):
        groups.submit_group_contribution(ben, group_id, {"amount": "1.00"}, None, _uow(), send, default_rates())


def test_a_contribution_the_pool_must_create_for_a_non_member_is_rejected() -> None:
    """Given a command whose row the API never kept, from someone who is no member (any more), the pool keeps it
    as rejected with the reason and the group's total does not change."""
    ann, ben = _person("Ann"), _person("Ben")
    group_id = _group_of(ann, ben)
    sent, send = _commands()
    groups.submit_group_contribution(ben, group_id, {"amount": "25.00"}, None, _uow(), send, default_rates())
    with wiring.session_factory()() as session, session.begin():  # as if the API's commit had never landed
        session.delete(session.get(GroupContribution, uuid.UUID(sent[0]["contribution_id"])))
    groups.remove_member(ann, group_id, ben.user_id, _uow())
    assert groups.record_group_contribution(RecordGroupContribution.from_dict(sent[0]), _uow())

    with wiring.session_factory()() as session:
        row = session.get(GroupContribution, uuid.UUID(sent[0]["contribution_id"]))
        assert (row.status, row.reject_reason) == ("rejected", "not a member of this group")
    assert groups.get_group(ann, group_id, _uow()).progress.saved == Decimal(0)

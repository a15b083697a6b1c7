"""Group savings challenges: people of any household saving toward one target; only members see a group."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from domain.events import Event
from domain.money import format_amount
from models.goals import GroupContribution, GroupMember, SavingsGroup
from models.identity import User
from services.context import Caller
from services.contributions import ContributionCommand, claim_pending, command_fields, row_values
from services.errors import Conflict, Forbidden, NotFound
from services.goals import (
    Progress,
    Rates,
    SendCommand,
    check_idempotency_key,
    contribution_fields,
    convert_contribution,
    parse_target,
    percent_of,
    progress,
    today,
)
from services.identity import normalize_email
from services.uow import UnitOfWork

#: A challenge is for a circle of people, not a crowd.
MAX_MEMBERS = 50


@dataclass(frozen=True)
class MemberProgress:
    """One member's part of a group's savings."""

    user_id: uuid.UUID
    name: str
    role: str
    total: Decimal
    percent: Decimal
    contributions: int


@dataclass(frozen=True)
class GroupView:
    """A group as a member sees it: the target, the group's progress and each member's."""

    group: SavingsGroup
    progress: Progress
    members: list[MemberProgress]
    pending: int
    #: How many contributions are recorded (the sequence number of the latest live update).
    sequence: int
    #: What members who have left put in: still counted in the group's total, no longer listed.
    former_members_total: Decimal = Decimal(0)


def _personal_household(user_id: uuid.UUID, uow: UnitOfWork) -> uuid.UUID:
    return uow.session.scalar(select(User.household_id).where(User.id == user_id))


def _group(caller: Caller, group_id: uuid.UUID, uow: UnitOfWork, *, lock: bool = False,
           hold_membership: bool = False) -> SavingsGroup:
    """A group the caller is a member of; NotFound for any other id (whether it exists or not).

    `lock` serializes changes to the group; `hold_membership` keeps the caller's membership from being removed
    until this transaction ends (a removal waits for it, then finds what it accepted)."""
    query = select(SavingsGroup).join(GroupMember).where(SavingsGroup.id == group_id,
                                                         GroupMember.user_id == caller.user_id)
    if lock:
        query = query.with_for_update(of=SavingsGroup, key_share=True)
    elif hold_membership:
        query = query.with_for_update(of=GroupMember, key_share=True, read=True)
    group = uow.session.scalar(query)
    if group is None:
        raise NotFound("no such group")
    return group


def _event(group: SavingsGroup, type: str, payload: dict[str, Any], household_id: uuid.UUID, user_id: uuid.UUID,
           correlation_id: str, causation_id: str | None = None) -> Event:
    return Event(type, {"group_id": str(group.id), **payload}, str(household_id), str(user_id), correlation_id,
                 causation_id)


def _described(group: SavingsGroup) -> dict[str, Any]:
    return {"name": group.name, "target": format_amount(group.target_amount, group.currency),
            "currency": group.currency, "target_date": group.target_date.isoformat() if group.target_date else None}


def _view(group: SavingsGroup, uow: UnitOfWork) -> GroupView:
    """The group's progress and each member's, from SQL."""
    recorded = (GroupContribution.group_id == group.id) & (GroupContribution.status == "recorded")
    totals = {user_id: (Decimal(total), count) for user_id, total, count in uow.session.execute(
        select(GroupContribution.user_id, func.sum(GroupContribution.amount), func.count())
        .where(recorded).group_by(GroupContribution.user_id))}
    pending = uow.session.scalar(select(func.count()).where(
        GroupContribution.group_id == group.id, GroupContribution.status == "pending")) or 0
    members = []
    for user_id, name, role in uow.session.execute(
            select(GroupMember.user_id, User.name, GroupMember.role).join(User, User.id == GroupMember.user_id)
            .where(GroupMember.group_id == group.id).order_by(GroupMember.created_at, GroupMember.user_id)):
        total, count = totals.get(user_id, (Decimal(0), 0))
        members.append(MemberProgress(user_id, name, role, total, percent_of(total, group.target_amount), count))
    saved = sum((total for total, _ in totals.values()), Decimal(0))
    shown = progress(group.target_amount, saved, group.currency, group.created_at.date(), group.target_date, today())
    former = saved - sum((m.total for m in members), Decimal(0))
    return GroupView(group, shown, members, pending, sum(count for _, count in totals.values()), former)


def create_group(caller: Caller, name: str, target: str, currency: str, target_date: dt.date | None,
                 uow: UnitOfWork) -> GroupView:
    """Start a group savings challenge with the caller as its creator and first member."""
    amount = parse_target(target, currency)
    with uow:
        household_id = _personal_household(caller.user_id, uow)
        group = SavingsGroup(id=uuid.uuid4(), name=name, creator_id=caller.user_id, household_id=household_id,
                             target_amount=amount, currency=currency, target_date=target_date,
                             created_at=dt.datetime.now(dt.UTC))
        uow.session.add(group)
        uow.session.flush()
        uow.session.add(GroupMember(group_id=group.id, user_id=caller.user_id, role="creator"))
        uow.emit(_event(group, "GroupCreated", _described(group), household_id, caller.user_id,
                        caller.correlation_id))
        uow.commit()
        return _view(group, uow)


def get_group(caller: Caller, group_id: uuid.UUID, uow: UnitOfWork) -> GroupView:
    """A group the caller is a member of, with everyone's progress; NotFound otherwise."""
    with uow:
        # One snapshot: a contribution committing between the reads must not split the totals from the state.
        uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return _view(_group(caller, group_id, uow), uow)


def list_groups(caller: Caller, uow: UnitOfWork) -> list[GroupView]:
    """The groups the caller is a member of, oldest first."""
    with uow:
        groups = uow.session.scalars(select(SavingsGroup).join(GroupMember).where(
            GroupMember.user_id == caller.user_id).order_by(SavingsGroup.created_at, SavingsGroup.id))
        return [_view(group, uow) for group in list(groups)]


def add_member(caller: Caller, group_id: uuid.UUID, email: str, uow: UnitOfWork) -> GroupView:
    """The creator invites a registered user (of any household) into the group."""
    with uow:
        group = _group(caller, group_id, uow, lock=True)
        if group.creator_id != caller.user_id:
            raise Forbidden("only the group's creator adds members")
        user = uow.session.scalar(select(User).where(User.email == normalize_email(email)))
        if user is None:
            raise NotFound("no user with this email", field="email")
        if uow.session.get(GroupMember, (group.id, user.id)) is not None:
            raise Conflict("already a member of this group", field="email")
        count = uow.session.scalar(select(func.count()).where(GroupMember.group_id == group.id)) or 0
        if count >= MAX_MEMBERS:
            raise Conflict(f"a group has at most {MAX_MEMBERS} members", field="email")
        uow.session.add(GroupMember(group_id=group.id, user_id=user.id, role="member", invited_by=caller.user_id,
                                    created_at=dt.datetime.now(dt.UTC)))
        uow.emit(_event(group, "GroupMemberAdded", {"member_id": str(user.id), "member_name": user.name},
                        _personal_household(caller.user_id, uow), caller.user_id, caller.correlation_id))
        uow.commit()
        return _view(group, uow)


def remove_member(caller: Caller, group_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWork) -> None:
    """A member leaves (user_id is the caller's own) or the creator removes another member. What they contributed
    stays in the group's total; they no longer see the group, contribute to it or hear of it. The creator cannot
    leave (Conflict); anyone else removing another is Forbidden; a non-member of the group is NotFound."""
    with uow:
        group = _group(caller, group_id, uow, lock=True)
        leaving = user_id == caller.user_id
        if leaving and group.creator_id == caller.user_id:
            raise Conflict("the group's creator cannot leave it: a group always has its creator (groups cannot be "
                           "deleted); remove the other members instead")
        if not leaving and group.creator_id != caller.user_id:
            raise Forbidden("only the group's creator removes other members; a member may only leave")
        # Waits for contributions the member is submitting (each holds their membership row), so every one the API
        # accepted was accepted while they were a member and is counted; none can be accepted after.
        member = uow.session.get(GroupMember, (group.id, user_id), with_for_update=True)
        if member is None:
            raise NotFound("no such member of this group", field="user_id")
        name = uow.session.scalar(select(User.name).where(User.id == user_id))
        uow.session.delete(member)
        uow.session.flush()
        uow.emit(_event(group, "GroupMemberRemoved", {
            "member_id": str(user_id), "member_name": name, "removed_by": str(caller.user_id),
            "reason": "left" if leaving else "removed"}, _personal_household(caller.user_id, uow), caller.user_id,
            caller.correlation_id))
        uow.commit()


# --- contributions: sent as commands, recorded once -----------------------------------------------------------


@dataclass(frozen=True)
class RecordGroupContribution(ContributionCommand):
    """The command: count this member's contribution toward the group's target."""

    group_id: str


def group_command(row: GroupContribution, currency: str) -> RecordGroupContribution:
    """The command that records a contribution (also what a redelivery carries)."""
    return RecordGroupContribution(group_id=str(row.group_id), **command_fields(row, currency))


def _known_key(group_id: uuid.UUID, user_id: uuid.UUID, key: str, uow: UnitOfWork) -> uuid.UUID | None:
    return uow.session.scalar(select(GroupContribution.id).where(
        GroupContribution.group_id == group_id, GroupContribution.user_id == user_id,
        GroupContribution.idempotency_key == key))


def submit_group_contribution(caller: Caller, group_id: uuid.UUID, data: dict[str, Any], key: str | None,
                              uow: UnitOfWork, send: SendCommand, rates: Rates) -> tuple[uuid.UUID, bool]:
    """Accept a member's contribution as pending and send it to its pool; (id, created)."""
    check_idempotency_key(key)
    with uow:
        group = _group(caller, group_id, uow, hold_membership=True)
        if key and (known := _known_key(group.id, caller.user_id, key, uow)):
            return known, False
        on = data.get("contributed_on") or today()
        converted = convert_contribution(data["amount"], data.get("currency") or group.currency, group.currency, on,
                                         rates)
        row = GroupContribution(id=uuid.uuid4(), group_id=group.id, user_id=caller.user_id,
                                household_id=_personal_household(caller.user_id, uow), contributed_on=on,
                                status="pending", idempotency_key=key, correlation_id=caller.correlation_id,
                                **contribution_fields(converted))
        uow.session.add(row)
        try:
            uow.session.flush()
        except IntegrityError:
            uow.session.rollback()
            return _known_key(group.id, caller.user_id, key or "", uow) or row.id, False
        send(group_command(row, group.currency).to_dict())
        uow.commit()
        return row.id, True


def _row_values(cmd: RecordGroupContribution) -> dict[str, Any]:
    return {**row_values(cmd), "group_id": uuid.UUID(cmd.group_id)}


def _contributor(view: GroupView, user_id: uuid.UUID, uow: UnitOfWork) -> tuple[str, Decimal, Decimal]:
    """(name, total, percent of the target) of whoever made a contribution, member or former member."""
    mine = next((m for m in view.members if m.user_id == user_id), None)
    if mine is not None:
        return mine.name, mine.total, mine.percent
    total = uow.session.scalar(select(func.coalesce(func.sum(GroupContribution.amount), 0)).where(
        GroupContribution.group_id == view.group.id, GroupContribution.user_id == user_id,
        GroupContribution.status == "recorded")) or Decimal(0)
    name = uow.session.scalar(select(User.name).where(User.id == user_id)) or ""
    return name, Decimal(total), percent_of(Decimal(total), view.group.target_amount)


def _claim(cmd: RecordGroupContribution, group: SavingsGroup, uow: UnitOfWork) -> GroupContribution | None:
    """The command's row, locked, if it is still pending; None when it was recorded or rejected already. A row the
    pool has to create itself (the API's commit never landed) for someone who is no member is rejected here."""
    row, created = claim_pending(GroupContribution, _row_values(cmd), uow)
    if row is None or row.group_id != group.id:
        return None
    # A row the API kept was accepted while its maker was a member (a removal waits for submissions in flight):
    # accepted is never lost, even if they have left since.
    if created and uow.session.get(GroupMember, (group.id, row.user_id)) is None:
        row.status, row.recorded_at = "rejected", dt.datetime.now(dt.UTC)
        row.reject_reason = "not a member of this group"
    return row


def record_group_contribution(cmd: RecordGroupContribution, uow: UnitOfWork) -> bool:
    """Count a member's contribution, announce it live (GroupContributionAdded) and, the first time the group's
    total meets the target, GoalReached. Safe to run twice: a contribution counts once."""
    with uow:
        group = uow.session.scalar(select(SavingsGroup).where(SavingsGroup.id == uuid.UUID(cmd.group_id))
                                   .with_for_update(key_share=True))
        if group is None or (row := _claim(cmd, group, uow)) is None:
            return False  # the group is gone, or the contribution was recorded or rejected already
        if row.status == "rejected":
            uow.commit()
            return True
        row.status, row.recorded_at = "recorded", dt.datetime.now(dt.UTC)
        uow.session.flush()
        view = _view(group, uow)
        name, member_total, member_percent = _contributor(view, row.user_id, uow)
        added = _event(group, "GroupContributionAdded", {
            "contribution_id": str(row.id), "user_id": str(row.user_id), "member_name": name,
            "amount": format_amount(row.amount, group.currency), "currency": group.currency,
            "member_total": format_amount(member_total, group.currency), "member_percent": str(member_percent),
            "total": format_amount(view.progress.saved, group.currency),
            "target": format_amount(group.target_amount, group.currency), "percent": str(view.progress.percent),
            "reached": view.progress.saved >= group.target_amount, "sequence": view.sequence,
        }, row.household_id, row.user_id, row.correlation_id, str(row.id))
        uow.emit(added)
        _reach(group, view.progress.saved, added, uow)
        uow.commit()
        return True


def _reach(group: SavingsGroup, total: Decimal, cause: Event, uow: UnitOfWork) -> bool:
    """Mark the group reached and announce it to every member, the first time its total meets the target."""
    if total < group.target_amount or group.reached_event_id is not None:
        return False
    event = Event("GoalReached", {"group_id": str(group.id), "kind": "group", **_described(group),
                                  "saved": format_amount(total, group.currency)},
                  str(group.household_id), cause.user_id, cause.correlation_id, cause.event_id)
    marked = uow.session.execute(update(SavingsGroup).where(
        SavingsGroup.id == group.id, SavingsGroup.reached_event_id.is_(None)).values(
        reached_at=dt.datetime.now(dt.UTC), reached_event_id=uuid.UUID(event.event_id)))
    if marked.rowcount != 1:
        return False
    uow.emit(event)
    return True

"""Turning events into in-app notifications for every member of the household, once each."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from models.goals import GroupMember
from models.identity import HouseholdMember, User
from models.notifications import Notification
from services.context import Caller
from services.uow import UnitOfWork


def _threshold_text(payload: dict) -> tuple[str, str]:
    title = f"Budget {payload['threshold']}% reached"
    body = (f"You have spent {payload['spent']} {payload['currency']} of {payload['limit']} "
            f"{payload['currency']} ({payload['percent']}%) in {payload['period']}.")
    return title, body


def _welcome_text(payload: dict) -> tuple[str, str]:
    return "Welcome", f"Welcome, {payload['name']}. Your base currency is {payload['base_currency']}."


def _member_text(payload: dict) -> tuple[str, str]:
    return "New household member", f"{payload['name']} joined the household as {payload['role']}."


def _goal_reached_text(payload: dict) -> tuple[str, str]:
    if payload.get("group_id"):
        return (f"Group challenge reached: {payload['name']}",
                f"Together you saved {payload['saved']} {payload['currency']} of {payload['target']} "
                f"{payload['currency']} for {payload['name']}.")
    return (f"Goal reached: {payload['name']}",
            f"You saved {payload['saved']} {payload['currency']} of {payload['target']} {payload['currency']} "
            f"for {payload['name']}.")


#: The events that notify, and how each reads.
TEMPLATES = {"BudgetThresholdCrossed": _threshold_text, "UserRegistered": _welcome_text,
             "HouseholdMemberAdded": _member_text, "GoalReached": _goal_reached_text}


def _audience(event: Event, uow: UnitOfWork) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(household, user) of everyone to tell: a group's members, each in their own household, for a group's
    event; otherwise every member of the event's household."""
    if event.payload.get("group_id"):
        return list(uow.session.execute(select(User.household_id, GroupMember.user_id).join(
            User, User.id == GroupMember.user_id).where(GroupMember.group_id == uuid.UUID(event.payload["group_id"]))))
    household_id = uuid.UUID(event.household_id)
    return [(household_id, user_id) for user_id in uow.session.scalars(select(HouseholdMember.user_id).where(
        HouseholdMember.household_id == household_id))]


def notify(event: Event, uow: UnitOfWork) -> int:
    """Write one in-app notification per household member for an event. Safe to run twice."""
    template = TEMPLATES.get(event.type)
    if template is None or event.household_id is None:
        return 0
    title, body = template(event.payload)
    with uow:
        rows = [dict(id=uuid.uuid4(), household_id=household_id, user_id=user_id,
                     event_id=uuid.UUID(event.event_id), event_type=event.type, channel="in_app", title=title,
                     body=body, status="sent") for household_id, user_id in _audience(event, uow)]
        if rows:
            uow.session.execute(insert(Notification).values(rows).on_conflict_do_nothing(
                index_elements=["event_id", "user_id", "channel"]))
        uow.commit()
        return len(rows)


def inbox(caller: Caller, uow: UnitOfWork) -> list[Notification]:
    """The caller's in-app notifications in the current household, newest first."""
    with uow:
        return list(uow.session.scalars(select(Notification).where(
            Notification.user_id == caller.user_id, Notification.household_id == caller.household_id,
            Notification.channel == "in_app")
            .order_by(Notification.created_at.desc()).limit(200)))

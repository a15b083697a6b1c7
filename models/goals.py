"""Savings goals and group savings challenges, their contributions, and the keys that make each effect happen once."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import RATE, Amount, Base, Created, UUIDPk

#: A contribution waits as "pending" until its pool records it ("recorded") or refuses it ("rejected", with a reason).
CONTRIBUTION_STATUSES = ("pending", "recorded", "rejected")
#: Money put into a goal, or taken out of it: amounts are positive either way, the kind gives the direction.
GOAL_MOVEMENT_KINDS = ("contribution", "withdrawal")


class Goal(Base):
    """A household's savings goal: a target amount by a date."""

    __tablename__ = "goals"
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    target_amount: Mapped[Amount]
    currency: Mapped[str] = mapped_column(String(3))
    target_date: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[Created]
    #: Set once, by the contribution (or change of target) that made the savings reach the target.
    reached_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The GoalReached event: unique, so a goal is announced as reached at most once.
    reached_event_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)


class ContributionColumns:
    """The columns every contribution has; `amount` is in the currency of what it counts toward."""

    amount: Mapped[Amount]
    original_amount: Mapped[Amount]
    original_currency: Mapped[str] = mapped_column(String(3))
    fx_rate: Mapped[Decimal | None] = mapped_column(RATE)
    fx_rate_date: Mapped[dt.date | None] = mapped_column(Date)
    contributed_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    correlation_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[Created]
    recorded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Why the pool refused it (status "rejected"): e.g. a withdrawal larger than what was saved by then.
    reject_reason: Mapped[str | None] = mapped_column(Text)


class GoalContribution(ContributionColumns, Base):
    """Money put toward a goal or taken out of it; its id is the command's, so a redelivered command counts once."""

    __tablename__ = "goal_contributions"
    __table_args__ = (UniqueConstraint("goal_id", "idempotency_key"),
                      Index("ix_goal_contributions_goal_status", "goal_id", "status"),
                      CheckConstraint("kind IN ('contribution', 'withdrawal')", name="ck_goal_contributions_kind"))
    id: Mapped[UUIDPk]
    goal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    #: "contribution" adds `amount` to what is saved, "withdrawal" takes it out (one of GOAL_MOVEMENT_KINDS).
    kind: Mapped[str] = mapped_column(String(12), default="contribution", server_default="contribution")


class SavingsGroup(Base):
    """A group savings challenge: people of any household saving toward one target together."""

    __tablename__ = "groups"
    id: Mapped[UUIDPk]
    name: Mapped[str] = mapped_column(String(100))
    creator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    #: The household the creator acted in (the group's events are audited there).
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    target_amount: Mapped[Amount]
    currency: Mapped[str] = mapped_column(String(3))
    target_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[Created]
    reached_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The GoalReached event: unique, so a group is announced as reached at most once.
    reached_event_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)


class GroupMember(Base):
    """A person in a group savings challenge (only members see the group)."""

    __tablename__ = "group_members"
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(10))
    invited_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[Created]


class GroupContribution(ContributionColumns, Base):
    """Money a member put toward a group's target; its id is the command's, so it counts once."""

    __tablename__ = "group_contributions"
    __table_args__ = (UniqueConstraint("group_id", "user_id", "idempotency_key"),
                      Index("ix_group_contributions_group_status", "group_id", "status"))
    id: Mapped[UUIDPk]
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    #: The household the member acted in.
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))

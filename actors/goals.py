"""Savings goal contributions and withdrawals and group challenge contributions, recorded by the categorization pool
(its queue and processes)."""

from __future__ import annotations

from typing import Any

from actors.bus import command
from config import wiring
from services.goals import (
    RecordGoalContribution,
    RecordGoalWithdrawal,
    record_goal_contribution,
    record_goal_withdrawal,
)
from services.groups import RecordGroupContribution, record_group_contribution

#: Contributions are commands on the categorization pool's queue: no new process type is needed.
QUEUE = "categorization"


@command(QUEUE)
def record_goal_contribution_command(payload: dict[str, Any]) -> None:
    """Count one contribution toward a goal. Safe to run twice."""
    record_goal_contribution(RecordGoalContribution.from_dict(payload), wiring.uow())


@command(QUEUE)
def record_goal_withdrawal_command(payload: dict[str, Any]) -> None:
    """Take one withdrawal out of a goal, or reject it if it is more than is saved by now. Safe to run twice."""
    record_goal_withdrawal(RecordGoalWithdrawal.from_dict(payload), wiring.uow())


@command(QUEUE)
def record_group_contribution_command(payload: dict[str, Any]) -> None:
    """Count one member's contribution toward a group's target. Safe to run twice."""
    record_group_contribution(RecordGroupContribution.from_dict(payload), wiring.uow())

"""What goal and group contributions share: the command that records one, and the row it becomes."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain.money import format_amount
from services.uow import UnitOfWork


@dataclass(frozen=True)
class ContributionCommand:
    """The fields of a command that records one contribution (subclasses add what it counts toward)."""

    contribution_id: str
    household_id: str
    user_id: str
    amount: str
    currency: str
    original_amount: str
    original_currency: str
    fx_rate: str | None
    fx_rate_date: str | None
    contributed_on: str
    idempotency_key: str | None
    correlation_id: str

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The command from a message payload."""
        return cls(**data)


def command_fields(row: Any, currency: str) -> dict[str, Any]:
    """The shared command fields of a contribution row (also what a redelivery carries)."""
    return dict(
        contribution_id=str(row.id), household_id=str(row.household_id), user_id=str(row.user_id),
        amount=format_amount(row.amount, currency), currency=currency,
        original_amount=format_amount(row.original_amount, row.original_currency),
        original_currency=row.original_currency, fx_rate=str(row.fx_rate) if row.fx_rate is not None else None,
        fx_rate_date=row.fx_rate_date.isoformat() if row.fx_rate_date else None,
        contributed_on=row.contributed_on.isoformat(), idempotency_key=row.idempotency_key,
        correlation_id=row.correlation_id)


def row_values(cmd: ContributionCommand) -> dict[str, Any]:
    """The shared columns of the pending row a contribution command describes."""
    return dict(
        id=uuid.UUID(cmd.contribution_id), household_id=uuid.UUID(cmd.household_id), user_id=uuid.UUID(cmd.user_id),
        amount=Decimal(cmd.amount), original_amount=Decimal(cmd.original_amount),
        original_currency=cmd.original_currency, fx_rate=Decimal(cmd.fx_rate) if cmd.fx_rate else None,
        fx_rate_date=dt.date.fromisoformat(cmd.fx_rate_date) if cmd.fx_rate_date else None,
        contributed_on=dt.date.fromisoformat(cmd.contributed_on), status="pending",
        idempotency_key=cmd.idempotency_key, correlation_id=cmd.correlation_id)


def claim_pending(model: Any, values: dict[str, Any], uow: UnitOfWork) -> tuple[Any | None, bool]:
    """The command's row of `model`, locked, while it is still pending (else None), and whether the pool created it.

    The API inserts the pending row before it sends the command; if its commit is still in flight this insert waits
    for it, then does nothing. Any other conflict (the key is another's) leaves no row. A row the pool has to create
    itself is one whose request's commit never landed."""
    created = uow.session.scalar(insert(model).values(**values).on_conflict_do_nothing().returning(model.id))
    row = uow.session.scalar(select(model).where(model.id == values["id"]).with_for_update()
                             .execution_options(populate_existing=True))
    return (row if row is not None and row.status == "pending" else None), created is not None

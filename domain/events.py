"""Domain events: facts in the past tense, carried in one envelope on fanout exchanges."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

#: Each event family travels on its own durable fanout exchange.
EXCHANGE_OF: dict[str, str] = {
    "UserRegistered": "finance.users",
    "UserUpdated": "finance.users",
    "HouseholdMemberAdded": "finance.users",
    "HouseholdMemberRoleChanged": "finance.users",
    "HouseholdMemberRemoved": "finance.users",
    "LoginSucceeded": "finance.security",
    "LoginFailed": "finance.security",
    "TokenRevoked": "finance.security",
    "RoleChanged": "finance.security",
    "PersonalAccessTokenCreated": "finance.security",
    "PasswordChanged": "finance.security",
    "AccountOpened": "finance.accounts",
    "TransactionRecorded": "finance.transactions",
    "TransactionRejected": "finance.transactions",
    "TransactionUpdated": "finance.transactions",
    "TransactionDeleted": "finance.transactions",
    "ImportFinished": "finance.transactions",
    "ImportReverted": "finance.transactions",
    "CategoriesMerged": "finance.transactions",
    "RuleApplied": "finance.transactions",
    "CurrencyConverted": "finance.fx",
    "CurrencyConversionMissing": "finance.fx",
    "CircuitOpened": "finance.fx",
    "CircuitClosed": "finance.fx",
    "ManualRateSet": "finance.fx",
    "HistoryReconverted": "finance.fx",
    "BaseCurrencyChanged": "finance.transactions",
    "BudgetCreated": "finance.budgets",
    "BudgetThresholdCrossed": "finance.budgets",
    "GoalCreated": "finance.goals",
    "GoalUpdated": "finance.goals",
    "GoalDeleted": "finance.goals",
    "GoalContributed": "finance.goals",
    "GoalWithdrawalRecorded": "finance.goals",
    "GoalWithdrawalRejected": "finance.goals",
    "GoalReached": "finance.goals",
    "GroupCreated": "finance.groups",
    "GroupMemberAdded": "finance.groups",
    "GroupMemberRemoved": "finance.groups",
    "GroupContributionAdded": "finance.groups",
    "AnomalyDetected": "finance.insights",
}

#: Every exchange the platform declares, in a stable order.
EXCHANGES: tuple[str, ...] = tuple(dict.fromkeys(EXCHANGE_OF.values()))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Event:
    """The envelope every event travels in."""

    type: str
    payload: dict[str, Any]
    household_id: str | None
    user_id: str | None
    correlation_id: str
    causation_id: str | None
    event_id: str = field(default_factory=_new_id)
    version: int = 1
    occurred_at: str = field(default_factory=_now)
    #: Where an API-originated command came from: {"client_address": ..., "user_agent": ...}; None otherwise.
    origin: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.type not in EXCHANGE_OF:
            raise ValueError(f"unknown event type {self.type!r}")

    @property
    def exchange(self) -> str:
        """The fanout exchange this event is published on."""
        return EXCHANGE_OF[self.type]

    def to_dict(self) -> dict[str, Any]:
        """The envelope as JSON-ready data, a copy (without `origin` when there is none, as envelopes were before
        it)."""
        return copy.deepcopy(self.envelope())

    def envelope(self) -> dict[str, Any]:
        """`to_dict` without the copy: the payload and origin themselves, for serializing at once."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if data["origin"] is None:
            del data["origin"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Rebuild an envelope received from the bus (envelopes from before a field existed still parse)."""
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__ if name in data})

    def caused(self, type: str, payload: dict[str, Any]) -> Event:
        """A follow-up event caused by this one, in the same correlation."""
        return Event(
            type=type,
            payload=payload,
            household_id=self.household_id,
            user_id=self.user_id,
            correlation_id=self.correlation_id,
            causation_id=self.event_id,
            origin=self.origin,
        )

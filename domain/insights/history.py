"""The transactions insight algorithms read: one currency, amounts positive, expense or income."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from domain.insights.payees import payee_key


@dataclass(frozen=True)
class Txn:
    """One transaction as insights see it: a positive amount in one currency, spent (expense) or received."""

    id: str
    occurred_on: dt.date
    amount: Decimal
    type: str = "expense"
    payee: str = ""
    category: str | None = None

    @property
    def payee_key(self) -> str:
        """The normalized payee."""
        return payee_key(self.payee)

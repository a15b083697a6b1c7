"""The transactions insight algorithms read: one currency, amounts positive, expense or income."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import NamedTuple

from domain.insights.payees import payee_key


class Txn(NamedTuple):
    """One transaction as insights see it: a positive amount in one currency, spent (expense) or received."""

    # A named tuple, not a dataclass: detection makes one for each of a payee's past charges, for every batch, and
    # a tuple is made four times faster.

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

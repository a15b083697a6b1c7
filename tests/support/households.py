"""Households built straight in SQL, for tests that need one without going through the API."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy.orm import Session

from models.identity import Household
from models.ledger import Account


def add_eur_household(session: Session, household_id: uuid.UUID, account_id: uuid.UUID, name: str) -> None:
    """A household in EUR with one checking account, "Main", that opened at 0 (flushed, not committed)."""
    session.add(Household(id=household_id, name=name, base_currency="EUR"))
    session.flush()
    session.add(Account(id=account_id, household_id=household_id, name="Main", type="checking", currency="EUR",
                        opening_balance=Decimal(0), balance=Decimal(0)))
    session.flush()

"""Unusual transactions flagged by the insights pool, one row per (transaction, kind)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Amount, Base, Created, UUIDPk
from models.ledger import Transaction


class Anomaly(Base):
    """A transaction that looked unusual, why, and the AnomalyDetected event that announced it."""

    __tablename__ = "insights_anomalies"
    __table_args__ = (
        UniqueConstraint("transaction_id", "kind", name="uq_insights_anomalies_transaction_kind"),
        Index("ix_insights_anomalies_household_date", "household_id", "occurred_on", "id"),
    )
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transactions.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID]
    #: outlier, new_payee_large or duplicate_charge.
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    payee: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Amount]
    currency: Mapped[str] = mapped_column(String(3))
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    #: The AnomalyDetected event: unique, so each is announced once.
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    created_at: Mapped[Created]


#: Detection reads a category's recent spending per transaction: one index range.
CATEGORY_HISTORY_INDEX = Index("ix_transactions_household_category_date", Transaction.household_id,
                               Transaction.category_id, Transaction.occurred_on)

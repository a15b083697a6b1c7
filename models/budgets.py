"""Budgets, the transactions counted against them, and the thresholds already alerted."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ARRAY, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Amount, Base, Created, UUIDPk


class Budget(Base):
    """A spending limit for one category per period."""

    __tablename__ = "budgets"
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id"))
    amount: Mapped[Amount]
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(10))
    thresholds: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    rollover: Mapped[str] = mapped_column(String(30), default="none")
    created_at: Mapped[Created]


class BudgetEntry(Base):
    """One transaction counted in one budget period: the SQL truth behind spent totals."""

    __tablename__ = "budget_entries"
    #: A period's entries of one budget are one index range, their amounts in it (spent and rollover sums read
    #: only the index).
    __table_args__ = (Index("ix_budget_entries_budget_period", "budget_id", "period_start",
                            postgresql_include=["amount"]),)
    budget_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    period_start: Mapped[dt.date]
    amount: Mapped[Amount]
    counted_at: Mapped[Created]


class BudgetAlert(Base):
    """A threshold crossed in a period; its key makes each alert happen once."""

    __tablename__ = "budget_alerts"
    budget_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True)
    period_start: Mapped[dt.date] = mapped_column(primary_key=True)
    threshold: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[uuid.UUID]
    created_at: Mapped[Created]

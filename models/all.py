"""Imports every model so that metadata is complete (Alembic, tests)."""

from __future__ import annotations

from models import anomalies, audit, budgets, fx, goals, identity, insights, ledger, messaging, notifications
from models.base import Base

__all__ = ["Base", "anomalies", "audit", "budgets", "fx", "goals", "identity", "insights", "ledger", "messaging",
           "notifications"]

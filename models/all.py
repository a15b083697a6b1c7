"""Imports every model so that metadata is complete (Alembic, tests)."""

from __future__ import annotations

from models import audit, budgets, fx, goals, identity, ledger, messaging, notifications
from models.base import Base

__all__ = ["Base", "audit", "budgets", "fx", "goals", "identity", "ledger", "messaging", "notifications"]

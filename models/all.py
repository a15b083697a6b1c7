"""Imports every model so that metadata is complete (Alembic, tests)."""

from __future__ import annotations

from models import budgets, fx, goals, identity, ledger, messaging
from models.base import Base

__all__ = ["Base", "budgets", "fx", "goals", "identity", "ledger", "messaging"]

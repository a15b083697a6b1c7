"""Imports every model so that metadata is complete (Alembic, tests)."""

from __future__ import annotations

from models import budgets, identity, ledger, messaging
from models.base import Base

__all__ = ["Base", "budgets", "identity", "ledger", "messaging"]

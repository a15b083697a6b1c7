"""The worker pools: each a Procfile process type, scaled on its own."""

from __future__ import annotations

import importlib
from types import ModuleType

#: Pool name -> the module that declares its actors.
POOLS: dict[str, str] = {
    "categorization": "actors.categorization",
    "fx": "actors.fx",
    "budgets": "actors.budgets",
    "notifications": "actors.notifications",
    "audit": "actors.audit",
    "insights": "actors.insights",
}


def load(pool: str) -> ModuleType:
    """Import one pool's actors; KeyError names an unknown pool."""
    return importlib.import_module(POOLS[pool])


def load_all() -> list[ModuleType]:
    """Import every pool's actors (for the topology and the operator CLI)."""
    return [load(pool) for pool in POOLS]

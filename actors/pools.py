"""The worker pools: each a Procfile process type, scaled on its own."""

from __future__ import annotations

import importlib
import os
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


#: Pools whose threads mostly wait for a group commit run this many times WORKER_THREADS: more messages in hand
#: make bigger batches, at the cost of an idle thread each.
THREAD_FACTOR = {"categorization": 4}


def threads_for(pool: str, default: int) -> int:
    """Threads for one pool: `<POOL>_WORKER_THREADS` (e.g. BUDGETS_WORKER_THREADS), else WORKER_THREADS (times
    THREAD_FACTOR for pools that batch)."""
    raw = os.environ.get(f"{pool.upper()}_WORKER_THREADS", "")
    return int(raw) if raw else default * THREAD_FACTOR.get(pool, 1)

"""Keeping the daily aggregates of the insights pool in step with the ledger."""

from __future__ import annotations

from typing import Any

from actors.bus import subscriber


@subscriber("insights.aggregates", exchanges=("finance.transactions",))
def aggregate_on_event(envelope: dict[str, Any]) -> None:
    """Fold one ledger event into the daily aggregates. Safe to run twice. (Skeleton: filled in by issue 9.)"""

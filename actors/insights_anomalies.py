"""Flagging unusual transactions as they land."""

from __future__ import annotations

from typing import Any

from actors.bus import subscriber


@subscriber("insights.anomalies", exchanges=("finance.transactions",))
def detect_on_event(envelope: dict[str, Any]) -> None:
    """Look at one recorded transaction for anomalies. Safe to run twice. (Skeleton: filled in by issue 9.)"""

"""The insights pool: daily aggregates that reports read, and unusual transactions flagged as they land."""

from __future__ import annotations

from actors.insights_aggregates import aggregate_on_event
from actors.insights_anomalies import detect_on_event

#: The queues this pool consumes.
QUEUES = ("insights.aggregates", "insights.anomalies")

__all__ = ["QUEUES", "aggregate_on_event", "detect_on_event"]

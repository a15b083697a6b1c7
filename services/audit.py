"""The audit archive: every event appended once, behind one interface with two backends."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Protocol

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import sessionmaker

from domain.events import EXCHANGE_OF, Event
from models.audit import AuditRecord

#: Events about one person's credentials; other members of the household never see them.
PRIVATE_TYPES = tuple(t for t, exchange in EXCHANGE_OF.items() if exchange == "finance.security")


class AuditStore(Protocol):
    """Where audited events are kept."""

    def append(self, event: Event) -> bool:
        """Store an event unless it is already there; True when it was new."""

    def by_correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        """The stored events of one correlation id, oldest first."""

    def for_household(self, household_id: str, viewer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A household's stored events as one member may see them (others' security events left out)."""


def _record(event: Event) -> dict[str, Any]:
    return dict(event_id=uuid.UUID(event.event_id), type=event.type, version=event.version,
                occurred_at=dt.datetime.fromisoformat(event.occurred_at),
                household_id=uuid.UUID(event.household_id) if event.household_id else None,
                user_id=uuid.UUID(event.user_id) if event.user_id else None,
                correlation_id=event.correlation_id or "", causation_id=event.causation_id, payload=event.payload)


def _as_dict(row: AuditRecord) -> dict[str, Any]:
    return {"event_id": str(row.event_id), "type": row.type, "version": row.version,
            "occurred_at": row.occurred_at.isoformat(), "household_id": str(row.household_id or ""),
            "user_id": str(row.user_id or ""), "correlation_id": row.correlation_id,
            "causation_id": row.causation_id, "payload": row.payload}


class PostgresAuditStore:
    """The audit archive in PostgreSQL (the default when no MongoDB is configured)."""

    def __init__(self, factory: sessionmaker) -> None:
        self._factory = factory

    def append(self, event: Event) -> bool:
        """Store an event unless it is already there; True when it was new."""
        with self._factory() as session, session.begin():
            result = session.execute(insert(AuditRecord).values(**_record(event))
                                     .on_conflict_do_nothing(index_elements=["event_id"]))
            return result.rowcount == 1

    def by_correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        """The stored events of one correlation id, oldest first."""
        with self._factory() as session:
            rows = session.scalars(select(AuditRecord).where(AuditRecord.correlation_id == correlation_id)
                                   .order_by(AuditRecord.occurred_at))
            return [_as_dict(r) for r in rows]

    def for_household(self, household_id: str, viewer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A household's stored events as one member may see them (others' security events left out)."""
        visible = or_(AuditRecord.type.not_in(PRIVATE_TYPES), AuditRecord.user_id == uuid.UUID(viewer_id))
        with self._factory() as session:
            rows = session.scalars(select(AuditRecord).where(
                AuditRecord.household_id == uuid.UUID(household_id), visible)
                .order_by(AuditRecord.occurred_at.desc()).limit(limit))
            return [_as_dict(r) for r in rows]


class MongoAuditStore:
    """The audit archive in MongoDB, used when MONGO_URL is set (unique index on event_id)."""

    def __init__(self, url: str) -> None:
        import pymongo

        self._pymongo = pymongo
        self._events = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000).get_default_database(
            "finance")["audit_events"]
        self._events.create_index("event_id", unique=True)
        self._events.create_index([("household_id", 1), ("occurred_at", -1)])
        self._events.create_index("correlation_id")

    def append(self, event: Event) -> bool:
        """Store an event unless it is already there; True when it was new."""
        try:
            self._events.insert_one(event.to_dict())
        except self._pymongo.errors.DuplicateKeyError:
            return False
        return True

    def by_correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        """The stored events of one correlation id, oldest first."""
        return list(self._events.find({"correlation_id": correlation_id}, {"_id": 0}).sort("occurred_at", 1))

    def for_household(self, household_id: str, viewer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A household's stored events as one member may see them (others' security events left out)."""
        query = {"household_id": household_id,
                 "$or": [{"type": {"$nin": list(PRIVATE_TYPES)}}, {"user_id": viewer_id}]}
        return list(self._events.find(query, {"_id": 0}).sort("occurred_at", -1).limit(limit))

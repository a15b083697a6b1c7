"""The audit archive in MongoDB through pymongo, used when MONGO_URL is set.

No multi-document transactions (a standalone mongod has none): a record takes the next seq of its chain
optimistically and the unique index on (chain_id, seq) refuses a second record at the same place, so
concurrent writers retry behind each other and a chain never forks. A unique index on event_id keeps
every event once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pymongo
import pymongo.errors

from domain.audit_chain import GENESIS, Anchor, format_time, linked
from domain.events import Event
from services.audit import MAX_PAGE, PRIVATE_TYPES, AuditPage, AuditQuery, decode_cursor, page_of, to_record

#: Attempts to take a chain's next seq before giving up (the message is then retried).
APPEND_ATTEMPTS = 50
_NO_ID = {"_id": 0}


def _filter(q: AuditQuery) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    if q.household_id:
        conditions.append({"household_id": q.household_id})
    if q.viewer_id:
        conditions.append({"$or": [{"type": {"$nin": list(PRIVATE_TYPES)}}, {"user_id": q.viewer_id}]})
    if q.types:
        conditions.append({"type": {"$in": list(q.types)}})
    if q.since:
        conditions.append({"occurred_at": {"$gte": format_time(q.since)}})
    if q.until:
        conditions.append({"occurred_at": {"$lt": format_time(q.until)}})
    if q.cursor:
        moment, event_id = decode_cursor(q.cursor)
        conditions.append({"$or": [{"occurred_at": {"$lt": moment}},
                                   {"occurred_at": moment, "event_id": {"$lt": event_id}}]})
    return {"$and": conditions} if conditions else {}


class MongoAuditStore:
    """Records in `audit_events` (unique event_id, unique chain_id + seq), chain anchors in `audit_chains`."""

    def __init__(self, url: str, database: str | None = None, *, timeout_ms: int = 5000) -> None:
        client: pymongo.MongoClient = pymongo.MongoClient(url, serverSelectionTimeoutMS=timeout_ms, tz_aware=True)
        db = client[database] if database else client.get_default_database("finance")
        self.client = client
        self._events = db["audit_events"]
        self._chains = db["audit_chains"]
        self._events.create_index("event_id", unique=True)
        self._events.create_index([("chain_id", 1), ("seq", 1)], unique=True)
        self._events.create_index([("household_id", 1), ("occurred_at", -1), ("event_id", -1)])
        self._events.create_index([("type", 1), ("occurred_at", -1)])
        self._events.create_index([("occurred_at", -1), ("event_id", -1)])
        self._events.create_index("correlation_id")
        self._chains.create_index("chain_id", unique=True)

    def append(self, event: Event) -> bool:
        """Store an event unless it is already there; True when it was new."""
        record = to_record(event)
        if self._events.find_one({"event_id": record["event_id"]}, {"_id": 1}):
            return False
        self._ensure_chain(record["chain_id"])
        for _ in range(APPEND_ATTEMPTS):
            seq, prev_hash = self._head(record["chain_id"])
            placed = linked(record, seq + 1, prev_hash)
            try:
                self._events.insert_one({**placed, "recorded_at": dt.datetime.now(dt.UTC)})
            except pymongo.errors.DuplicateKeyError:
                if self._events.find_one({"event_id": record["event_id"]}, {"_id": 1}):
                    return False  # a redelivery stored it meanwhile
                continue  # another writer took this seq: link after its record
            self._chains.update_one({"chain_id": record["chain_id"], "head_seq": {"$lt": placed["seq"]}},
                                    {"$set": {"head_seq": placed["seq"], "head_hash": placed["hash"]}})
            return True
        raise RuntimeError(f"could not append to audit chain {record['chain_id']}: too much contention")

    def append_many(self, events: list[Event]) -> list[bool]:
        """Store several events one after another; for each, True when it was new."""
        return [self.append(event) for event in events]

    def _ensure_chain(self, chain_id: str) -> None:
        self._chains.update_one({"chain_id": chain_id}, {"$setOnInsert": {
            "head_seq": 0, "head_hash": GENESIS, "base_seq": 0, "base_hash": GENESIS}}, upsert=True)

    def _anchor(self, chain_id: str) -> Anchor:
        head = self._chains.find_one({"chain_id": chain_id}) or {}
        return Anchor(head.get("base_seq", 0), head.get("base_hash", GENESIS), head.get("head_seq", 0))

    def _head(self, chain_id: str) -> tuple[int, str]:
        last = self._events.find_one({"chain_id": chain_id}, {"seq": 1, "hash": 1}, sort=[("seq", -1)])
        if last:
            return int(last["seq"]), str(last["hash"])
        anchor = self._anchor(chain_id)
        return anchor.base_seq, anchor.base_hash

    def by_correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        """The stored events of one correlation id, oldest first."""
        return [_plain(d) for d in self._events.find({"correlation_id": correlation_id}, _NO_ID)
                .sort([("occurred_at", 1), ("event_id", 1)])]

    def for_household(self, household_id: str, viewer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A household's latest records as one member may see them."""
        return self.query(AuditQuery(household_id=household_id, viewer_id=viewer_id, limit=limit)).items

    def query(self, q: AuditQuery) -> AuditPage:
        """A page of records newest first (by time, then event id)."""
        found = self._events.find(_filter(q), _NO_ID).sort([("occurred_at", -1), ("event_id", -1)])
        return page_of([_plain(d) for d in found.limit(min(q.limit, MAX_PAGE) + 1)], q)

    def export(self, q: AuditQuery) -> Iterator[dict[str, Any]]:
        """Every record the query selects, oldest first, with its chain fields."""
        unpaged = AuditQuery(q.household_id, q.viewer_id, q.types, q.since, q.until)
        for doc in self._events.find(_filter(unpaged), _NO_ID).sort([("occurred_at", 1), ("event_id", 1)]):
            yield _plain(doc)

    def chain_ids(self) -> list[str]:
        """Every chain the store holds (by its anchor or by its records)."""
        return sorted(set(self._chains.distinct("chain_id")) | set(self._events.distinct("chain_id")))

    def chain(self, chain_id: str) -> tuple[Anchor, Iterator[dict[str, Any]]]:
        """A chain's anchor and its stored records in seq order (those retention already anchored skipped)."""
        anchor = self._anchor(chain_id)
        found = self._events.find({"chain_id": chain_id, "seq": {"$gt": anchor.base_seq}}, _NO_ID).sort("seq", 1)
        return anchor, (_plain(d) for d in found)

    def purge(self, before: dt.datetime) -> int:
        """Remove each chain's records up to the first one at or after `before`: anchor first, then delete."""
        removed = 0
        for chain_id in self.chain_ids():
            anchor = self._anchor(chain_id)
            kept = self._events.find_one({"chain_id": chain_id, "occurred_at": {"$gte": format_time(before)}},
                                         {"seq": 1}, sort=[("seq", 1)])
            last_removed = int(kept["seq"]) - 1 if kept else self._head(chain_id)[0]
            last = self._events.find_one({"chain_id": chain_id, "seq": last_removed}, {"seq": 1, "hash": 1})
            if last_removed <= anchor.base_seq or last is None:
                continue
            self._chains.update_one({"chain_id": chain_id, "base_seq": {"$lt": last_removed}},
                                    {"$set": {"base_seq": last_removed, "base_hash": last["hash"]}})
            removed += self._events.delete_many({"chain_id": chain_id, "seq": {"$lte": last_removed}}).deleted_count
        return removed


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the store's plain record."""
    return {k: v for k, v in doc.items() if k not in ("_id", "recorded_at")}

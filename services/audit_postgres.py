"""The audit archive in PostgreSQL (the default when no MongoDB is configured)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, or_, select, text, tuple_, union
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from domain.audit_chain import Anchor, format_time, linked
from domain.events import Event
from models.audit import AuditChain, AuditRecord
from services.audit import MAX_PAGE, PRIVATE_TYPES, AuditPage, AuditQuery, decode_cursor, page_of, to_record

#: Records read per round trip while verifying or exporting.
STREAM_BATCH = 1000

#: Locks chain heads in chain order, so that concurrent batches never deadlock (a missing head is not returned).
_LOCK_HEADS = text("SELECT chain_id, head_seq, head_hash FROM audit_chains WHERE chain_id = ANY(CAST(:chains AS"
                   " varchar[])) ORDER BY chain_id FOR UPDATE")
_CREATE_HEADS = text("INSERT INTO audit_chains (chain_id) SELECT unnest(CAST(:chains AS varchar[]))"
                     " ON CONFLICT DO NOTHING")
_STORED = text("SELECT event_id FROM audit_events WHERE event_id = ANY(CAST(:ids AS uuid[]))")
#: A batch's records, and the chain heads they moved, in one statement whatever the batch size (psycopg prepares it
#: once): both travel as one JSON document each, which costs far less to build than a parameter per value.
_APPEND = text(
    "WITH moved AS (UPDATE audit_chains SET head_seq = h.seq, head_hash = h.hash, updated_at = now()"
    " FROM json_to_recordset(CAST(:heads AS json)) AS h(chain_id varchar, seq bigint, hash varchar)"
    " WHERE audit_chains.chain_id = h.chain_id)"
    " INSERT INTO audit_events (event_id, type, version, occurred_at, household_id, user_id, correlation_id,"
    " causation_id, payload, origin, chain_id, seq, prev_hash, hash)"
    " SELECT event_id, type, version, occurred_at, household_id, user_id, correlation_id, causation_id, payload,"
    " origin, chain_id, seq, prev_hash, hash FROM json_to_recordset(CAST(:records AS json)) AS r(event_id uuid,"
    " type varchar, version integer, occurred_at timestamptz, household_id uuid, user_id uuid, correlation_id varchar,"
    " causation_id varchar, payload jsonb, origin jsonb, chain_id varchar, seq bigint, prev_hash varchar,"
    " hash varchar)")


def as_record(row: AuditRecord) -> dict[str, Any]:
    """A stored row as the store's plain record."""
    return {"chain_id": row.chain_id, "seq": row.seq, "prev_hash": row.prev_hash, "hash": row.hash,
            "event_id": str(row.event_id), "type": row.type, "version": row.version,
            "occurred_at": format_time(row.occurred_at),
            "household_id": str(row.household_id) if row.household_id else None,
            "user_id": str(row.user_id) if row.user_id else None, "correlation_id": row.correlation_id,
            "causation_id": row.causation_id, "origin": row.origin, "payload": row.payload}


def _filters(q: AuditQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if q.household_id:
        conditions.append(AuditRecord.household_id == uuid.UUID(q.household_id))
    if q.viewer_id:
        conditions.append(or_(AuditRecord.type.not_in(PRIVATE_TYPES), AuditRecord.user_id == uuid.UUID(q.viewer_id)))
    if q.types:
        conditions.append(AuditRecord.type.in_(q.types))
    if q.since:
        conditions.append(AuditRecord.occurred_at >= q.since)
    if q.until:
        conditions.append(AuditRecord.occurred_at < q.until)
    return conditions


class PostgresAuditStore:
    """Appends lock the chain's head row, so one household's records are linked one after another."""

    def __init__(self, factory: sessionmaker) -> None:
        self._factory = factory
        self._engine: Engine = factory.kw["bind"]

    def append(self, event: Event) -> bool:
        """Store an event unless it is already there; True when it was new."""
        return self.append_many([event])[0]

    def append_many(self, events: list[Event]) -> list[bool]:
        """Store several events in one transaction; for each, True when it was new."""
        records: dict[str, dict[str, Any]] = {}
        for event in events:
            records.setdefault(event.event_id, to_record(event))
        # Three prebuilt statements on a plain connection: this runs for every event the platform emits, and the
        # ORM's unit of work and per-call statement building cost more than the writes themselves.
        with self._engine.connect() as conn:
            heads = _lock_heads_of_batch(conn, sorted({r["chain_id"] for r in records.values()}))
            stored = set(conn.execute(_STORED, {"ids": [uuid.UUID(i) for i in records]}).scalars())
            placed = []
            for event_id, record in records.items():
                if uuid.UUID(event_id) in stored:
                    continue
                seq, prev_hash = heads[record["chain_id"]]
                placed.append(linked(record, seq + 1, prev_hash))
                heads[record["chain_id"]] = (seq + 1, placed[-1]["hash"])
            if placed:
                conn.execute(_APPEND, _appended(placed, heads))
            conn.commit()
        fresh, answers = {r["event_id"] for r in placed}, []
        for event in events:
            answers.append(event.event_id in fresh)
            fresh.discard(event.event_id)  # a duplicate within the batch is not new either
        return answers

    def by_correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        """The stored events of one correlation id, oldest first."""
        with self._factory() as session:
            rows = session.scalars(select(AuditRecord).where(AuditRecord.correlation_id == correlation_id)
                                   .order_by(AuditRecord.occurred_at, AuditRecord.event_id))
            return [as_record(r) for r in rows]

    def for_household(self, household_id: str, viewer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A household's latest records as one member may see them."""
        return self.query(AuditQuery(household_id=household_id, viewer_id=viewer_id, limit=limit)).items

    def query(self, q: AuditQuery) -> AuditPage:
        """A page of records newest first (by time, then event id)."""
        statement = select(AuditRecord).where(*_filters(q))
        if q.cursor:
            moment, event_id = decode_cursor(q.cursor)
            statement = statement.where(tuple_(AuditRecord.occurred_at, AuditRecord.event_id)
                                        < tuple_(dt.datetime.fromisoformat(moment), uuid.UUID(event_id)))
        statement = statement.order_by(AuditRecord.occurred_at.desc(), AuditRecord.event_id.desc())
        with self._factory() as session:
            rows = [as_record(r) for r in session.scalars(statement.limit(min(q.limit, MAX_PAGE) + 1))]
        return page_of(rows, q)

    def export(self, q: AuditQuery) -> Iterator[dict[str, Any]]:
        """Every record the query selects, oldest first, with its chain fields (read in batches, no open cursor)."""
        after: tuple[dt.datetime, uuid.UUID] | None = None
        while True:
            statement = select(AuditRecord).where(*_filters(q))
            if after:
                statement = statement.where(tuple_(AuditRecord.occurred_at, AuditRecord.event_id) > tuple_(*after))
            with self._factory() as session:
                rows = list(session.scalars(statement.order_by(AuditRecord.occurred_at, AuditRecord.event_id)
                                            .limit(STREAM_BATCH)))
            yield from (as_record(r) for r in rows)
            if len(rows) < STREAM_BATCH:
                return
            after = (rows[-1].occurred_at, rows[-1].event_id)

    def chain_ids(self) -> list[str]:
        """Every chain the store holds (by its head or by its records)."""
        with self._factory() as session:
            chains = union(select(AuditChain.chain_id), select(AuditRecord.chain_id).distinct())
            return sorted(session.execute(chains).scalars())

    def chain(self, chain_id: str) -> tuple[Anchor, Iterator[dict[str, Any]]]:
        """A chain's anchor and its stored records in seq order."""
        with self._factory() as session:
            head = session.get(AuditChain, chain_id)
        anchor = Anchor(head.base_seq, head.base_hash, head.head_seq) if head else Anchor()
        return anchor, self._records_of(chain_id)

    def _records_of(self, chain_id: str) -> Iterator[dict[str, Any]]:
        after = None
        while True:
            statement = select(AuditRecord).where(AuditRecord.chain_id == chain_id)
            if after is not None:
                statement = statement.where(AuditRecord.seq > after)
            with self._factory() as session:
                rows = list(session.scalars(statement.order_by(AuditRecord.seq).limit(STREAM_BATCH)))
            yield from (as_record(r) for r in rows)
            if len(rows) < STREAM_BATCH:
                return
            after = rows[-1].seq

    def purge(self, before: dt.datetime) -> int:
        """Remove each chain's records up to the first one at or after `before`; the anchor keeps the chain whole."""
        removed = 0
        for chain_id in self.chain_ids():
            with self._factory() as session, session.begin():
                removed += _purge_chain(session, chain_id, before)
        return removed


def _lock_heads_of_batch(conn: Connection, chain_ids: list[str]) -> dict[str, tuple[int, str]]:
    """Lock the heads of a batch's chains in chain order; each chain's (head seq, head hash)."""
    heads = {chain: (seq, hash_) for chain, seq, hash_ in conn.execute(_LOCK_HEADS, {"chains": chain_ids})}
    if len(heads) < len(chain_ids):
        # A chain's first record. Creating its head while holding the others' locks would take locks out of chain
        # order (a deadlock with a concurrent batch): let them go, create the missing heads, then lock all in order.
        conn.rollback()
        conn.execute(_CREATE_HEADS, {"chains": chain_ids})
        heads = {chain: (seq, hash_) for chain, seq, hash_ in conn.execute(_LOCK_HEADS, {"chains": chain_ids})}
    return heads


def _appended(placed: list[dict[str, Any]], heads: dict[str, tuple[int, str]]) -> dict[str, str]:
    """The parameters of `_APPEND`: the placed records and the heads of their chains."""
    moved = sorted({r["chain_id"] for r in placed})
    return {"records": json.dumps(placed),
            "heads": json.dumps([{"chain_id": c, "seq": heads[c][0], "hash": heads[c][1]} for c in moved])}


def _lock_heads(session: Session, chain_ids: list[str]) -> dict[str, AuditChain]:
    """Create missing chain heads and lock them all, in chain order (no deadlock between concurrent batches)."""
    session.execute(insert(AuditChain).values([{"chain_id": c} for c in chain_ids]).on_conflict_do_nothing())
    heads = session.scalars(select(AuditChain).where(AuditChain.chain_id.in_(chain_ids))
                            .order_by(AuditChain.chain_id).with_for_update())
    return {h.chain_id: h for h in heads}


def _purge_chain(session: Session, chain_id: str, before: dt.datetime) -> int:
    head = _lock_heads(session, [chain_id])[chain_id]
    first_kept = session.scalar(select(func.min(AuditRecord.seq)).where(
        AuditRecord.chain_id == chain_id, AuditRecord.occurred_at >= before))
    last_removed = (first_kept - 1) if first_kept is not None else head.head_seq
    if last_removed <= head.base_seq:
        return 0
    last = session.scalar(select(AuditRecord).where(AuditRecord.chain_id == chain_id,
                                                    AuditRecord.seq == last_removed))
    if last is None:
        return 0  # the chain is already broken there; leave it for `audit verify` to report
    head.base_seq, head.base_hash = last.seq, last.hash
    result = session.execute(delete(AuditRecord).where(AuditRecord.chain_id == chain_id,
                                                       AuditRecord.seq <= last_removed))
    return result.rowcount

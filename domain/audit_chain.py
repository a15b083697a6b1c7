"""The audit hash chain: each record's hash covers its content and the previous record's hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The chain of events that concern no household (breaker transitions, platform operations).
PLATFORM_CHAIN = "platform"
#: The "previous hash" of a chain's first record.
GENESIS = "0" * 64
#: The fields a record's hash covers, besides the previous record's hash.
HASHED_FIELDS = ("chain_id", "seq", "event_id", "type", "version", "occurred_at", "household_id", "user_id",
                 "correlation_id", "causation_id", "origin", "payload")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def chain_of(household_id: str | None) -> str:
    """The chain an event belongs to: its household's, or the platform's."""
    return household_id or PLATFORM_CHAIN


def format_time(moment: dt.datetime | str) -> str:
    """A fixed-width UTC timestamp (microseconds), so text order is time order and hashes are stable."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime(_TIME_FORMAT)


def canonical(record: Mapping[str, Any]) -> bytes:
    """The record's hashed fields as canonical JSON (sorted keys, no spaces, ASCII)."""
    fields = {name: record.get(name) for name in HASHED_FIELDS}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def link_hash(record: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 over the previous record's hash and this record's canonical form."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(record)).hexdigest()


def linked(record: Mapping[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """The record placed at `seq` after a record whose hash is `prev_hash`."""
    placed = {**record, "seq": seq, "prev_hash": prev_hash}
    placed["hash"] = link_hash(placed, prev_hash)
    return placed


@dataclass(frozen=True)
class Break:
    """The first record where a chain stops verifying."""

    chain_id: str
    seq: int
    event_id: str | None
    reason: str

    def __str__(self) -> str:
        who = f"event {self.event_id}" if self.event_id else "end of chain"
        return f"chain {self.chain_id}: first broken record seq {self.seq} ({who}): {self.reason}"


@dataclass(frozen=True)
class Anchor:
    """Where a chain's stored records start (after a retention checkpoint) and where its head is."""

    base_seq: int = 0
    base_hash: str = GENESIS
    head_seq: int = 0


def verify_chain(chain_id: str, records: Iterable[Mapping[str, Any]], anchor: Anchor = Anchor()) -> Break | None:
    """The first broken record of a chain read in seq order (changed, deleted or reordered), or None."""
    seq, prev_hash = anchor.base_seq, anchor.base_hash
    for record in records:
        problem = _problem(record, seq + 1, prev_hash)
        if problem:
            return Break(chain_id, int(record["seq"]), str(record["event_id"]), problem)
        seq, prev_hash = int(record["seq"]), str(record["hash"])
    if seq < anchor.head_seq:
        return Break(chain_id, seq + 1, None, f"records {seq + 1}..{anchor.head_seq} are missing (deleted)")
    return None


def _problem(record: Mapping[str, Any], expected_seq: int, prev_hash: str) -> str | None:
    if int(record["seq"]) != expected_seq:
        return f"expected seq {expected_seq}, found {record['seq']}: a record is missing or out of order"
    if record["prev_hash"] != prev_hash:
        return "does not link to the previous record (deleted, inserted or reordered)"
    if link_hash(record, prev_hash) != record["hash"]:
        return "content does not match its hash (changed)"
    return None

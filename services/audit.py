"""The audit archive: every event appended once, in a hash chain per household, behind one interface.

Two backends implement `AuditStore`: PostgreSQL (services/audit_postgres.py, the default) and MongoDB
(services/audit_mongo.py, when MONGO_URL is set). tests/contract/test_audit_store.py holds both to one contract.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.audit_chain import Anchor, Break, chain_of, format_time, verify_chain
from domain.events import EXCHANGE_OF, Event
from services.errors import Invalid

#: Events about one person's credentials; other members of the household never see them.
PRIVATE_TYPES = tuple(t for t, exchange in EXCHANGE_OF.items() if exchange == "finance.security")
#: The most records one page holds.
MAX_PAGE = 500


@dataclass(frozen=True)
class AuditQuery:
    """Which records to read: one household (as one member sees it) or all (admins, operators), and filters."""

    household_id: str | None = None
    #: The member reading: others' security events and others' request origins are left out. None: see all.
    viewer_id: str | None = None
    types: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    cursor: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class AuditPage:
    """Records newest first, and the cursor of the next page (None on the last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


@dataclass(frozen=True)
class ChainReport:
    """What `audit verify` found for one chain."""

    chain_id: str
    records: int
    broken: Break | None = field(default=None)


class AuditStore(Protocol):
    """Where audited events are kept, chained per household."""

    def append(self, event: Event) -> bool:
        """Store an event unless it is already there; True when it was new."""

    def append_many(self, events: list[Event]) -> list[bool]:
        """Store several events (one write where the backend can); for each, True when it was new."""

    def by_correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        """The stored events of one correlation id, oldest first."""

    def query(self, q: AuditQuery) -> AuditPage:
        """A page of records newest first (by time, then event id)."""

    def for_household(self, household_id: str, viewer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A household's latest records as one member may see them."""

    def export(self, q: AuditQuery) -> Iterator[dict[str, Any]]:
        """Every record the query selects, oldest first, with its chain fields (cursor and limit ignored)."""

    def chain_ids(self) -> list[str]:
        """Every chain the store holds."""

    def chain(self, chain_id: str) -> tuple[Anchor, Iterator[dict[str, Any]]]:
        """A chain's anchor and its stored records in seq order."""

    def purge(self, before: dt.datetime) -> int:
        """Remove records that occurred before `before`, each chain's anchor moved past them; how many went."""


def to_record(event: Event) -> dict[str, Any]:
    """The fields of an event that the audit keeps (and hashes), before it is placed in its chain."""
    return {"chain_id": chain_of(event.household_id), "event_id": event.event_id, "type": event.type,
            "version": event.version, "occurred_at": format_time(event.occurred_at),
            "household_id": event.household_id or None, "user_id": event.user_id or None,
            "correlation_id": event.correlation_id or "", "causation_id": event.causation_id,
            "origin": event.origin or None, "payload": event.payload}


def visible(record: dict[str, Any], viewer_id: str | None) -> dict[str, Any]:
    """A record as a member sees it: another member's request origin is theirs alone."""
    if viewer_id is None or record.get("user_id") == viewer_id:
        return record
    return {**record, "origin": None}


def encode_cursor(record: dict[str, Any]) -> str:
    """An opaque cursor after this record."""
    raw = json.dumps([record["occurred_at"], record["event_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (time, event id) a cursor names; Invalid(field="cursor") when it names none."""
    try:
        moment, event_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return format_time(moment), str(event_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise Invalid("not a cursor this API gave out", field="cursor") from None


def page_of(rows: list[dict[str, Any]], q: AuditQuery) -> AuditPage:
    """A page from up to limit + 1 rows read newest first."""
    items = [visible(r, q.viewer_id) for r in rows[:q.limit]]
    return AuditPage(items, encode_cursor(items[-1]) if len(rows) > q.limit and items else None)


def verify(store: AuditStore, chain_id: str | None = None) -> list[ChainReport]:
    """Verify one chain or every chain; each report names the first broken record, if any."""
    reports = []
    for chain in [chain_id] if chain_id else store.chain_ids():
        anchor, records = store.chain(chain)
        counted = _Counted(records)
        broken = verify_chain(chain, counted, anchor)
        reports.append(ChainReport(chain, counted.seen, broken))
    return reports


class _Counted:
    """Counts the records a verification read."""

    def __init__(self, records: Iterator[dict[str, Any]]) -> None:
        self._records = records
        self.seen = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for record in self._records:
            self.seen += 1
            yield record

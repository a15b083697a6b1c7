"""The audit hash chain as a pure function: linking, canonical form, and the first broken record."""

from __future__ import annotations

import datetime as dt

from domain.audit_chain import GENESIS, Anchor, chain_of, format_time, link_hash, linked, verify_chain
from domain.events import Event


def _chain(count: int) -> list[dict]:
    records, prev = [], GENESIS
    for i in range(count):
        record = linked({"chain_id": "h", "event_id": f"e{i}", "type": "AccountOpened", "payload": {"i": i}},
                        i + 1, prev)
        records.append(record)
        prev = record["hash"]
    return records


def test_a_hash_covers_the_previous_hash_and_every_hashed_field() -> None:
    """Given one record, a different previous hash or any changed field gives a different hash."""
    record = {"event_id": "e", "type": "AccountOpened", "payload": {"b": 1, "a": 2}}
    assert link_hash(record, GENESIS) == link_hash({**record, "payload": {"a": 2, "b": 1}}, GENESIS)
    assert link_hash(record, GENESIS) != link_hash(record, "1" * 64)
    assert link_hash(record, GENESIS) != link_hash({**record, "payload": {"a": 2, "b": 2}}, GENESIS)
    assert link_hash(record, GENESIS) != link_hash({**record, "origin": {"client_address": "x"}}, GENESIS)


def test_times_are_fixed_width_utc_so_text_order_is_time_order() -> None:
    """Given times in other zones and without microseconds, the format is one width and UTC."""
    assert format_time("2026-11-01T13:00:00+01:00") == "2026-11-01T12:00:00.000000+00:00"
    assert format_time(dt.datetime(2026, 11, 1, 12, 0, 0, 5)) == "2026-11-01T12:00:00.000005+00:00"


def test_an_intact_chain_verifies_and_events_without_a_household_chain_on_the_platform() -> None:
    """Given five linked records, nothing is broken; no household means the platform chain."""
    assert verify_chain("h", _chain(5)) is None
    assert chain_of(None) == "platform" and chain_of("abc") == "abc"


def test_a_changed_record_is_named() -> None:
    """Given the third record's payload changed, verification names seq 3."""
    records = _chain(5)
    records[2] = {**records[2], "payload": {"i": 99}}
    broken = verify_chain("h", records)
    assert (broken.seq, broken.event_id) == (3, "e2") and "changed" in broken.reason


def test_a_deleted_record_names_the_one_after_it_and_a_deleted_tail_is_noticed() -> None:
    """Given the second record gone, seq 3 is named; given the last gone, the head says it is missing."""
    records = _chain(5)
    assert verify_chain("h", records[:1] + records[2:]).event_id == "e2"
    tail = verify_chain("h", records[:4], Anchor(head_seq=5))
    assert (tail.seq, tail.event_id) == (5, None)


def test_reordered_records_are_named_at_the_first_moved_place() -> None:
    """Given the 2nd and 4th records swapped (each re-labelled with the other's seq), seq 2 is named."""
    records = _chain(5)
    moved = [records[0], {**records[3], "seq": 2}, records[2], {**records[1], "seq": 4}, records[4]]
    broken = verify_chain("h", moved)
    assert (broken.seq, broken.event_id) == (2, "e3")


def test_a_chain_after_retention_verifies_from_its_anchor() -> None:
    """Given the first two records purged and their anchor kept, the rest verifies; without the anchor it does not."""
    records = _chain(5)
    assert verify_chain("h", records[2:], Anchor(2, records[1]["hash"], 5)) is None
    assert verify_chain("h", records[2:]) is not None


def test_old_envelopes_without_an_origin_still_parse_and_follow_ups_keep_it() -> None:
    """Given an envelope from before `origin` existed, it parses; an event it causes carries its origin."""
    old = {"type": "AccountOpened", "payload": {}, "household_id": None, "user_id": None, "correlation_id": "c",
           "causation_id": None, "event_id": "e", "version": 1, "occurred_at": "2026-11-01T12:00:00+00:00"}
    assert Event.from_dict(old).origin is None
    event = Event.from_dict({**old, "origin": {"client_address": "203.0.113.1", "user_agent": "ua"}})
    assert event.caused("BudgetCreated", {}).origin == {"client_address": "203.0.113.1", "user_agent": "ua"}

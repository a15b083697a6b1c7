"""Group savings challenges over HTTP with every pool: members of different households, each member's progress,
members-only visibility, contributions counted once, and GoalReached once to every member's own inbox."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, select

from config import wiring
from models.goals import GroupContribution, SavingsGroup
from models.messaging import OutboxEvent
from services.groups import group_command
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

GROUPS = "/api/v1/groups"


def contribute(client: ApiClient, group_id: str, amount: str, key: str | None = None) -> str:
    """Contribute to a group (202); the contribution's id."""
    headers = {"Idempotency-Key": key} if key else {}
    r = client.post(f"{GROUPS}/{group_id}/contributions", {"amount": amount}, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def settled(client: ApiClient, group_id: str, total: str) -> dict:
    """The group once nothing is pending and its total is `total`."""
    def check() -> dict | None:
        group = client.get(f"{GROUPS}/{group_id}").json()
        return group if group["pending_contributions"] == 0 and group["total"]["amount"] == total else None
    return wait_for(check, timeout=15, what=f"group {group_id} to total {total}")


def reached_notes(client: ApiClient) -> list[dict]:
    """The caller's GoalReached notifications."""
    return [n for n in client.get("/api/v1/notifications").json()["items"] if n["event_type"] == "GoalReached"]


def reached_events(group_id: str) -> int:
    """How many GoalReached events were ever emitted for a group."""
    with wiring.session_factory()() as session:
        return session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.envelope["type"].astext == "GoalReached",
            OutboxEvent.envelope["payload"]["group_id"].astext == group_id)) or 0


def redeliver(contribution_id: str) -> None:
    """Send a contribution's command again, twice, as an at-least-once broker may."""
    with wiring.session_factory()() as session:
        row = session.get(GroupContribution, uuid.UUID(contribution_id))
        currency = session.scalar(select(SavingsGroup.currency).where(SavingsGroup.id == row.group_id))
        command = group_command(row, currency).to_dict()
    for _ in range(2):
        wiring.broker().send_command("categorization", "record_group_contribution_command", command)


def test_a_group_shows_each_members_progress_and_reaches_every_member_once(stack: Stack) -> None:
    """Ann (EUR) starts a 300.00 EUR challenge and invites Ben and Cleo from their own households. Each member's
    total and percent of the target and the group's total follow the contributions; a duplicate (same
    Idempotency-Key) and redelivered commands count once; reaching the target notifies all three, each in their
    own inbox, once, and a later contribution does not notify again."""
    ann, ann_me = register(stack.url)
    ben, ben_me = register(stack.url)
    cleo, cleo_me = register(stack.url, base_currency="JPY")
    r = ann.post(GROUPS, {"name": "Trip to Lisbon", "target": {"amount": "300.00"}, "target_date": "2030-06-30"})
    assert r.status_code == 201, r.text
    group = r.json()
    gid = group["id"]
    assert group["target"] == {"amount": "300.00", "currency": "EUR"} and group["creator_id"] == ann_me["id"]
    assert [(m["name"], m["role"], m["total"]["amount"]) for m in group["members"]] == [
        ("Test User", "creator", "0.00")]
    assert ben.get(f"{GROUPS}/{gid}").status_code == 404, "only members see a group"
    assert ben.post(f"{GROUPS}/{gid}/contributions", {"amount": "1.00"}).status_code == 404
    for me in (ben_me, cleo_me):
        r = ann.post(f"{GROUPS}/{gid}/members", {"email": me["email"]})
        assert r.status_code == 201, r.text
    assert ann.post(f"{GROUPS}/{gid}/members", {"email": ben_me["email"]}).status_code == 409
    assert ben.post(f"{GROUPS}/{gid}/members", {"email": f"x-{uuid.uuid4().hex}@example.com"}).status_code == 403
    assert [g["id"] for g in cleo.get(GROUPS).json()["items"]] == [gid]

    contribute(ann, gid, "50.00")
    first = contribute(ben, gid, "100.00", key="ben-1")
    assert contribute(ben, gid, "100.00", key="ben-1") == first
    contribute(cleo, gid, "30.00")
    redeliver(first)
    shown = settled(cleo, gid, "180.00")
    progress = {m["user_id"]: (m["total"]["amount"], m["percent"], m["contributions"]) for m in shown["members"]}
    assert progress == {ann_me["id"]: ("50.00", "16.67", 1), ben_me["id"]: ("100.00", "33.33", 1),
                        cleo_me["id"]: ("30.00", "10.00", 1)}
    assert (shown["percent"], shown["remaining"]["amount"], shown["status"], shown["sequence"]) == (
        "60.00", "120.00", "on_track", 3)

    contribute(cleo, gid, "120.00")
    shown = settled(ann, gid, "300.00")
    assert shown["status"] == "reached" and shown["reached_at"]
    for client in (ann, ben, cleo):
        notes = wait_for(lambda c=client: reached_notes(c), timeout=10, what="the group's GoalReached notification")
        assert len(notes) == 1 and notes[0]["title"] == "Group challenge reached: Trip to Lisbon", notes
    contribute(ben, gid, "10.00")
    redeliver(first)
    assert settled(ben, gid, "310.00")["members"][1]["total"]["amount"] == "110.00"
    time.sleep(1.5)  # long enough for a second announcement, if there were one, to reach the inboxes
    assert reached_events(gid) == 1
    assert [len(reached_notes(c)) for c in (ann, ben, cleo)] == [1, 1, 1]


def test_a_group_is_invisible_to_everyone_but_its_members(stack: Stack) -> None:
    """An outsider gets 404 for the group, its members and its contributions, exactly as for an id that does not
    exist; an unknown email answers 404 naming email."""
    owner, _ = register(stack.url)
    outsider, outsider_me = register(stack.url)
    gid = owner.post(GROUPS, {"name": "Secret", "target": {"amount": "10.00"}}).json()["id"]
    for group_id in (gid, str(uuid.uuid4())):
        assert outsider.get(f"{GROUPS}/{group_id}").status_code == 404
        assert outsider.post(f"{GROUPS}/{group_id}/members", {"email": outsider_me["email"]}).status_code == 404
        assert outsider.post(f"{GROUPS}/{group_id}/contributions", {"amount": "1.00"}).status_code == 404
    assert outsider.get(GROUPS).json()["items"] == []
    r = owner.post(f"{GROUPS}/{gid}/members", {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com"})
    assert r.status_code == 404 and set(r.json()["errors"]) == {"email"}, r.text

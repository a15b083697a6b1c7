"""Leaving a group savings challenge, and its creator removing members, over HTTP with every pool: what they put in
stays in the group's total, but they are no longer listed, no longer see the group, can no longer contribute and
are not told when it is reached; the creator cannot leave; only the creator removes others."""

from __future__ import annotations

import pytest

from tests.e2e.test_bad_input import assert_refused
from tests.e2e.test_groups import GROUPS, contribute, reached_notes, settled
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def new_group(owner: ApiClient, *members: dict, target: str = "100.00") -> str:
    """A group owned by `owner` with these members; its id."""
    r = owner.post(GROUPS, {"name": "Ski trip", "target": {"amount": target}})
    assert r.status_code == 201, r.text
    for me in members:
        assert owner.post(f"{GROUPS}/{r.json()['id']}/members", {"email": me["email"]}).status_code == 201
    return r.json()["id"]


def remove(client: ApiClient, group_id: str, user_id: str) -> None:
    """Remove a member (or leave): 204."""
    r = client.request("DELETE", f"{GROUPS}/{group_id}/members/{user_id}")
    assert r.status_code == 204, r.text


def members_of(client: ApiClient, group_id: str) -> list[str]:
    """The user ids the group lists as members."""
    return [m["user_id"] for m in client.get(f"{GROUPS}/{group_id}").json()["members"]]


def test_a_member_who_leaves_is_gone_but_their_savings_still_count(stack: Stack) -> None:
    """Ben contributes 30.00 and leaves: the group still totals 30.00 (shown as former members' total) without
    listing him; he no longer sees the group, cannot contribute to it, and is not told when it is reached."""
    ann, ann_me = register(stack.url)
    ben, ben_me = register(stack.url)
    gid = new_group(ann, ben_me)
    contribute(ann, gid, "20.00")
    contribute(ben, gid, "30.00")
    settled(ben, gid, "50.00")

    remove(ben, gid, ben_me["id"])
    shown = settled(ann, gid, "50.00")
    assert [m["user_id"] for m in shown["members"]] == [ann_me["id"]]
    assert shown["former_members_total"] == {"amount": "30.00", "currency": "EUR"}
    assert (shown["percent"], shown["sequence"]) == ("50.00", 2)
    assert ben.get(f"{GROUPS}/{gid}").status_code == 404
    assert ben.get(GROUPS).json()["items"] == []
    assert_refused(ben.post(f"{GROUPS}/{gid}/contributions", {"amount": "1.00"}), 404)
    assert_refused(ben.request("DELETE", f"{GROUPS}/{gid}/members/{ben_me['id']}"), 404)

    contribute(ann, gid, "50.00")
    assert settled(ann, gid, "100.00")["status"] == "reached"
    wait_for(lambda: reached_notes(ann), timeout=10, what="the group's GoalReached notification")
    assert reached_notes(ben) == []  # every member's note of one event is written with Ann's, in one go


def test_the_creator_removes_a_member_and_may_invite_them_again(stack: Stack) -> None:
    """Ann removes Ben: he is gone and cannot contribute; Cleo stays. Invited again, Ben is listed with what he
    had put in."""
    ann, _ = register(stack.url)
    ben, ben_me = register(stack.url)
    cleo, cleo_me = register(stack.url)
    gid = new_group(ann, ben_me, cleo_me)
    contribute(ben, gid, "10.00")
    settled(ann, gid, "10.00")

    remove(ann, gid, ben_me["id"])
    assert ben_me["id"] not in members_of(ann, gid) and cleo_me["id"] in members_of(cleo, gid)
    assert_refused(ben.post(f"{GROUPS}/{gid}/contributions", {"amount": "1.00"}), 404)
    assert settled(cleo, gid, "10.00")["former_members_total"]["amount"] == "10.00"

    assert ann.post(f"{GROUPS}/{gid}/members", {"email": ben_me["email"]}).status_code == 201
    shown = ann.get(f"{GROUPS}/{gid}").json()
    assert {m["user_id"]: m["total"]["amount"] for m in shown["members"]}[ben_me["id"]] == "10.00"
    assert shown["former_members_total"]["amount"] == "0.00"


def test_only_the_creator_removes_others_and_the_creator_cannot_leave(stack: Stack) -> None:
    """A member removing another (or the creator) gets 403, the creator leaving 409, an outsider and an unknown
    group 404; the members stay as they were."""
    ann, ann_me = register(stack.url)
    ben, ben_me = register(stack.url)
    cleo, cleo_me = register(stack.url)
    outsider, outsider_me = register(stack.url)
    gid = new_group(ann, ben_me, cleo_me)
    before = members_of(ann, gid)

    assert_refused(ben.request("DELETE", f"{GROUPS}/{gid}/members/{cleo_me['id']}"), 403)
    assert_refused(ben.request("DELETE", f"{GROUPS}/{gid}/members/{ann_me['id']}"), 403)
    body = assert_refused(ann.request("DELETE", f"{GROUPS}/{gid}/members/{ann_me['id']}"), 409)
    assert "creator" in body["message"]
    assert_refused(outsider.request("DELETE", f"{GROUPS}/{gid}/members/{outsider_me['id']}"), 404)
    assert_refused(outsider.request("DELETE", f"{GROUPS}/{gid}/members/{ben_me['id']}"), 404)
    assert_refused(ann.request("DELETE", f"{GROUPS}/{gid}/members/{outsider_me['id']}"), 404, "user_id")
    other = new_group(outsider)
    assert_refused(ann.request("DELETE", f"{GROUPS}/{other}/members/{outsider_me['id']}"), 404)
    assert members_of(ann, gid) == before

"""Live group updates over WebSockets, with two web processes (gunicorn gthread, as the Procfile runs them).

Each web process binds its own exclusive queue to the groups exchange, so a member connected to either process
sees a contribution made through either; a socket of another group sees nothing of it; a missing, bad,
revoked or non-access token is refused before the upgrade (401), a non-member's too (404); a member removed from the
group is told, then cut off.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
import websocket

from tests.support.client import PASSWORD, ApiClient, register
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

GROUPS = "/api/v1/groups"
#: The promise: a member sees a contribution within this many seconds of making it.
LIVE_WITHIN = 1.0


@pytest.fixture(scope="module")
def second_web(stack: Stack) -> str:
    """Another web process on the same database and broker (its own live queue)."""
    return stack.start_web("web-live", free_port(), {})


def ws_url(http_url: str, group_id: str, token: str | None) -> str:
    """The WebSocket address of a group's live updates."""
    query = f"?token={token}" if token is not None else ""
    return f"ws{http_url.removeprefix('http')}/ws/groups/{group_id}{query}"


def token_of(client: ApiClient) -> str:
    """The access token a client sends."""
    return client.http.headers["Authorization"].removeprefix("Bearer ")


def connect(http_url: str, group_id: str, client: ApiClient) -> tuple[websocket.WebSocket, dict]:
    """An open socket on a group's updates and the snapshot it starts with."""
    ws = websocket.create_connection(ws_url(http_url, group_id, token_of(client)), timeout=10)
    first = json.loads(ws.recv())
    assert first["type"] == "snapshot" and first["group"]["id"] == group_id, first
    return ws, first["group"]


def hang_up(ws: websocket.WebSocket) -> None:
    """Close a socket, also when the server closed it first (then close() alone leaves it open)."""
    ws.close(timeout=1)
    ws.shutdown()


def refused(http_url: str, group_id: str, token: str | None) -> int:
    """The HTTP status a handshake is refused with (0 if it was accepted)."""
    try:
        ws = websocket.create_connection(ws_url(http_url, group_id, token), timeout=10)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    hang_up(ws)
    return 0


def next_event(ws: websocket.WebSocket, deadline: float, contribution_id: str) -> dict:
    """The GroupContributionAdded message for a contribution, before a monotonic deadline."""
    while True:
        ws.settimeout(max(deadline - time.monotonic(), 0.001))
        message = json.loads(ws.recv())
        if message["type"] == "GroupContributionAdded" and message["contribution_id"] == contribution_id:
            return message


@pytest.fixture
def sockets() -> Iterator[list[websocket.WebSocket]]:
    """Sockets a test opened, closed afterwards."""
    opened: list[websocket.WebSocket] = []
    yield opened
    for ws in opened:
        hang_up(ws)


def new_group(owner: ApiClient, *members: dict, target: str = "100.00") -> str:
    """A group owned by `owner` with these members; its id."""
    r = owner.post(GROUPS, {"name": f"Live {uuid.uuid4().hex[:6]}", "target": {"amount": target}})
    assert r.status_code == 201, r.text
    for me in members:
        assert owner.post(f"{GROUPS}/{r.json()['id']}/members", {"email": me["email"]}).status_code == 201
    return r.json()["id"]


def test_members_on_two_web_processes_both_see_a_contribution_within_a_second(
        stack: Stack, second_web: str, sockets: list[websocket.WebSocket]) -> None:
    """Ann listens on the first web process, Ben (another household) on the second; Ben's contribution reaches both
    within a second, with both members' totals. Carl, listening to his own group on the first process, sees
    nothing of it, and then sees his own group's contribution."""
    ann, _ = register(stack.url)
    ben, ben_me = register(stack.url)
    carl, _ = register(stack.url)
    gid = new_group(ann, ben_me)
    carl_gid = new_group(carl)
    ann_ws, snapshot = connect(stack.url, gid, ann)
    ben_ws, _ = connect(second_web, gid, ben)
    carl_ws, _ = connect(stack.url, carl_gid, carl)
    sockets += [ann_ws, ben_ws, carl_ws]
    assert snapshot["total"]["amount"] == "0.00" and len(snapshot["members"]) == 2

    for amount, total in (("25.00", "25.00"), ("5.50", "30.50")):
        started = time.monotonic()
        r = ben.post(f"{GROUPS}/{gid}/contributions", {"amount": amount})
        assert r.status_code == 202, r.text
        deadline = started + LIVE_WITHIN
        seen = {who: next_event(ws, deadline, r.json()["id"]) for who, ws in (("ann", ann_ws), ("ben", ben_ws))}
        assert time.monotonic() <= deadline
        for message in seen.values():
            assert message["group_id"] == gid and message["user_id"] == ben_me["id"]
            assert (message["amount"], message["total"], message["member_total"]) == (amount, total, total)
            assert message["currency"] == "EUR" and message["reached"] is False
    assert seen["ann"]["sequence"] == 2 and seen["ann"]["percent"] == "30.50"

    carl_ws.settimeout(1.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        print("carl received", carl_ws.recv())
    r = carl.post(f"{GROUPS}/{carl_gid}/contributions", {"amount": "1.00"})
    assert r.status_code == 202, r.text
    assert next_event(carl_ws, time.monotonic() + 5, r.json()["id"])["group_id"] == carl_gid


def test_a_missing_or_bad_token_or_a_non_member_is_refused(stack: Stack, second_web: str) -> None:
    """No token, a malformed or forged one, a refresh token, a personal access token and a logged-out session's
    token answer 401 before the upgrade; a non-member and an unknown group answer 404; a member gets in."""
    owner, owner_me = register(stack.url)
    outsider, _ = register(stack.url)
    gid = new_group(owner)
    session = ApiClient(stack.url).post("/api/v1/auth/login", {"email": owner_me["email"],
                                                               "password": PASSWORD}).json()
    logged_out = ApiClient(stack.url).post("/api/v1/auth/login", {"email": owner_me["email"],
                                                                  "password": PASSWORD}).json()["access_token"]
    assert ApiClient(stack.url, logged_out).post("/api/v1/auth/logout").status_code == 204
    pat = owner.post("/api/v1/tokens", {"name": "script", "scope": "read"}).json()["token"]
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-secret-0123456789abcdef0123456789", algorithm="HS256")
    for url in (stack.url, second_web):
        for what, token in (("no token", None), ("an empty token", ""), ("a malformed token", "not.a.jwt"),
                            ("a forged token", forged), ("a refresh token", session["refresh_token"]),
                            ("a personal access token", pat), ("a logged-out session", logged_out)):
            assert refused(url, gid, token) == 401, what
        assert refused(url, gid, token_of(outsider)) == 404
        assert refused(url, str(uuid.uuid4()), token_of(owner)) == 404
        assert refused(url, gid, session["access_token"]) == 0


def test_the_socket_closes_with_a_policy_violation_when_the_token_expires(stack: Stack) -> None:
    """A token that expires while the socket is open ends it with close code 1008."""
    owner, _ = register(stack.url)
    gid = new_group(owner)
    claims = jwt.decode(token_of(owner), options={"verify_signature": False})
    claims["exp"] = int(time.time()) + 2
    short_lived = jwt.encode(claims, os.environ["JWT_SECRET_KEY"], algorithm="HS256")
    ws = websocket.create_connection(ws_url(stack.url, gid, short_lived), timeout=10)
    try:
        assert json.loads(ws.recv())["type"] == "snapshot"
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1008, frame.data
    finally:
        hang_up(ws)


def next_of_type(ws: websocket.WebSocket, deadline: float, type_: str) -> dict:
    """The next message of one type, before a monotonic deadline."""
    while True:
        ws.settimeout(max(deadline - time.monotonic(), 0.001))
        message = json.loads(ws.recv())
        if message["type"] == type_:
            return message


def test_a_removed_member_is_told_then_cut_off_while_the_others_hear_of_it(
        stack: Stack, second_web: str, sockets: list[websocket.WebSocket]) -> None:
    """Ann (first web process) removes Ben (listening on the second): both sockets get GroupMemberRemoved; Ben's
    is then closed with 1008 and he cannot reconnect (404), while Ann's goes on with the group's updates."""
    ann, ann_me = register(stack.url)
    ben, ben_me = register(stack.url)
    gid = new_group(ann, ben_me)
    ann_ws, _ = connect(stack.url, gid, ann)
    ben_ws, _ = connect(second_web, gid, ben)
    sockets += [ann_ws, ben_ws]

    r = ann.request("DELETE", f"{GROUPS}/{gid}/members/{ben_me['id']}")
    assert r.status_code == 204, r.text
    deadline = time.monotonic() + 5
    for ws in (ann_ws, ben_ws):
        removed = next_of_type(ws, deadline, "GroupMemberRemoved")
        assert (removed["group_id"], removed["member_id"], removed["removed_by"], removed["reason"]) == (
            gid, ben_me["id"], ann_me["id"], "removed")
    ben_ws.settimeout(5)
    opcode, frame = ben_ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1008, frame.data
    assert refused(second_web, gid, token_of(ben)) == 404

    r = ann.post(f"{GROUPS}/{gid}/contributions", {"amount": "1.00"})
    assert r.status_code == 202, r.text
    assert next_event(ann_ws, time.monotonic() + 5, r.json()["id"])["total"] == "1.00"

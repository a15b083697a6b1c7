"""Secrets never leak (responses, logs, audit), and a household's data is shared by its members only."""

from __future__ import annotations

import random
import uuid

import pytest
import requests
from sqlalchemy import text

from config import wiring
from models.identity import User
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

#: Every process of the stack, by the name its log is kept under.
PROCESSES = ("web", "categorization", "fx", "budgets", "notifications", "audit")


def _phone() -> str:
    """A unique German mobile number in E.164."""
    return "+49157" + "".join(random.choice("0123456789") for _ in range(8))


def _secret_password() -> str:
    """A unique, strong password that cannot appear anywhere by chance."""
    return f"Pw-{uuid.uuid4().hex}-{uuid.uuid4().hex[:8]}!"


def _masked(phone: str) -> str:
    return phone[:3] + "*" * (len(phone) - 6) + phone[-3:]


class Recorder:
    """Every response of a flow, kept as text (status line, headers and body)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def keep(self, label: str, response: requests.Response) -> requests.Response:
        """Remember a response; return it."""
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.seen.append((label, f"{response.status_code}\n{headers}\n\n{response.text}"))
        return response

    def texts(self, *, excluding: frozenset[str] | set[str] = frozenset()) -> list[tuple[str, str]]:
        """The responses kept, except those labelled in `excluding`."""
        return [(label, body) for label, body in self.seen if label not in excluding]


def _leaks(secrets: dict[str, str], places: list[tuple[str, str]]) -> list[str]:
    """Which secret appears in which place ("secret in place")."""
    return [f"{name} in {where}" for name, value in secrets.items() for where, content in places if value in content]


def _user(user_id: str) -> User:
    with wiring.session_factory()() as session:
        user = session.get(User, uuid.UUID(user_id))
        session.expunge(user)
        return user


def _raw_phone(user_id: str) -> str | None:
    with wiring.session_factory()() as session:
        return session.execute(text("SELECT phone FROM users WHERE id = :id"), {"id": user_id}).scalar_one()


def _rows_as_text(table: str) -> list[tuple[str, str]]:
    with wiring.session_factory()() as session:
        return [(f"{table} row", row) for row in session.execute(text(f"SELECT t::text FROM {table} t")).scalars()]


def _recorded(client: ApiClient, transaction_id: str) -> dict | None:
    body = client.get(f"/api/v1/transactions/{transaction_id}").json()
    return body if body.get("status") == "recorded" else None


def _audited(client: ApiClient, types: set[str]) -> list[dict] | None:
    items = client.get("/api/v1/audit").json()["items"]
    return items if types <= {e["type"] for e in items} else None


def test_no_response_log_or_audit_record_carries_a_password_hash_token_or_phone(stack: Stack) -> None:
    """A full flow with a unique password and phone: none of the secrets shows up where it must not."""
    rec = Recorder()
    anonymous = ApiClient(stack.url)
    email = f"secret-{uuid.uuid4().hex[:10]}@example.com"
    password, wrong_password = _secret_password(), _secret_password()
    phone, new_phone = _phone(), _phone()

    # Register with a phone: the answer never shows it (nor the password).
    r = rec.keep("register", anonymous.post("/api/v1/auth/register", {
        "email": email, "password": password, "name": "Secret Keeper", "phone": phone}))
    assert r.status_code == 201, r.text
    me = r.json()
    assert {"password", "password_hash", "phone"}.isdisjoint(me)

    # Log in and refresh: the only answers that carry tokens.
    r = rec.keep("login", anonymous.post("/api/v1/auth/login", {"email": email, "password": password}))
    assert r.status_code == 200, r.text
    first = r.json()
    r = rec.keep("refresh", anonymous.post("/api/v1/auth/refresh",
                                           headers={"Authorization": f"Bearer {first['refresh_token']}"}))
    assert r.status_code == 200, r.text
    second = r.json()
    user = ApiClient(stack.url, second["access_token"])

    # The profile shows the phone masked, before and after changing it.
    r = rec.keep("profile", user.get("/api/v1/users/me"))
    assert r.status_code == 200 and r.json()["phone"] == _masked(phone), r.text
    r = rec.keep("profile change", user.request("PATCH", "/api/v1/users/me", json={"phone": new_phone}))
    assert r.status_code == 200 and r.json()["phone"] == _masked(new_phone), r.text

    # A personal access token: its secret appears once, in the answer that created it.
    r = rec.keep("pat creation", user.post("/api/v1/tokens", {"name": "script", "scope": "read_write"}))
    assert r.status_code == 201, r.text
    pat = r.json()["token"]
    assert pat.startswith("pfp_")
    r = rec.keep("pat list", user.get("/api/v1/tokens"))
    assert r.status_code == 200 and all("token" not in t for t in r.json()["items"]), r.text
    script = ApiClient(stack.url, pat)

    # Money moves, through the PAT and the login alike; the pools record it, budgets and notifications follow.
    account = rec.keep("open account", script.post("/api/v1/accounts", {
        "name": "Main", "type": "checking", "currency": "EUR", "opening_balance": "500.00"}))
    assert account.status_code == 201, account.text
    account_id = account.json()["id"]
    r = rec.keep("budget", user.post("/api/v1/budgets", {"category": "Groceries", "amount": "100.00"}))
    assert r.status_code == 201, r.text
    budget_id = r.json()["id"]
    ids = []
    for client, amount in ((user, "60.00"), (script, "25.00")):
        r = rec.keep("transaction", client.post_transaction(account_id, amount, "REWE"))
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for transaction_id in ids:
        wait_for(lambda t=transaction_id: _recorded(user, t), timeout=15, what="the transaction recorded")
        rec.keep("transaction", user.get(f"/api/v1/transactions/{transaction_id}"))
    rec.keep("account", script.get(f"/api/v1/accounts/{account_id}"))
    rec.keep("budget status", user.get(f"/api/v1/budgets/{budget_id}/status", params={"period": "2026-10"}))
    wait_for(lambda: user.get("/api/v1/notifications").json()["items"], timeout=15, what="notifications")
    rec.keep("notifications", user.get("/api/v1/notifications"))

    # Failures: a wrong password (401), a bad phone (422), no token (401), an unknown id (404).
    r = rec.keep("wrong password", anonymous.post("/api/v1/auth/login", {"email": email, "password": wrong_password}))
    assert r.status_code == 401, r.text
    r = rec.keep("bad phone", user.request("PATCH", "/api/v1/users/me", json={"phone": new_phone + "x"}))
    assert r.status_code == 422, r.text
    r = rec.keep("weak password", anonymous.post("/api/v1/auth/register", {
        "email": f"weak-{uuid.uuid4().hex[:8]}@example.com", "password": "short", "name": "Weak"}))
    assert r.status_code == 422, r.text
    r = rec.keep("no token", anonymous.get("/api/v1/users/me"))
    assert r.status_code == 401, r.text
    r = rec.keep("unknown account", user.get(f"/api/v1/accounts/{uuid.uuid4()}"))
    assert r.status_code == 404, r.text

    # The audit trail, once the flow's events reached it.
    wait_for(lambda: _audited(user, {"UserRegistered", "UserUpdated", "PersonalAccessTokenCreated",
                                     "LoginSucceeded", "TransactionRecorded"}), timeout=15, what="the audit trail")
    rec.keep("audit", user.get("/api/v1/audit"))

    # Log out: the tokens of the session stop working (401s carrying nothing secret).
    r = rec.keep("logout", user.post("/api/v1/auth/logout"))
    assert r.status_code == 204, r.text
    r = rec.keep("after logout", user.get("/api/v1/users/me"))
    assert r.status_code == 401, r.text
    r = rec.keep("refresh after logout", anonymous.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {second['refresh_token']}"}))
    assert r.status_code == 401, r.text

    # At rest: an argon2id hash, and the phone encrypted (the ORM reads it back).
    stored = _user(me["id"])
    assert stored.password_hash.startswith("$argon2id$")
    assert stored.phone == new_phone
    raw = _raw_phone(me["id"])
    assert raw and raw != new_phone and new_phone not in raw and new_phone[1:] not in raw
    assert phone not in raw and phone[1:] not in raw

    tokens = {f"{kind} of {when}": pair[kind] for when, pair in (("login", first), ("refresh", second))
              for kind in ("access_token", "refresh_token")}
    secrets = {"password": password, "wrong password": wrong_password, "password hash": stored.password_hash,
               "phone": phone, "phone digits": phone[1:], "new phone": new_phone, "new phone digits": new_phone[1:],
               "PAT": pat, **tokens}
    # Each token in exactly its one allowed answer.
    allowed = {"login": {"access_token of login", "refresh_token of login"},
               "refresh": {"access_token of refresh", "refresh_token of refresh"}, "pat creation": {"PAT"}}
    for label, names in allowed.items():
        body = dict(rec.seen)[label]
        for name in names:
            assert body.count(secrets[name]) == 1, f"{name} should appear once in the {label} answer"

    # ...and no secret anywhere else: responses, every process's log, the audit trail, outbox and inboxes.
    responses = rec.texts(excluding=set(allowed))
    also_allowed = [(label, body) for label, body in rec.seen if label in allowed]
    logs = [(f"the {name} log", stack.log(name)) for name in PROCESSES]
    assert logs[0][1], "the web process logged nothing"
    audit = [("audit store", repr(e)) for e in wiring.audit_store().for_household(me["household_id"], me["id"])]
    assert audit, "nothing audited for the household"
    stored_rows = _rows_as_text("audit_events") + _rows_as_text("outbox") + _rows_as_text("notifications")
    assert _leaks(secrets, responses + logs + audit + stored_rows) == []
    # The allowed answers carry their own secret only, never a password, hash or phone.
    others = {k: v for k, v in secrets.items() if k not in tokens and k != "PAT"}
    assert _leaks(others, also_allowed) == []
    # The masked phone is fine, and is what the profile showed.
    assert _masked(new_phone) in dict(rec.seen)["profile change"]


def _in(client: ApiClient, household_id: str) -> ApiClient:
    """The same user acting in another household (X-Household-ID)."""
    other = ApiClient(client.base)
    other.http.headers.update(client.http.headers)
    other.http.headers["X-Household-ID"] = household_id
    return other


def _ids(response: requests.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def _add(owner: ApiClient, household_id: str, email: str, role: str) -> None:
    r = owner.post(f"/api/v1/households/{household_id}/members", {"email": email, "role": role})
    assert r.status_code == 201, r.text
    assert r.json()["role"] == role


def test_household_members_share_its_data_and_outsiders_see_none(stack: Stack) -> None:
    """Alice and bob (a member) see and change the same data; dave (a viewer) only reads; carol sees nothing."""
    alice, alice_me = register(stack.url, name="Alice")
    bob, bob_me = register(stack.url, name="Bob")
    carol, carol_me = register(stack.url, name="Carol")
    dave, dave_me = register(stack.url, name="Dave")
    home = alice_me["household_id"]
    _add(alice, home, bob_me["email"], "member")
    _add(alice, home, dave_me["email"], "viewer")

    listed = {h["id"]: h for h in bob.get("/api/v1/households").json()["items"]}
    assert listed[home]["role"] == "member"
    assert listed[bob_me["household_id"]]["role"] == "owner"
    assert home not in {h["id"] for h in carol.get("/api/v1/households").json()["items"]}
    r = bob.get(f"/api/v1/households/{home}")
    assert r.status_code == 200, r.text
    assert {m["user_id"]: m["role"] for m in r.json()["members"]} == {
        alice_me["id"]: "owner", bob_me["id"]: "member", dave_me["id"]: "viewer"}

    # Alice's account, budget and a purchase.
    account = alice.open_account("EUR")
    budget = alice.create_budget("Groceries", "100.00")
    r = alice.post_transaction(account["id"], "60.00", "REWE")
    assert r.status_code == 202, r.text
    alice_txn = r.json()["id"]
    wait_for(lambda: _recorded(alice, alice_txn), timeout=15, what="alice's purchase recorded")

    # Bob, in alice's household, sees the same data.
    bob_home = _in(bob, home)
    assert _ids(bob_home.get("/api/v1/accounts")) == _ids(alice.get("/api/v1/accounts")) == {account["id"]}
    assert _ids(bob_home.get("/api/v1/budgets")) == _ids(alice.get("/api/v1/budgets")) == {budget["id"]}
    for path in (f"/api/v1/accounts/{account['id']}", f"/api/v1/budgets/{budget['id']}",
                 f"/api/v1/transactions/{alice_txn}"):
        mine, theirs = alice.get(path), bob_home.get(path)
        assert mine.status_code == theirs.status_code == 200, (path, mine.text, theirs.text)
        assert mine.json() == theirs.json()
    assert bob_home.budget_status(budget["id"]) == alice.budget_status(budget["id"])

    # Bob buys something too; alice sees it, and the shared budget counts both.
    r = bob_home.post_transaction(account["id"], "30.00", "Lidl")
    assert r.status_code == 202, r.text
    bob_txn = r.json()["id"]
    seen = wait_for(lambda: _recorded(alice, bob_txn), timeout=15, what="bob's purchase, as alice sees it")
    assert seen["account_id"] == account["id"]
    wait_for(lambda: alice.budget_status(budget["id"])["spent"] == "90.00", timeout=15, what="spent 90.00")
    assert bob_home.budget_status(budget["id"]) == alice.budget_status(budget["id"])
    assert bob_home.get(f"/api/v1/accounts/{account['id']}").json() == alice.get(
        f"/api/v1/accounts/{account['id']}").json()

    # The household's budget alerts reach every member's inbox in that household.
    for who in (alice, bob_home):
        wait_for(lambda c=who: {"Budget 50% reached", "Budget 80% reached"} <= {
            n["title"] for n in c.get("/api/v1/notifications").json()["items"]}, timeout=15,
            what="the budget alerts in a member's inbox")

    # Without the header bob is in his own, empty, personal household.
    assert _ids(bob.get("/api/v1/accounts")) == set()
    assert _ids(bob.get("/api/v1/budgets")) == set()
    for path in (f"/api/v1/accounts/{account['id']}", f"/api/v1/budgets/{budget['id']}",
                 f"/api/v1/transactions/{alice_txn}", f"/api/v1/transactions/{bob_txn}"):
        assert bob.get(path).status_code == 404, path
    assert not [n for n in bob.get("/api/v1/notifications").json()["items"]
                if n["event_type"] == "BudgetThresholdCrossed"]

    # Dave, a viewer, reads but cannot write.
    dave_home = _in(dave, home)
    assert _ids(dave_home.get("/api/v1/accounts")) == {account["id"]}
    assert dave_home.get(f"/api/v1/transactions/{bob_txn}").status_code == 200
    r = dave_home.post("/api/v1/accounts", {"name": "Mine", "type": "cash", "currency": "EUR",
                                            "opening_balance": "1.00"})
    assert r.status_code == 403, r.text
    r = dave_home.post_transaction(account["id"], "1.00", "Kiosk")
    assert r.status_code == 403, r.text
    assert _ids(alice.get("/api/v1/accounts")) == {account["id"]}

    # Carol sees none of it: alice's ids are unknown to her, and so is alice's household.
    assert _ids(carol.get("/api/v1/accounts")) == set()
    assert _ids(carol.get("/api/v1/budgets")) == set()
    for path in (f"/api/v1/accounts/{account['id']}", f"/api/v1/budgets/{budget['id']}",
                 f"/api/v1/budgets/{budget['id']}/status", f"/api/v1/transactions/{alice_txn}",
                 f"/api/v1/transactions/{bob_txn}", f"/api/v1/households/{home}"):
        r = carol.get(path)
        assert r.status_code == 404, (path, r.text)
    carol_home = _in(carol, home)
    for path in ("/api/v1/accounts", "/api/v1/budgets", f"/api/v1/accounts/{account['id']}", "/api/v1/audit",
                 "/api/v1/notifications"):
        r = carol_home.get(path)
        assert r.status_code == 404, (path, r.text)
    r = carol_home.post_transaction(account["id"], "1.00", "Kiosk")
    assert r.status_code == 404, r.text
    r = carol.post_transaction(account["id"], "1.00", "Kiosk")
    assert r.status_code == 404, r.text
    assert not [n for n in carol.get("/api/v1/notifications").json()["items"]
                if n["event_type"] == "BudgetThresholdCrossed"]
    audit = carol.get("/api/v1/audit").json()["items"]
    assert all(e["type"] not in {"TransactionRecorded", "BudgetCreated"} for e in audit)
    assert carol_me["household_id"] != home

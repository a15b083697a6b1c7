"""Security events reach the audit trail of the household they concern."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.cli import run_cli
from tests.support.client import PASSWORD, ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def _types(client: ApiClient) -> list[str]:
    return [e["type"] for e in client.get("/api/v1/audit").json()["items"]]


def test_logins_logouts_tokens_and_role_changes_are_audited(stack: Stack) -> None:
    """Given a failed and a successful login, a logout, a token and a role change, each is in the audit."""
    email = f"audited-{uuid.uuid4().hex[:8]}@example.com"
    client, me = register(stack.url, email=email)
    login = f"{stack.url}/api/v1/auth/login"
    assert requests.post(login, json={"email": email, "password": "not the password"}, timeout=10).status_code == 401
    session = requests.post(login, json={"email": email, "password": PASSWORD}, timeout=10).json()
    requests.post(f"{stack.url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {session['access_token']}"},
                  timeout=10)
    client.post("/api/v1/tokens", {"name": "ci", "scope": "read"})
    assert run_cli("create-admin", email).returncode == 0

    wanted = {"UserRegistered", "LoginFailed", "LoginSucceeded", "TokenRevoked", "PersonalAccessTokenCreated",
              "RoleChanged"}
    types = wait_for(lambda: wanted <= set(t := _types(client)) and t, timeout=10, what=f"{wanted} audited")
    events = client.get("/api/v1/audit").json()["items"]
    failed = next(e for e in events if e["type"] == "LoginFailed")
    assert failed["user_id"] == me["id"] and "not the password" not in str(failed)
    role = next(e for e in events if e["type"] == "RoleChanged")
    assert role["payload"] == {"user_id": me["id"], "from": "user", "to": "admin", "by": "operator CLI"}
    assert types.count("LoginFailed") == 1


def test_members_see_the_households_activity_but_not_each_others_security_events(stack: Stack) -> None:
    """Given bob in alice's household, bob sees her account opening but not her logins."""
    alice, me = register(stack.url)
    bob_email = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    bob, _ = register(stack.url, email=bob_email)
    assert alice.post(f"/api/v1/households/{me['household_id']}/members",
                      {"email": bob_email, "role": "member"}).status_code == 201
    alice.open_account("EUR")
    wait_for(lambda: "AccountOpened" in _types(alice), timeout=10, what="the account audited")
    seen_by_bob = [e["type"] for e in bob.get("/api/v1/audit", headers={"X-Household-ID": me["household_id"]}
                                               ).json()["items"]]
    assert "AccountOpened" in seen_by_bob and "HouseholdMemberAdded" in seen_by_bob
    assert "LoginSucceeded" in _types(alice)
    assert not {"LoginSucceeded", "LoginFailed", "TokenRevoked"} & set(seen_by_bob)

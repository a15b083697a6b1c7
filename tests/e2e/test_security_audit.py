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
    assert role["payload"] == {"user_id": me["id"], "from": "user", "to": "admin"}
    assert types.count("LoginFailed") == 1

"""Login sessions: refresh rotation, reuse detection, logout, logout everywhere, rate limits."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
import requests

from tests.support.client import PASSWORD, ApiClient, register
from tests.support.isolation import TEST_ENV
from tests.support.stack import Stack, free_port, wait_for

pytestmark = pytest.mark.e2e


def _login(stack: Stack, email: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(f"{stack.url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=10)


def _me(stack: Stack, token: str) -> int:
    return requests.get(f"{stack.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code


def _refresh(stack: Stack, refresh_token: str) -> requests.Response:
    return requests.post(f"{stack.url}/api/v1/auth/refresh", headers={"Authorization": f"Bearer {refresh_token}"},
                         timeout=10)


@pytest.fixture
def person(stack: Stack) -> dict:
    """A registered user: email and a fresh login."""
    email = f"p-{uuid.uuid4().hex[:10]}@example.com"
    register(stack.url, email=email)
    tokens = _login(stack, email).json()
    return {"email": email, **tokens}


def test_a_refresh_token_rotates_and_its_reuse_revokes_the_whole_session(stack: Stack, person: dict) -> None:
    """Given a session, refreshing gives new tokens; replaying the spent refresh token revokes the session."""
    first = _refresh(stack, person["refresh_token"])
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != person["refresh_token"]
    assert _me(stack, rotated["access_token"]) == 200

    replay = _refresh(stack, person["refresh_token"])
    assert replay.status_code == 401 and "reuse" in replay.json()["message"]
    # The thief's replay ended the session for everyone holding its tokens, the rotated ones included.
    assert _refresh(stack, rotated["refresh_token"]).status_code == 401
    assert _me(stack, rotated["access_token"]) == 401
    assert _me(stack, person["access_token"]) == 401
    # Another login is a new session and works.
    assert _me(stack, _login(stack, person["email"]).json()["access_token"]) == 200


def test_an_access_token_cannot_refresh(stack: Stack, person: dict) -> None:
    """Only refresh tokens refresh."""
    assert _refresh(stack, person["access_token"]).status_code == 401


def test_logout_stops_that_sessions_access_and_refresh_tokens_only(stack: Stack, person: dict) -> None:
    """Given two sessions, logging out of one leaves the other working."""
    other = _login(stack, person["email"]).json()
    r = requests.post(f"{stack.url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {person['access_token']}"},
                      timeout=10)
    assert r.status_code == 204
    assert _me(stack, person["access_token"]) == 401
    assert _refresh(stack, person["refresh_token"]).status_code == 401
    assert _me(stack, other["access_token"]) == 200


def test_logout_everywhere_stops_every_session(stack: Stack, person: dict) -> None:
    """Given two sessions, logging out everywhere ends both; a new login works."""
    other = _login(stack, person["email"]).json()
    r = requests.post(f"{stack.url}/api/v1/auth/logout-all",
                      headers={"Authorization": f"Bearer {other['access_token']}"}, timeout=10)
    assert r.status_code == 204
    for session in (person, other):
        assert _me(stack, session["access_token"]) == 401
        assert _refresh(stack, session["refresh_token"]).status_code == 401
    assert _me(stack, _login(stack, person["email"]).json()["access_token"]) == 200


def test_revocation_holds_after_redis_is_flushed(stack: Stack, person: dict) -> None:
    """Redis only speeds up revocation; PostgreSQL holds it, so a flush brings no revoked token back."""
    other = _login(stack, person["email"]).json()
    requests.post(f"{stack.url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {person['access_token']}"},
                  timeout=10)
    _refresh(stack, other["refresh_token"])
    redis.Redis.from_url(TEST_ENV["REDIS_URL"]).flushdb()
    assert _me(stack, person["access_token"]) == 401
    assert _refresh(stack, person["refresh_token"]).status_code == 401
    assert _refresh(stack, other["refresh_token"]).status_code == 401  # spent before the flush: reuse


def test_ten_wrong_passwords_are_refused_with_429_until_the_window_passes(stack: Stack, person: dict) -> None:
    """Given 10 failed logins, the 11th attempt gets 429 with Retry-After even with the right password;
    after the window (6 s in the test configuration) the right password works again."""
    for _ in range(10):
        assert _login(stack, person["email"], "wrong password 123").status_code == 401
    blocked = _login(stack, person["email"])
    assert blocked.status_code == 429
    retry_after = int(blocked.headers["Retry-After"])
    assert 1 <= retry_after <= 6
    assert blocked.json()["code"] == 429
    time.sleep(retry_after + 0.5)
    assert _login(stack, person["email"]).status_code == 200


def test_a_common_or_short_password_is_refused(stack: Stack) -> None:
    """Passwords from leak lists or under 10 characters never get in."""
    for password, reason in (("password123", "common"), ("qwertyuiop", "common"), ("short1!", "between 10")):
        r = requests.post(f"{stack.url}/api/v1/auth/register", timeout=10, json={
            "email": f"p-{uuid.uuid4().hex[:8]}@example.com", "password": password, "name": "P"})
        assert r.status_code == 422, password
        assert any(reason in m for m in r.json()["errors"]["password"]), r.json()


def test_a_token_over_its_request_limit_gets_429(stack: Stack) -> None:
    """Given a web process limited to 5 requests per token per minute, the 6th request is refused."""
    url = stack.start_web("web-limited", free_port(), {"API_LIMIT_PER_TOKEN": "5/minute"})
    client, _ = register(url)
    answers = [client.get("/api/v1/accounts").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    limited = client.get("/api/v1/accounts")
    assert int(limited.headers["Retry-After"]) >= 1
    other, _ = register(url)
    assert other.get("/api/v1/accounts").status_code == 200


def test_personal_access_tokens_read_write_and_revoke(stack: Stack, user: ApiClient) -> None:
    """A read token reads, a read_write token writes, a revoked token is refused; the secret is shown once."""
    made = {scope: user.post("/api/v1/tokens", {"name": f"script {scope}", "scope": scope}).json()
            for scope in ("read", "read_write")}
    reader, writer = (ApiClient(stack.url, made[s]["token"]) for s in ("read", "read_write"))
    assert reader.get("/api/v1/accounts").status_code == 200
    assert reader.post("/api/v1/accounts", {"name": "x", "type": "cash", "currency": "EUR"}).status_code == 403
    assert writer.post("/api/v1/accounts", {"name": "x", "type": "cash", "currency": "EUR"}).status_code == 201
    listed = user.get("/api/v1/tokens").json()["items"]
    assert all("token" not in t for t in listed)
    wait_for(lambda: any(t["last_used_at"] for t in user.get("/api/v1/tokens").json()["items"]), timeout=5,
             what="last-used time recorded")
    assert user.request("DELETE", f"/api/v1/tokens/{made['read']['id']}").status_code == 204
    assert reader.get("/api/v1/accounts").status_code == 401

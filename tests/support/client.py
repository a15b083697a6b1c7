"""A small client of the REST API as a user sees it."""

from __future__ import annotations

import uuid
from typing import Any

import requests

PASSWORD = "correct horse battery staple"


class ApiClient:
    """One logged-in user talking to the API."""

    def __init__(self, base_url: str, token: str | None = None, *, user_agent: str | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        if user_agent:
            self.http.headers["User-Agent"] = user_agent

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Any request, to a path under the base URL (/api/v1/... or /readyz)."""
        kwargs.setdefault("timeout", 15)
        return self.http.request(method, self.base + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a path."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        """POST JSON to a path."""
        return self.request("POST", path, json=json, **kwargs)

    def open_account(self, currency: str = "EUR", opening: str = "1000.00") -> dict:
        """Open a checking account; its JSON."""
        r = self.post("/api/v1/accounts", {"name": "Main", "type": "checking", "currency": currency,
                                           "opening_balance": opening})
        assert r.status_code == 201, r.text
        return r.json()

    def create_budget(self, category: str = "Groceries", amount: str = "100.00", **extra: Any) -> dict:
        """Create a monthly budget; its JSON."""
        r = self.post("/api/v1/budgets", {"category": category, "amount": amount, **extra})
        assert r.status_code == 201, r.text
        return r.json()

    def post_transaction(self, account_id: str, amount: str, payee: str = "REWE", *, request_id: str | None = None,
                         idempotency_key: str | None = None, **extra: Any) -> requests.Response:
        """Submit an expense; the raw response."""
        headers = {}
        if request_id:
            headers["X-Request-ID"] = request_id
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        body = {"account_id": account_id, "type": "expense", "amount": amount, "occurred_on": "2026-10-15",
                "payee": payee, **extra}
        return self.post("/api/v1/transactions", body, headers=headers)

    def budget_status(self, budget_id: str, period: str = "2026-10") -> dict:
        """Where a budget stands."""
        r = self.get(f"/api/v1/budgets/{budget_id}/status", params={"period": period})
        assert r.status_code == 200, r.text
        return r.json()


def register(base_url: str, *, request_id: str | None = None, **fields: Any) -> tuple[ApiClient, dict]:
    """Register a fresh user and log in; (client, user JSON)."""
    email = fields.pop("email", f"user-{uuid.uuid4().hex[:10]}@example.com")
    headers = {"X-Request-ID": request_id} if request_id else {}
    anonymous = ApiClient(base_url)
    r = anonymous.post("/api/v1/auth/register", {"email": email, "password": PASSWORD, "name": "Test User", **fields},
                       headers=headers)
    assert r.status_code == 201, r.text
    user = r.json()
    r = anonymous.post("/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return ApiClient(base_url, r.json()["access_token"]), user


def new_device() -> str:
    """A User-Agent no client has sent before: a login with it is a sign-in from a new device (an alert)."""
    return f"test-device/{uuid.uuid4().hex[:12]}"


def log_in(base_url: str, email: str, *, user_agent: str | None = None) -> ApiClient:
    """Log in as a registered user (from the device `user_agent` names, else the one `register` used); a client of
    the new session, on that device."""
    anonymous = ApiClient(base_url, user_agent=user_agent)
    r = anonymous.post("/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return ApiClient(base_url, r.json()["access_token"], user_agent=user_agent)

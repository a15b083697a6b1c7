"""`make demo` against the running test stack (a few months instead of two years): it builds the household, says
how to log in, and every insight has something to show."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.client import ApiClient
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_loads_a_household_with_something_in_every_insight(stack: Stack) -> None:
    email = f"demo-{uuid.uuid4().hex[:8]}@example.com"
    done = subprocess.run([sys.executable, str(ROOT / "scripts/demo.py"), "--url", stack.url, "--months", "4",
                           "--api-days", "20", "--email", email], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"email {email}" in done.stdout and "/insights/forecast" in done.stdout
    login = ApiClient(stack.url).post("/api/v1/auth/login", {"email": email, "password": "demo horse battery staple"})
    assert login.status_code == 200, login.text
    user = ApiClient(stack.url, login.json()["access_token"])
    recurring = {r["payee_key"]: r for r in user.get("/api/v1/insights/recurring").json()["items"]}
    assert recurring["netflix"]["price_increase"] is True and recurring["spotify"]["cadence"] == "monthly"
    kinds = {a["kind"] for a in user.get("/api/v1/insights/anomalies").json()["items"]}
    assert kinds == {"outlier", "duplicate_charge", "new_payee_large"}
    assert len(user.get("/api/v1/insights/forecast").json()["months"]) == 3
    assert {a["currency"] for a in user.get("/api/v1/accounts").json()["items"]} == {"EUR", "USD"}
    assert len(user.get("/api/v1/budgets").json()["items"]) == 3 and len(user.get("/api/v1/goals").json()["items"]) == 1

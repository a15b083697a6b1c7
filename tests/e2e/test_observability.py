"""Request ids, readiness and metrics as an operator sees them."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from tests.support.client import ApiClient
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def test_a_request_id_is_made_when_absent_and_kept_when_given(stack: Stack) -> None:
    """Every response carries an X-Request-ID; the caller's own id is kept and logged."""
    made = requests.get(f"{stack.url}/healthz", timeout=5).headers["X-Request-ID"]
    assert uuid.UUID(made)
    given = f"trace-{uuid.uuid4().hex[:12]}"
    assert requests.get(f"{stack.url}/healthz", headers={"X-Request-ID": given}, timeout=5
                        ).headers["X-Request-ID"] == given
    assert requests.get(f"{stack.url}/healthz", headers={"X-Request-ID": "bad id <script>"}, timeout=5
                        ).headers["X-Request-ID"] != "bad id <script>"
    wait_for(lambda: f'"correlation_id": "{given}"' in stack.log("web"), timeout=5, what="the id in the JSON log")


def test_readiness_names_each_dependency(stack: Stack) -> None:
    """All three dependencies answer, so the stack is ready."""
    body = requests.get(f"{stack.url}/readyz", timeout=10).json()
    assert body["status"] == "ready"
    assert body["checks"] == {"postgresql": "ok", "rabbitmq": "ok", "redis": "ok"}
    assert "breaker" in body["fx"]


def test_metrics_count_requests_by_route_and_messages_by_queue(stack: Stack, user: ApiClient) -> None:
    """After a transaction, /metrics shows the request by route and status, and the messages each pool handled."""
    account = user.open_account("EUR")
    txn = user.post_transaction(account["id"], "5.00").json()
    wait_for(lambda: user.get(f"/api/v1/transactions/{txn['id']}").json()["status"] == "recorded", timeout=10,
             what="recorded")

    def scrape() -> str | None:
        text = requests.get(f"{stack.url}/metrics", timeout=10).text
        return text if _value(text, 'finance_messages_total{outcome="processed",queue="budgets.events"}') else None

    text = wait_for(scrape, timeout=10, what="budgets.events counted")
    assert _value(text, 'finance_http_requests_total{method="POST",route="/api/v1/transactions",status="202"}') >= 1
    assert _value(text, 'finance_messages_total{outcome="processed",queue="categorization"}') >= 1
    assert 'finance_messages_in_progress{queue="categorization"}' in text
    assert "finance_outbox_unpublished" in text
    # Every committed event was published and marked: nothing waits for the relay.
    wait_for(lambda: "finance_outbox_unpublished 0.0" in requests.get(f"{stack.url}/metrics", timeout=10).text,
             timeout=5, what="the outbox drained")


def _value(text: str, series: str) -> float:
    match = re.search(re.escape(series) + r" ([0-9.e+]+)", text)
    return float(match.group(1)) if match else 0.0


def test_every_operation_in_the_api_docs_has_a_short_one_line_summary(stack: Stack) -> None:
    """Every operation of /openapi.json has a one-line summary (the first line of its view's docstring; the rest is
    its description), short enough for a line of the docs UI's list."""
    spec = requests.get(f"{stack.url}/openapi.json", timeout=15).json()
    operations = [(method.upper(), path, op) for path, item in spec["paths"].items() for method, op in item.items()
                  if isinstance(op, dict) and "responses" in op]
    too_long = [(method, path, op.get("summary")) for method, path, op in operations
                if not op.get("summary") or "\n" in op["summary"] or len(op["summary"]) > 120]

    assert len(operations) > 80 and too_long == []

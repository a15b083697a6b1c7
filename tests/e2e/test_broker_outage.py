"""RabbitMQ unreachable: the API refuses commands with 503 and does nothing half-way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from config import wiring
from models.ledger import IdempotencyKey, Transaction
from tests.support import rabbit_admin
from tests.support.client import ApiClient, register
from tests.support.isolation import VHOST
from tests.support.stack import Stack, free_port, wait_for
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A cuttable link to RabbitMQ."""
    with TcpProxy("127.0.0.1", 5672) as p:
        yield p


def _rows(household_id: uuid.UUID) -> tuple[int, int]:
    with wiring.session_factory()() as s:
        txns = s.scalar(select(func.count()).select_from(Transaction).where(Transaction.household_id == household_id))
        keys = s.scalar(select(func.count()).select_from(IdempotencyKey).where(
            IdempotencyKey.household_id == household_id))
    return txns or 0, keys or 0


def test_with_rabbitmq_unreachable_a_transaction_is_refused_then_accepted_when_it_returns(
        stack: Stack, proxy: TcpProxy) -> None:
    """Given a web process that reaches RabbitMQ through a link we cut..."""
    url = stack.start_web("web-proxied", free_port(), {"RABBITMQ_URL": rabbit_admin.amqp_url(VHOST, proxy.port)})
    main, me = register(stack.url)
    client = ApiClient(url, main.http.headers["Authorization"].split()[1])
    account = client.open_account("EUR")
    household = uuid.UUID(me["household_id"])
    assert client.post_transaction(account["id"], "1.00").status_code == 202

    proxy.cut()
    refused = client.post_transaction(account["id"], "9.99", idempotency_key="outage-1")
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0
    assert "RabbitMQ" in refused.json()["message"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["down"] == ["rabbitmq"]
    assert _rows(household) == (1, 0), "a refused command left rows behind"

    proxy.restore()
    accepted = client.post_transaction(account["id"], "9.99", idempotency_key="outage-1")
    assert accepted.status_code == 202
    assert client.get("/readyz").status_code == 200
    wait_for(lambda: client.get(f"/api/v1/transactions/{accepted.json()['id']}").json()["status"] == "recorded",
             timeout=10, what="the accepted transaction recorded")
    assert client.get(f"/api/v1/accounts/{account['id']}").json()["balance"] == "989.01"

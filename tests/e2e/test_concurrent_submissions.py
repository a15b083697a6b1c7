"""Purchases posted at once share the web's database transactions and command messages: each is still answered as
if alone (an id once RabbitMQ confirmed it, the first id again for a repeated Idempotency-Key, a 4xx naming the
field for a refused one) and recorded exactly once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from config import wiring
from models.ledger import IdempotencyKey, Transaction
from tests.support.client import register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def _recorded(household_id: str) -> tuple[int, Decimal, int]:
    """Recorded transactions, their sum, and rows in any other state."""
    with wiring.session_factory()() as s:
        household = Transaction.household_id == uuid.UUID(household_id)
        count, total = s.execute(select(func.count(), func.coalesce(func.sum(Transaction.amount), 0)).where(
            household, Transaction.status == "recorded")).one()
        others = s.scalar(select(func.count()).where(household, Transaction.status != "recorded"))
    return count, total, others or 0


def _keys(household_id: str) -> int:
    with wiring.session_factory()() as s:
        return s.scalar(select(func.count()).select_from(IdempotencyKey).where(
            IdempotencyKey.household_id == uuid.UUID(household_id))) or 0


def test_purchases_posted_at_once_are_each_answered_as_alone_and_recorded_once(stack: Stack) -> None:
    """Given 240 purchases from 24 clients at once, among them the same Idempotency-Key four times at once, a
    category that does not exist, another household's account and an amount with too many decimals: every good one
    gets its own id (the repeated key one id), every bad one its 4xx, and exactly the good ones are recorded."""
    user, _ = register(stack.url)
    stranger, _ = register(stack.url)
    account = user.open_account("EUR", opening="0")
    theirs = stranger.open_account("EUR")
    good = [(f"{1 + i % 7}.{i % 100:02d}", {}, f"key-{i}" if i % 3 else None) for i in range(200)]
    repeated = [("5.00", {}, "same-key")] * 4
    bad = [("1.00", {"category": "No such thing"}, None), ("1.005", {}, "bad-amount"),
           ("1.00", {"account_id": theirs["id"]}, None)] * 12

    def post(order: tuple[str, dict, str | None]) -> requests.Response:
        amount, extra, key = order
        return user.post_transaction(extra.pop("account_id", account["id"]), amount, idempotency_key=key,
                                     **dict(extra))

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(post, [(a, dict(e), k) for a, e, k in good + repeated + bad]))

    good_answers, repeated_answers = answers[:200], answers[200:204]
    bad_answers = answers[204:]
    assert [a.status_code for a in good_answers + repeated_answers] == [202] * 204
    assert len({a.json()["id"] for a in good_answers}) == 200
    assert len({a.json()["id"] for a in repeated_answers}) == 1
    assert [(a.status_code, *a.json()["errors"]) for a in bad_answers[:3]] == [
        (422, "category"), (422, "amount"), (404, "account_id")]
    assert [a.status_code for a in bad_answers] == [422, 422, 404] * 12
    expected = sum(Decimal(a) for a, _, _ in good) + Decimal("5.00")
    household = user.get("/api/v1/users/me").json()["household_id"]
    assert wait_for(lambda: (r := _recorded(household))[0] == 201 and r, timeout=60,
                    what="201 recorded") == (201, expected, 0)
    assert _keys(household) == 1 + sum(1 for _, _, k in good if k)

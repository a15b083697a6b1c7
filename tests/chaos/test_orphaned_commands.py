"""What the chaos run found, pinned down: a command whose request the API rolled back after sending it (the
publisher confirm was lost with the connection, the client was answered 503 and retries under its key) is never
recorded; one whose request committed is recorded once, however often it arrives."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from config import wiring
from models.identity import Household, User
from models.ledger import Account, Transaction
from services.context import Caller
from services.submissions import submit_transaction
from services.transactions import RecordTransaction, record_transaction
from services.uow import UnitOfWork


@pytest.fixture
def uow() -> Iterator[UnitOfWork]:
    """A unit of work on the run's database that publishes nothing."""
    yield UnitOfWork(wiring.session_factory(), lambda event: None, lambda ids: None)


@pytest.fixture
def caller() -> Caller:
    """A user of a fresh EUR household."""
    household_id, user_id = uuid.uuid4(), uuid.uuid4()
    with wiring.session_factory()() as session, session.begin():
        session.add(Household(id=household_id, name="Orphans", base_currency="EUR"))
        session.flush()
        session.add(User(id=user_id, email=f"{user_id.hex}@example.com", password_hash="x", name="O",
                         household_id=household_id))
    return Caller(user_id=user_id, household_id=household_id, base_currency="EUR", correlation_id="orphans")


def _account(caller: Caller) -> uuid.UUID:
    account_id = uuid.uuid4()
    with wiring.session_factory()() as session, session.begin():
        session.add(Account(id=account_id, household_id=caller.household_id, name="Main", type="checking",
                            currency="EUR", opening_balance=Decimal("100.00"), balance=Decimal("100.00")))
    return account_id


def _submit(caller: Caller, account_id: uuid.UUID, uow: UnitOfWork, fail: bool) -> dict:
    """Submit 12.50 the way the API does; with `fail`, the publish "reaches RabbitMQ" but the confirm is lost."""
    sent: list[dict] = []

    def send(command: dict) -> None:
        sent.append(command)
        if fail:
            raise ConnectionError("connection lost before the publisher confirm")

    data = {"account_id": account_id, "type": "expense", "amount": "12.50", "occurred_on": dt.date(2026, 10, 15)}
    try:
        submit_transaction(caller, data, "key-1", uow, send)
    except ConnectionError:
        assert fail
    return sent[0]


def _transactions(caller: Caller) -> list[tuple[str, Decimal]]:
    with wiring.session_factory()() as session:
        return [(t.status, t.amount) for t in session.scalars(select(Transaction).where(
            Transaction.household_id == caller.household_id))]


def test_a_command_whose_request_was_rolled_back_is_not_recorded(caller: Caller, uow: UnitOfWork) -> None:
    """Given a submit whose command left but whose request failed (rolled back), when the command arrives,
    nothing is recorded; the client's retry under the same key is then recorded exactly once."""
    account_id = _account(caller)
    orphan = _submit(caller, account_id, uow, fail=True)
    record_transaction(RecordTransaction.from_dict(orphan), uow)
    assert _transactions(caller) == []

    retried = _submit(caller, account_id, uow, fail=False)
    assert retried["transaction_id"] != orphan["transaction_id"]
    for command in (orphan, retried, retried):  # redelivered, in any order
        record_transaction(RecordTransaction.from_dict(command), uow)
    assert _transactions(caller) == [("recorded", Decimal("12.50"))]
    with wiring.session_factory()() as session:
        assert session.get(Account, account_id).balance == Decimal("87.50")
        assert session.scalar(select(func.count()).select_from(Transaction).where(
            Transaction.id == uuid.UUID(orphan["transaction_id"]))) == 0


def test_a_command_nobody_submitted_leaves_no_row(caller: Caller, uow: UnitOfWork) -> None:
    """A command for a transaction id the API never accepted records nothing (the submitted one stays pending)."""
    account_id = _account(caller)
    command = dataclasses.replace(RecordTransaction.from_dict(_submit(caller, account_id, uow, fail=False)),
                                  transaction_id=str(uuid.uuid4()))
    record_transaction(command, uow)
    assert _transactions(caller) == [("pending", Decimal("12.50"))]

"""Accepting a transaction against the run's PostgreSQL: one pending row and one command, or nothing at all; a
repeated Idempotency-Key answers the first id; every refusal names its field and leaves nothing behind."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from config import wiring
from models.identity import Household, User
from models.ledger import Account, Category, IdempotencyKey, Transaction
from services import submissions
from services.context import Caller
from services.errors import Invalid, NotFound
from services.submissions import submit_transaction
from services.uow import UnitOfWork


class Sent:
    """Commands handed to RabbitMQ; with `fail`, the publisher confirm is lost."""

    def __init__(self, fail: bool = False) -> None:
        self.commands: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, command: dict[str, Any]) -> None:
        self.commands.append(command)
        if self.fail:
            raise ConnectionError("connection lost before the publisher confirm")


def _uow() -> UnitOfWork:
    return UnitOfWork(wiring.session_factory(), lambda event: None, lambda ids: None)


def _account(household_id: uuid.UUID, currency: str = "EUR") -> uuid.UUID:
    account_id = uuid.uuid4()
    with wiring.session_factory()() as session, session.begin():
        session.add(Account(id=account_id, household_id=household_id, name="A", type="checking", currency=currency,
                            opening_balance=Decimal("100.00"), balance=Decimal("100.00")))
    return account_id


def _household() -> Caller:
    household_id, user_id = uuid.uuid4(), uuid.uuid4()
    with wiring.session_factory()() as session, session.begin():
        session.add(Household(id=household_id, name="Submissions", base_currency="EUR"))
        session.flush()
        session.add(User(id=user_id, email=f"{user_id.hex}@example.com", password_hash="x", name="S",
                         household_id=household_id))
        session.add(Category(household_id=household_id, name="Groceries"))
    return Caller(user_id=user_id, household_id=household_id, base_currency="EUR", correlation_id="submissions")


@pytest.fixture
def caller() -> Caller:
    """A user of a fresh EUR household with a Groceries category."""
    return _household()


@pytest.fixture
def account(caller: Caller) -> uuid.UUID:
    """The household's EUR checking account."""
    return _account(caller.household_id)


def _data(account_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    return {"account_id": account_id, "type": "expense", "amount": "12.5", "occurred_on": dt.date(2026, 10, 15),
            "payee": "REWE", **fields}


def _rows(caller: Caller) -> list[tuple]:
    with wiring.session_factory()() as session:
        return [tuple(row) for row in session.execute(select(
            Transaction.id, Transaction.status, Transaction.amount, Transaction.currency, Transaction.fx_status,
            Transaction.tags, Transaction.locked, Transaction.requested_category, Transaction.correlation_id,
            Transaction.user_id).where(Transaction.household_id == caller.household_id))]


def _keys(caller: Caller) -> int:
    with wiring.session_factory()() as session:
        return session.scalar(select(func.count()).select_from(IdempotencyKey).where(
            IdempotencyKey.household_id == caller.household_id)) or 0


def test_a_transaction_is_pending_and_its_command_carries_the_account_currency(caller: Caller,
                                                                                account: uuid.UUID) -> None:
    sent = Sent()
    txn_id, created = submit_transaction(caller, _data(account, category="groceries"), None, _uow(), sent)

    assert created
    assert _rows(caller) == [(txn_id, "pending", Decimal("12.50"), "EUR", "none", [], [], "groceries",
                              "submissions", caller.user_id)]
    assert sent.commands == [{
        "transaction_id": str(txn_id), "household_id": str(caller.household_id), "user_id": str(caller.user_id),
        "account_id": str(account), "type": "expense", "amount": "12.50", "currency": "EUR",
        "occurred_on": "2026-10-15", "payee": "REWE", "description": "", "notes": "", "category": "groceries",
        "correlation_id": "submissions", "counter_account_id": None}]


def test_a_currency_named_by_the_request_wins_over_the_account_one(caller: Caller, account: uuid.UUID) -> None:
    sent = Sent()
    submit_transaction(caller, _data(account, currency="JPY", amount="1200"), None, _uow(), sent)
    assert sent.commands[0]["currency"] == "JPY" and sent.commands[0]["amount"] == "1200"
    assert _rows(caller)[0][2:4] == (Decimal("1200"), "JPY")


def test_the_same_idempotency_key_answers_the_first_id_and_adds_nothing(caller: Caller, account: uuid.UUID) -> None:
    sent = Sent()
    first, created = submit_transaction(caller, _data(account), "key-1", _uow(), sent)
    again, created_again = submit_transaction(caller, _data(account, amount="99"), "key-1", _uow(), sent)

    assert (created, created_again) == (True, False)
    assert again == first
    assert len(sent.commands) == 1 and len(_rows(caller)) == 1 and _keys(caller) == 1


def test_a_key_taken_between_lookup_and_insert_answers_the_first_id(caller: Caller, account: uuid.UUID,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a request whose lookup did not see the key yet (another request took it meanwhile), the insert fails
    on the key and the first transaction's id answers."""
    first, _ = submit_transaction(caller, _data(account), "key-1", _uow(), Sent())
    lookup = submissions._lookup_params
    monkeypatch.setattr(submissions, "_lookup_params", lambda *args: {**lookup(*args), "key": None})

    sent = Sent()
    assert submit_transaction(caller, _data(account), "key-1", _uow(), sent) == (first, False)
    assert sent.commands == [] and len(_rows(caller)) == 1


def test_keys_are_per_household(caller: Caller, account: uuid.UUID) -> None:
    other = _household()
    mine, _ = submit_transaction(caller, _data(account), "shared-key", _uow(), Sent())
    theirs, created = submit_transaction(other, _data(_account(other.household_id)), "shared-key", _uow(), Sent())
    assert created and theirs != mine


def test_nothing_stays_when_the_command_is_not_confirmed(caller: Caller, account: uuid.UUID) -> None:
    with pytest.raises(ConnectionError):
        submit_transaction(caller, _data(account), "key-1", _uow(), Sent(fail=True))
    assert _rows(caller) == [] and _keys(caller) == 0

    txn_id, created = submit_transaction(caller, _data(account), "key-1", _uow(), Sent())
    assert created and [row[0] for row in _rows(caller)] == [txn_id]


def test_a_category_is_found_by_id_or_by_name_in_any_case(caller: Caller, account: uuid.UUID) -> None:
    with wiring.session_factory()() as session:
        category_id = session.scalar(select(Category.id).where(Category.household_id == caller.household_id))
    for category in (" GROCERIES ", str(category_id)):
        assert submit_transaction(caller, _data(account, category=category), None, _uow(), Sent())[1]


def test_a_transfer_between_two_accounts_of_the_same_currency_is_accepted(caller: Caller, account: uuid.UUID) -> None:
    savings = _account(caller.household_id)
    sent = Sent()
    submit_transaction(caller, _data(account, type="transfer", counter_account_id=savings), None, _uow(), sent)
    assert sent.commands[0]["counter_account_id"] == str(savings)


@pytest.mark.parametrize(("change", "error", "field", "message"), [
    ({"account_id": "elsewhere"}, NotFound, "account_id", "no such account"),
    ({"account_id": "missing"}, NotFound, "account_id", "no such account"),
    ({"account_id": "closed"}, NotFound, "account_id", "no such account"),
    ({"amount": "12.345"}, Invalid, "amount", "EUR amounts have at most 2 decimal places"),
    ({"amount": "-1"}, Invalid, "amount", "amount must not be negative"),
    ({"category": "Nope"}, Invalid, "category", "no such category"),
    ({"counter_account_id": "savings"}, Invalid, "counter_account_id", "only transfers have a counter account"),
    ({"type": "transfer"}, Invalid, "counter_account_id", "a transfer needs the account it goes to"),
    ({"type": "transfer", "counter_account_id": "same"}, Invalid, "counter_account_id",
     "a transfer goes to another account"),
    ({"type": "transfer", "counter_account_id": "missing"}, NotFound, "counter_account_id", "no such account"),
    ({"type": "transfer", "counter_account_id": "elsewhere"}, NotFound, "counter_account_id", "no such account"),
    ({"type": "transfer", "counter_account_id": "dollars"}, Invalid, "counter_account_id",
     "transfers move money between accounts of the same currency"),
    ({"type": "transfer", "counter_account_id": "savings", "currency": "USD"}, Invalid, "counter_account_id",
     "transfers move money between accounts of the same currency"),
])
def test_a_refused_transaction_names_its_field_and_leaves_nothing(caller: Caller, account: uuid.UUID,
                                                                 change: dict[str, Any], error: type[Exception],
                                                                 field: str, message: str) -> None:
    closed = _account(caller.household_id)
    with wiring.session_factory()() as session, session.begin():
        session.get(Account, closed).deleted_at = dt.datetime.now(dt.UTC)
    accounts = {"elsewhere": _account(_household().household_id), "missing": uuid.uuid4(), "closed": closed,
                "savings": _account(caller.household_id), "same": account,
                "dollars": _account(caller.household_id, "USD")}
    data = {**_data(account), **{name: accounts.get(value, value) for name, value in change.items()}}
    sent = Sent()

    with pytest.raises(error) as caught:
        submit_transaction(caller, data, "key-1", _uow(), sent)

    assert (caught.value.field, caught.value.message) == (field, message)
    assert sent.commands == [] and _rows(caller) == [] and _keys(caller) == 0


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The first word of every statement sent to PostgreSQL meanwhile."""
    sent: list[str] = []
    me = threading.get_ident()  # not another thread's statements (an outbox marker's, say)

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() != me:
            return
        sent.append(statement.split(None, 1)[0].upper())

    event.listen(Engine, "before_cursor_execute", record)  # whichever engine the units of work use
    yield sent
    event.remove(Engine, "before_cursor_execute", record)


def test_a_submission_is_one_statement(caller: Caller, account: uuid.UUID, statements: list[str]) -> None:
    """The lookup and the insert of the row and its key reach PostgreSQL as one statement."""
    submit_transaction(caller, _data(account, category="Groceries"), "key-1", _uow(), Sent())
    assert statements == ["WITH"]


# --- many submissions in one transaction and one message ----------------------------------------------------------


class SentAll:
    """Command messages handed to RabbitMQ, each a list of commands; with `fail`, the publisher confirm is lost."""

    def __init__(self, fail: bool = False) -> None:
        self.messages: list[list[dict[str, Any]]] = []
        self.fail = fail

    def __call__(self, commands: list[dict[str, Any]]) -> None:
        self.messages.append(commands)
        if self.fail:
            raise ConnectionError("connection lost before the publisher confirm")


def _refusal(answer: Any) -> tuple[type, str | None, str] | None:
    return (type(answer), answer.field, answer.message) if isinstance(answer, Exception) else None


def test_a_batch_answers_each_submission_as_one_by_one_would(caller: Caller, account: uuid.UUID) -> None:
    """Given submissions of which some are refused and one repeats a known key, each gets the answer it gets alone;
    only the accepted ones leave a row (and key), and their commands travel as one message."""
    known, _ = submit_transaction(caller, _data(account), "known", _uow(), Sent())
    dollars = _account(caller.household_id, "USD")
    batch = [
        submissions.Submission(caller, _data(account, category="groceries"), "new-1", {"client_address": "1.2.3.4"}),
        submissions.Submission(caller, _data(account, amount="12.345"), "refused-1"),
        submissions.Submission(caller, _data(account), "known"),
        submissions.Submission(caller, _data(account, category="Nope"), None),
        submissions.Submission(caller, _data(account, type="transfer", counter_account_id=dollars), "refused-2"),
        submissions.Submission(caller, _data(uuid.uuid4()), None),
        submissions.Submission(caller, _data(account, currency="JPY", amount="1200"), None),
    ]
    sent = SentAll()

    answers = submissions.submit_transactions(batch, _uow(), sent)

    assert [_refusal(a) for a in answers] == [
        None, (Invalid, "amount", "EUR amounts have at most 2 decimal places"), None,
        (Invalid, "category", "no such category"),
        (Invalid, "counter_account_id", "transfers move money between accounts of the same currency"),
        (NotFound, "account_id", "no such account"), None]
    new, again, yen = answers[0], answers[2], answers[6]
    assert again == (known, False) and new[1] and yen[1]
    assert sorted(row[0] for row in _rows(caller)) == sorted([known, new[0], yen[0]])
    assert _keys(caller) == 2  # "known" and "new-1"
    assert len(sent.messages) == 1
    assert [(c["transaction_id"], c["amount"], c["currency"], c.get("origin")) for c in sent.messages[0]] == [
        (str(new[0]), "12.50", "EUR", {"client_address": "1.2.3.4"}), (str(yen[0]), "1200", "JPY", None)]


def test_nothing_of_a_batch_stays_when_its_message_is_not_confirmed(caller: Caller, account: uuid.UUID) -> None:
    known, _ = submit_transaction(caller, _data(account), "known", _uow(), Sent())
    batch = [submissions.Submission(caller, _data(account), "new-1"),
             submissions.Submission(caller, _data(account), "known"),
             submissions.Submission(caller, _data(account, amount="-1"), None),
             submissions.Submission(caller, _data(account), None)]

    answers = submissions.submit_transactions(batch, _uow(), SentAll(fail=True))

    assert isinstance(answers[0], ConnectionError) and isinstance(answers[3], ConnectionError)
    assert answers[1] == (known, False) and _refusal(answers[2]) == (Invalid, "amount", "amount must not be negative")
    assert [row[0] for row in _rows(caller)] == [known] and _keys(caller) == 1


def test_a_key_twice_in_one_batch_fails_the_batch_and_keeps_nothing(caller: Caller, account: uuid.UUID) -> None:
    """The second answer would depend on the first one's fate: the caller submits such a batch one by one."""
    batch = [submissions.Submission(caller, _data(account), "twice"), submissions.Submission(caller, _data(account),
                                                                                            "twice")]
    sent = SentAll()
    with pytest.raises(submissions.RepeatedKey):
        submissions.submit_transactions(batch, _uow(), sent)
    assert sent.messages == [] and _rows(caller) == [] and _keys(caller) == 0


def test_a_key_taken_by_a_concurrent_request_fails_the_batch(caller: Caller, account: uuid.UUID,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a key whose lookup did not see it yet (another request took it meanwhile), the insert fails on the key:
    nothing of the batch stays, and the caller submits one by one."""
    submit_transaction(caller, _data(account), "key-1", _uow(), Sent())
    lookup = submissions._lookup_params
    monkeypatch.setattr(submissions, "_lookup_params", lambda *args: {**lookup(*args), "key": None})
    sent = SentAll()
    with pytest.raises(IntegrityError):
        submissions.submit_transactions([submissions.Submission(caller, _data(account), None),
                                         submissions.Submission(caller, _data(account), "key-1")], _uow(), sent)
    assert sent.messages == [] and len(_rows(caller)) == 1


def test_a_batch_of_only_refusals_and_known_keys_sends_nothing(caller: Caller, account: uuid.UUID) -> None:
    known, _ = submit_transaction(caller, _data(account), "known", _uow(), Sent())
    sent = SentAll()
    answers = submissions.submit_transactions([submissions.Submission(caller, _data(account), "known"),
                                               submissions.Submission(caller, _data(account, category="x"), "k2")],
                                              _uow(), sent)
    assert answers[0] == (known, False) and _refusal(answers[1]) == (Invalid, "category", "no such category")
    assert sent.messages == [] and len(_rows(caller)) == 1 and _keys(caller) == 1

"""Recording a batch of submitted transactions in one database transaction gives exactly what recording them one
by one gives: categories by rule, by hand and by keyword, balances (transfers move both accounts), a rejection for
a deleted account, an orphaned command dropped, duplicates and already recorded ones left alone."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from config import wiring
from domain.events import Event
from models.ledger import Account, Category, Rule, Transaction
from models.messaging import OutboxEvent
from services import rules, transactions
from services.context import Caller
from services.identity import Registration, register
from services.submissions import submit_transaction
from services.transactions import RecordTransaction, record_transaction, record_transactions
from services.uow import UnitOfWork

GYM = {"name": "Gym", "stage": "default", "order": 0, "actions": [{"set_category": "Health"}, {"add_tag": "sport"}],
       "conditions": {"field": "payee", "op": "contains", "value": "fitness"}}


class Published:
    """Events published, message by message."""

    def __init__(self) -> None:
        self.messages: list[list[Event]] = []

    def __call__(self, events: list[Event]) -> None:
        self.messages.append(list(events))


def _uow(published: Published | None = None) -> UnitOfWork:
    sink = published or Published()
    return UnitOfWork(wiring.session_factory(), lambda e: sink([e]), lambda ids: None, sink)


def _household() -> tuple[Caller, dict[str, uuid.UUID]]:
    """A registered user (default categories), a Gym rule, and accounts: main, savings, and one deleted later."""
    user = register(Registration(f"{uuid.uuid4().hex}@example.com", "correct horse battery staple", "Batch", "EUR",
                                 None, "batch"), _uow())
    caller = Caller(user_id=user.id, household_id=user.household_id, base_currency="EUR", correlation_id="batch")
    rules.create(caller, dict(GYM), _uow())
    accounts = {name: uuid.uuid4() for name in ("main", "savings", "closed")}
    with wiring.session_factory()() as session, session.begin():
        for account_id in accounts.values():
            session.add(Account(id=account_id, household_id=caller.household_id, name="A", type="checking",
                                currency="EUR", opening_balance=Decimal("100.00"), balance=Decimal("100.00")))
    return caller, accounts


def _submit(caller: Caller, data: dict, *, commit: bool = True) -> RecordTransaction:
    """Submit the way the API does; without `commit` the request fails after sending (an orphaned command)."""
    sent: list[dict] = []

    def send(command: dict) -> None:
        sent.append(command)
        if not commit:
            raise ConnectionError("the publisher confirm was lost")

    try:
        submit_transaction(caller, {"occurred_on": dt.date(2026, 10, 15), **data}, None, _uow(), send)
    except ConnectionError:
        assert not commit
    return RecordTransaction.from_dict(sent[0])


def _commands(caller: Caller, accounts: dict[str, uuid.UUID]) -> list[RecordTransaction]:
    main, savings = accounts["main"], accounts["savings"]
    cmds = [
        _submit(caller, {"account_id": main, "type": "expense", "amount": "12.50", "payee": "City Fitness"}),
        _submit(caller, {"account_id": main, "type": "expense", "amount": "3.20", "payee": "REWE"}),
        _submit(caller, {"account_id": main, "type": "income", "amount": "2000.00", "payee": "ACME payroll"}),
        _submit(caller, {"account_id": main, "type": "expense", "amount": "40.00", "payee": "Gift shop",
                         "category": "Entertainment"}),
        _submit(caller, {"account_id": main, "type": "transfer", "amount": "500.00", "counter_account_id": savings}),
        _submit(caller, {"account_id": accounts["closed"], "type": "expense", "amount": "9.99", "payee": "X"}),
        _submit(caller, {"account_id": main, "type": "expense", "amount": "77.00", "payee": "Lost"}, commit=False),
    ]
    with wiring.session_factory()() as session, session.begin():
        session.get(Account, accounts["closed"]).deleted_at = dt.datetime.now(dt.UTC)
    return [*cmds, cmds[1]]  # the REWE command arrives twice


def _outcome(caller: Caller, accounts: dict[str, uuid.UUID]) -> tuple[list[tuple], list[Decimal]]:
    """Each transaction as (payee, amount, status, category, source, tags, reason), and the balances."""
    with wiring.session_factory()() as session:
        names = dict(session.execute(select(Category.id, Category.name).where(
            Category.household_id == caller.household_id)).tuples().all())
        txns = sorted((t.payee, t.amount, t.status, names.get(t.category_id), t.category_source, tuple(t.tags or ()),
                       t.reject_reason) for t in session.scalars(select(Transaction).where(
                           Transaction.household_id == caller.household_id)))
        balances = [session.get(Account, accounts[name]).balance for name in ("main", "savings", "closed")]
    return txns, balances


def test_a_batch_records_exactly_what_one_by_one_records() -> None:
    """Given twin households with the same commands, one recorded as a batch (one transaction, one message per
    exchange), the other one command at a time, then every command redelivered, both end the same."""
    alone, alone_accounts = _household()
    together, together_accounts = _household()
    for cmd in _commands(alone, alone_accounts):
        record_transaction(cmd, _uow())
    published = Published()
    batch = _commands(together, together_accounts)
    record_transactions(batch, _uow(published))
    record_transactions(batch, _uow())  # redelivered: nothing changes

    expected = _outcome(alone, alone_accounts)
    assert _outcome(together, together_accounts) == expected
    txns, balances = expected
    assert ("City Fitness", Decimal("12.50"), "recorded", "Health", "rule", ("sport",), None) in txns
    assert ("Gift shop", Decimal("40.00"), "recorded", "Entertainment", "user", (), None) in txns
    assert ("X", Decimal("9.99"), "rejected", None, None, (), "the account no longer exists") in txns
    assert not any(t[0] == "Lost" for t in txns), "the orphaned command is dropped"
    assert balances == [Decimal("100.00") - Decimal("12.50") - Decimal("3.20") + Decimal("2000.00")
                        - Decimal("40.00") - Decimal("500.00"), Decimal("600.00"), Decimal("100.00")]
    assert [sorted(e.type for e in message) for message in published.messages] == [
        ["TransactionRecorded"] * 5 + ["TransactionRejected"]], "one message for the batch's events"


@pytest.mark.parametrize("size", [1, 3])
def test_the_origin_of_each_request_is_carried_by_its_event(size: int) -> None:
    """Given origins for the commands of a batch, each TransactionRecorded carries its own request's."""
    caller, accounts = _household()
    cmds = [_submit(caller, {"account_id": accounts["main"], "type": "expense", "amount": f"{n + 1}.00"})
            for n in range(size)]
    origins = {c.transaction_id: {"client_address": f"10.0.0.{n}", "user_agent": "t"} for n, c in enumerate(cmds)}
    published = Published()
    record_transactions(cmds, _uow(published), origins)
    events = [e for message in published.messages for e in message]
    assert {e.payload["transaction_id"]: e.origin for e in events} == origins


def test_a_batch_holding_its_accounts_does_not_hold_up_new_submissions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a batch paused while it holds its transactions and accounts locked, the API still accepts a purchase
    on the same account at once: the foreign key check of its insert takes KEY SHARE, which the batch's
    FOR NO KEY UPDATE allows (FOR UPDATE would make every purchase wait for the batch to commit)."""
    caller, accounts = _household()
    cmd = _submit(caller, {"account_id": accounts["main"], "type": "expense", "amount": "1.00"})
    locked, release = threading.Event(), threading.Event()
    rules_of = transactions.households_rules

    def paused(household_ids: set[uuid.UUID], uow: UnitOfWork) -> object:
        locked.set()
        release.wait(10)
        return rules_of(household_ids, uow)

    monkeypatch.setattr(transactions, "households_rules", paused)
    batch = threading.Thread(target=record_transactions, args=([cmd], _uow()))
    batch.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        _submit(caller, {"account_id": accounts["main"], "type": "expense", "amount": "2.00"})
        assert time.monotonic() - started < 5, "the submission waited for the batch"
    finally:
        release.set()
        batch.join()


def test_recording_writes_each_column_and_stores_in_the_outbox_what_it_publishes() -> None:
    """Given a rule's match, a category chosen by hand (by id), a purchase in a foreign currency, a transfer and
    one on a deleted account, each row ends with the columns recording owns set as below, only the accounts in the
    transaction's currency move, and the outbox holds exactly the envelopes published."""
    caller, accounts = _household()
    with wiring.session_factory()() as session:
        gym = session.scalar(select(Rule.id).where(Rule.household_id == caller.household_id))
        names = dict(session.execute(select(Category.name, Category.id).where(
            Category.household_id == caller.household_id)).tuples().all())
    main, savings = accounts["main"], accounts["savings"]
    cmds = [
        _submit(caller, {"account_id": main, "type": "expense", "amount": "12.50", "payee": "City Fitness"}),
        _submit(caller, {"account_id": main, "type": "expense", "amount": "40.00", "payee": "Gift shop",
                         "category": str(names["Entertainment"])}),
        _submit(caller, {"account_id": main, "type": "expense", "amount": "10.00", "payee": "Diner",
                         "currency": "USD"}),
        _submit(caller, {"account_id": main, "type": "transfer", "amount": "500.00", "counter_account_id": savings}),
        _submit(caller, {"account_id": accounts["closed"], "type": "expense", "amount": "9.99", "payee": "X"}),
    ]
    with wiring.session_factory()() as session, session.begin():
        session.get(Account, accounts["closed"]).deleted_at = dt.datetime.now(dt.UTC)
    published = Published()
    record_transactions(cmds, _uow(published))

    columns = ("status", "category_id", "category_source", "category_rule_id", "payee", "tags", "locked",
               "base_currency", "base_amount", "fx_status", "account_amount", "reject_reason")
    with wiring.session_factory()() as session:
        rows = {t.id: t for t in session.scalars(select(Transaction).where(
            Transaction.id.in_([uuid.UUID(c.transaction_id) for c in cmds])))}
        balances = [session.get(Account, accounts[name]).balance for name in ("main", "savings", "closed")]
        outbox = {str(o.event_id): (o.exchange, o.envelope) for o in session.scalars(select(OutboxEvent).where(
            OutboxEvent.envelope["causation_id"].astext.in_([c.transaction_id for c in cmds])))}
    written = [tuple(getattr(rows[uuid.UUID(c.transaction_id)], name) for name in columns) for c in cmds]
    eur, twelve, forty, five_hundred = "EUR", Decimal("12.5000"), Decimal("40.0000"), Decimal("500.0000")
    assert written == [
        ("recorded", names["Health"], "rule", gym, "City Fitness", ["sport"], [], eur, twelve, "none", twelve, None),
        ("recorded", names["Entertainment"], "user", None, "Gift shop", [], ["category"], eur, forty, "none", forty,
         None),
        ("recorded", names["Uncategorized"], "default", None, "Diner", [], [], eur, None, "pending", None, None),
        ("recorded", names["Transfers"], "default", None, "", [], [], eur, five_hundred, "none", five_hundred, None),
        ("rejected", None, None, None, "X", [], [], eur, None, "none", None, "the account no longer exists"),
    ]
    recorded = [rows[uuid.UUID(c.transaction_id)].recorded_at for c in cmds]
    assert all(recorded[:4]) and recorded[4] is None
    assert balances == [Decimal("100.00") - Decimal("12.50") - Decimal("40.00") - Decimal("500.00"),
                        Decimal("600.00"), Decimal("100.00")]
    events = [e for message in published.messages for e in message]
    assert [e.causation_id for e in events] == [c.transaction_id for c in cmds], "one event each, in command order"
    assert outbox == {e.event_id: (e.exchange, e.to_dict()) for e in events}

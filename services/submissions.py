"""Accepting transactions from the API: a pending row and a confirmed command, or nothing at all."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, Select, String, Uuid, bindparam, delete, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from domain.money import InvalidMoney, format_amount, parse_amount
from models.driver import DriverStatement
from models.ledger import Account, Category, IdempotencyKey, Transaction
from services.context import Caller
from services.errors import Invalid, NotFound, ServiceError
from services.transactions import RecordTransaction, SendCommand
from services.uow import UnitOfWork

_accounts, _categories = Account.__table__, Category.__table__
_keys, _transactions = IdempotencyKey.__table__, Transaction.__table__
#: A pending row's fx_status: the model's default (Core inserts from a SELECT do not apply Python-side defaults).
_NO_FX = _transactions.c.fx_status.default.arg
#: The currency with the most decimals (ISO 4217 exponent 4): amounts are shaped to it before theirs is known.
_WIDEST = "CLF"
#: The columns a pending transaction is inserted with; the others take their server defaults.
_PENDING_COLUMNS = ("id", "household_id", "account_id", "user_id", "type", "amount", "currency", "occurred_on",
                    "payee", "description", "notes", "requested_category", "status", "fx_status",
                    "base_currency", "correlation_id", "counter_account_id")


def submit_transaction(caller: Caller, data: dict[str, Any], idempotency_key: str | None,
                       uow: UnitOfWork, send: SendCommand) -> tuple[uuid.UUID, bool]:
    """Accept a transaction as pending and hand it to the pools; (id, created). Nothing stays if sending fails."""
    pending = _pending(caller, data)
    # Core statements, no ORM objects. One statement looks up what the checks need and inserts the row (and key)
    # if the key is new and the account is there; a check that refuses the transaction rolls it back.
    with uow:
        try:
            answer, message = _accept(Submission(caller, data, idempotency_key), pending, uow.session.connection())
        except IntegrityError:  # the same key, sent again meanwhile
            uow.session.rollback()
            return _known_key(caller, idempotency_key or "", uow.session.connection()) or pending["id"], False
        if isinstance(answer, Exception):
            raise answer
        if message is not None:  # new: sent, then kept
            send(message)
            uow.commit()
        return answer


@dataclass(frozen=True)
class Submission:
    """One request's transaction: who asks, what for, under which Idempotency-Key, and from where (client address
    and user agent, carried by its command)."""

    caller: Caller
    data: dict[str, Any]
    idempotency_key: str | None = None
    origin: dict[str, str] | None = None


class RepeatedKey(ValueError):
    """A batch repeats an Idempotency-Key: the second answer depends on the first one's fate, so submit one by one."""


#: A submission's answer: the transaction's id and whether this submission created it, or what refused it.
Answer = tuple[uuid.UUID, bool] | Exception
#: Sends commands as ONE message to their pool; raises when RabbitMQ did not confirm it.
SendCommands = Callable[[list[dict[str, Any]]], None]


def submit_transactions(batch: list[Submission], uow: UnitOfWork, send_all: SendCommands) -> list[Answer]:
    """Accept many transactions in ONE database transaction and ONE confirmed command message; each submission's
    answer, as `submit_transaction` would give it (an error for a refused one, of which nothing stays).

    If RabbitMQ does not confirm the message, every submission that would have created a transaction is answered
    with that error and nothing is kept. A key taken meanwhile by a concurrent request raises IntegrityError, and a
    key repeated within the batch RepeatedKey, with nothing kept: submit those one by one."""
    keys = [(s.caller.household_id, s.idempotency_key) for s in batch if s.idempotency_key]
    if len(set(keys)) < len(keys):
        raise RepeatedKey("an Idempotency-Key is repeated within the batch")
    answers: list[Answer] = []
    messages: list[dict[str, Any]] = []
    refused: list[uuid.UUID] = []
    with uow:
        connection = uow.session.connection()
        for submission in batch:
            pending = _pending(submission.caller, submission.data)
            answer, message = _accept(submission, pending, connection)
            answers.append(answer)
            if message is not None:
                messages.append(message)
            elif isinstance(answer, ServiceError):
                refused.append(pending["id"])
        if refused:  # their rows were inserted by the statement that found what refuses them
            connection.execute(delete(_keys).where(_keys.c.transaction_id.in_(refused)))
            connection.execute(delete(_transactions).where(_transactions.c.id.in_(refused)))
        if not messages:
            uow.commit()
            return answers
        try:
            send_all(messages)
        except Exception as failed:  # noqa: BLE001 - not confirmed: none of them was accepted, each is told why
            return [failed if isinstance(a, tuple) and a[1] else a for a in answers]
        uow.commit()
    return answers


def _accept(submission: Submission, pending: dict[str, Any], connection: Connection
            ) -> tuple[Answer, dict[str, Any] | None]:
    """One submission inside the batch's transaction: its answer and, for a new transaction, its command."""
    key = submission.idempotency_key
    found = (_SUBMIT_WITH_KEY if key else _SUBMIT).rows(connection, {
        **pending, **_lookup_params(submission.caller, submission.data, key)})[0]
    if found.known:
        return (found.known, False), None
    try:
        currency = _checked_currency(submission.data, found)
        message = _message(_command(pending, currency, _amount(submission.data["amount"], currency)))
    except ServiceError as refusal:
        return refusal, None
    if submission.origin:
        message["origin"] = submission.origin
    return (pending["id"], True), message


def _lookup_params(caller: Caller, data: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    category_id, category_name = _category_ref(data.get("category"))
    return {"household_id": caller.household_id, "key": idempotency_key, "account_id": data["account_id"],
            "counter_account_id": data.get("counter_account_id"), "category_id": category_id,
            "category_name": category_name}


def _category_ref(name_or_id: str | None) -> tuple[uuid.UUID | None, str | None]:
    """A category is named by its id or by its name, case-insensitively (as services.accounts.find_category)."""
    if not name_or_id:
        return None, None
    try:
        return uuid.UUID(name_or_id), None
    except ValueError:
        return None, name_or_id.strip().lower()


def _checked_currency(data: dict[str, Any], found: Row) -> str:
    """The transaction's currency, once the account, the transfer and the category check out."""
    if found.currency is None:
        raise NotFound("no such account", field="account_id")
    currency = data.get("currency") or found.currency
    _check_transfer(data, found, currency)
    if data.get("category") and not found.category_found:
        raise Invalid("no such category", field="category")
    return currency


def _check_transfer(data: dict[str, Any], found: Row, currency: str) -> None:
    """A transfer names another account of the household in the same currency; nothing else names one."""
    counter_id = data.get("counter_account_id")
    if data["type"] != "transfer":
        if counter_id:
            raise Invalid("only transfers have a counter account", field="counter_account_id")
        return
    if not counter_id:
        raise Invalid("a transfer needs the account it goes to", field="counter_account_id")
    if counter_id == data["account_id"]:
        raise Invalid("a transfer goes to another account", field="counter_account_id")
    if found.counter_currency is None:
        raise NotFound("no such account", field="counter_account_id")
    if found.counter_currency != found.currency or currency != found.currency:
        raise Invalid("transfers move money between accounts of the same currency", field="counter_account_id")


def _amount(text: str, currency: str) -> Decimal:
    try:
        return parse_amount(text, currency)
    except InvalidMoney as exc:
        raise Invalid(exc.reason, field="amount") from None


def _known_key(caller: Caller, key: str, connection: Connection) -> uuid.UUID | None:
    return connection.execute(_KNOWN, {"household_id": caller.household_id, "key": key}).scalar()


def _pending(caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
    """The pending row; its currency (when the request names none) comes from the account in SQL."""
    return {
        "id": uuid.uuid4(), "household_id": caller.household_id, "account_id": data["account_id"],
        "user_id": caller.user_id, "type": data["type"], "amount": _provisional(data["amount"]),
        "currency": data.get("currency"), "occurred_on": data["occurred_on"], "payee": data.get("payee") or "",
        "description": data.get("description") or "", "notes": data.get("notes") or "",
        "requested_category": data.get("category"), "status": "pending", "fx_status": _NO_FX,
        "base_currency": caller.base_currency, "correlation_id": caller.correlation_id,
        "counter_account_id": data.get("counter_account_id"),
    }


def _provisional(text: str) -> Decimal:
    """The amount as inserted before its currency is known: the number `_amount` gives once it is (or 0 for a text
    that `_amount` will refuse, which rolls the row back)."""
    try:
        return parse_amount(text, _WIDEST, allow_zero=True, allow_negative=True)
    except InvalidMoney:
        return Decimal(0)


def _command(pending: dict[str, Any], currency: str, amount: Decimal) -> RecordTransaction:
    counter_id = pending["counter_account_id"]
    return RecordTransaction(
        transaction_id=str(pending["id"]), household_id=str(pending["household_id"]),
        user_id=str(pending["user_id"]), account_id=str(pending["account_id"]), type=pending["type"],
        amount=format_amount(amount, currency), currency=currency,
        occurred_on=pending["occurred_on"].isoformat(), payee=pending["payee"],
        description=pending["description"], notes=pending["notes"], category=pending["requested_category"],
        correlation_id=pending["correlation_id"], counter_account_id=str(counter_id) if counter_id else None,
    )


def _message(command: RecordTransaction) -> dict[str, Any]:
    """The command's message payload, as `to_dict` gives it: every field is a string or None, so a shallow copy
    is enough (asdict's recursive copy costs more than the rest of the payload on the ingest path)."""
    return dict(vars(command))


def _lookup_query() -> Select:
    """One row: the Idempotency-Key's transaction, the currencies of the account and the counter account (open
    accounts of the household only) and whether the category exists; NULL for each that is not there."""
    household = bindparam("household_id", type_=Uuid)

    def currency_of(param: str) -> Any:
        return select(_accounts.c.currency).where(
            _accounts.c.id == bindparam(param, type_=Uuid), _accounts.c.household_id == household,
            _accounts.c.deleted_at.is_(None)).scalar_subquery()

    known = select(_keys.c.transaction_id).where(
        _keys.c.household_id == household, _keys.c.key == bindparam("key", type_=String)).scalar_subquery()
    category = exists().where(_categories.c.household_id == household, or_(
        _categories.c.id == bindparam("category_id", type_=Uuid),
        func.lower(_categories.c.name) == bindparam("category_name", type_=String)))
    return select(known.label("known"), currency_of("account_id").label("currency"),
                  currency_of("counter_account_id").label("counter_currency"), category.label("category_found"))


def _submit_query(with_key: bool) -> Select:
    """The lookup's row, inserting the pending row (with its Idempotency-Key) when the key is new and the account
    (and counter account, if any) is there: one round trip. A key taken meanwhile fails the whole statement."""
    found = _lookup_query().cte("found")
    values = [func.coalesce(bindparam("currency", type_=String), found.c.currency) if name == "currency"
              else bindparam(name, type_=_transactions.c[name].type) for name in _PENDING_COLUMNS]
    new = insert(_transactions).from_select(
        _PENDING_COLUMNS, select(*values).where(
            found.c.known.is_(None), found.c.currency.is_not(None),
            or_(bindparam("counter_account_id", type_=Uuid).is_(None), found.c.counter_currency.is_not(None))),
        include_defaults=False,  # every column is given or has a server default
    ).returning(_transactions.c.id, _transactions.c.household_id).cte("new_transaction")
    query = select(found).add_cte(new)
    if with_key:
        key = insert(_keys).from_select(["household_id", "key", "transaction_id"],
                                        select(new.c.household_id, bindparam("key", type_=String), new.c.id),
                                        include_defaults=False)
        query = query.add_cte(key.cte("new_key"))
    return query


# Built and compiled once, and run on the driver's cursor: they are on every purchase's path.
_SUBMIT = DriverStatement(_submit_query(with_key=False))
_SUBMIT_WITH_KEY = DriverStatement(_submit_query(with_key=True))
_KNOWN = select(_keys.c.transaction_id).where(_keys.c.household_id == bindparam("household_id", type_=Uuid),
                                              _keys.c.key == bindparam("key", type_=String))

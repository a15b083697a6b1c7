"""Transactions: accepted as commands (202), recorded by the pools."""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

from flask import g, request, url_for
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates

from api.schemas import AmountText, Blueprint, Currency, Line, Text, money_amount, money_out
from api.security import auth_required, current_caller
from config import wiring
from models.ledger import Category, Transaction
from services import accounts, submissions, transactions
from services import transaction_changes as changes
from services import transaction_queries as queries
from services.group_commit import GroupCommit, Item
from services.submissions import Answer, Submission
from services.transaction_queries import MAX_LIMIT
from services.uow import request_origin

blp = Blueprint("transactions", __name__, url_prefix="/api/v1/transactions", description="Transactions")

#: Dates outside this window are almost certainly typing mistakes.
EARLIEST = dt.date(1900, 1, 1)


class TransactionIn(Schema):
    """A transaction to record."""

    account_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(("expense", "income", "transfer")))
    amount = AmountText(required=True)
    currency = Currency(load_default=None)
    occurred_on = fields.Date(required=True)
    payee = Line(load_default="", validate=validate.Length(max=200))
    description = Text(load_default="", validate=validate.Length(max=2000))
    notes = Text(load_default="", validate=validate.Length(max=2000))
    category = Line(load_default=None, validate=validate.Length(min=1, max=100))
    counter_account_id = fields.UUID(load_default=None)

    @validates("occurred_on")
    def _plausible_date(self, value: dt.date, **_: object) -> None:
        if not EARLIEST <= value <= dt.date.today() + dt.timedelta(days=366):
            raise ValidationError("must be between 1900-01-01 and a year from today")


#: One instance for every request: a schema class would be instantiated (its fields deep-copied) per request.
TRANSACTION_IN = TransactionIn()


class TransactionPatch(Schema):
    """Fields a person may change; a field set by hand is never overwritten by a rule."""

    amount = AmountText()
    occurred_on = fields.Date()
    payee = Line(validate=validate.Length(max=200))
    description = Text(validate=validate.Length(max=2000))
    notes = Text(validate=validate.Length(max=2000))
    category = Line(validate=validate.Length(min=1, max=100))
    tags = fields.List(Line(validate=validate.Length(min=1, max=50)), validate=validate.Length(max=20))

    @validates("occurred_on")
    def _plausible_date(self, value: dt.date, **_: object) -> None:
        if not EARLIEST <= value <= dt.date.today() + dt.timedelta(days=366):
            raise ValidationError("must be between 1900-01-01 and a year from today")


class ListQuery(Schema):
    """Filters and paging of the transaction list."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))
    account_id = fields.UUID(load_default=None)
    category = Line(load_default=None, validate=validate.Length(min=1, max=100))
    type = fields.String(load_default=None, validate=validate.OneOf(("expense", "income", "transfer")))
    status = fields.String(load_default=None, validate=validate.OneOf(("pending", "recorded", "rejected")))
    since = fields.Date(load_default=None, data_key="from")
    until = fields.Date(load_default=None, data_key="to")
    q = Line(load_default=None, validate=validate.Length(min=1, max=100))
    min_amount = AmountText(load_default=None)
    max_amount = AmountText(load_default=None)


class TransactionPage(Schema):
    """A page of transactions, newest first."""

    items = fields.List(fields.Nested(lambda: TransactionOut()))
    next_cursor = fields.String(allow_none=True)


class Accepted(Schema):
    """A command accepted for processing."""

    id = fields.String()
    status = fields.String()


class TransactionOut(Schema):
    """A transaction and what the pools made of it."""

    id = fields.String()
    status = fields.String()
    reject_reason = fields.String(allow_none=True)
    account_id = fields.String()
    type = fields.String()
    amount = fields.String()
    currency = fields.String()
    occurred_on = fields.String()
    payee = fields.String()
    description = fields.String()
    notes = fields.String()
    category = fields.String(allow_none=True)
    category_source = fields.String(allow_none=True)
    converted = fields.Dict(allow_none=True)
    fx_status = fields.String()
    counter_account_id = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    locked = fields.List(fields.String())


def transaction_out(txn: Transaction, category: str | None) -> dict:
    """A transaction as the API shows it."""
    converted = None
    if txn.base_amount is not None:
        converted = {"amount": money_out(txn.base_amount, txn.base_currency), "currency": txn.base_currency,
                     "rate": str(txn.fx_rate) if txn.fx_rate is not None else "1",
                     "rate_date": (txn.fx_rate_date or txn.occurred_on).isoformat(),
                     "source": txn.fx_source or "identity"}
    return {"id": str(txn.id), "status": txn.status, "reject_reason": txn.reject_reason,
            "account_id": str(txn.account_id), "type": txn.type, "amount": money_out(txn.amount, txn.currency),
            "currency": txn.currency, "occurred_on": txn.occurred_on.isoformat(), "payee": txn.payee,
            "description": txn.description, "notes": txn.notes, "category": category,
            "category_source": txn.category_source, "converted": converted, "fx_status": txn.fx_status,
            "counter_account_id": str(txn.counter_account_id) if txn.counter_account_id else None,
            "tags": list(txn.tags or []), "locked": list(txn.locked or [])}


def _send(actor: str) -> Callable[[Any], None]:
    """Sends a command (or, to an actor that takes a list, many) to the categorization pool, confirmed."""
    def send(command: dict | list) -> None:
        wiring.broker().send_command("categorization", actor, command)
    return send


#: The most submissions accepted in one database transaction and one command message.
SUBMIT_BATCH = 64


@cache
def submitter() -> GroupCommit[Submission, tuple[uuid.UUID, bool]]:
    """This process's group commit of submitted transactions: the requests that wait together share one database
    transaction and one confirmed command message (each still answered only once RabbitMQ confirmed its command).
    Should a batch fail as a whole, each request is submitted on its own."""
    return GroupCommit(_submit_batch, name="submit-group-commit", max_batch=SUBMIT_BATCH)


def _submit_batch(items: list[Item[Submission]]) -> list[Answer]:
    if len(items) == 1:  # on its own (quiet times, or a failed batch retried one by one): the plain path
        submission = items[0][0]
        return [submissions.submit_transaction(submission.caller, submission.data, submission.idempotency_key,
                                               wiring.uow(), _send("record_transaction_command"))]
    return submissions.submit_transactions([_with_origin(s, context) for s, context in items], wiring.uow(),
                                           _send("record_transactions_command"))


def _with_origin(submission: Submission, context: contextvars.Context) -> Submission:
    """The submission with where its request came from (a command sent alone carries it in its options)."""
    current = context.get(request_origin)
    if current is None or current[0] != submission.caller.correlation_id:
        return submission
    return dataclasses.replace(submission, origin=current[1])


def _filters(query: dict) -> queries.Filters:
    caller = current_caller()
    category_ids = None
    if query["category"]:
        uow = wiring.uow()
        with uow:
            found = accounts.find_category(caller.household_id, query["category"], uow)
        category_ids = queries.category_subtree(caller.household_id, found.id, uow) if found else ()
    amounts = {k: money_amount(query[k], "CLF", k, allow_zero=True) if query[k] else None
               for k in ("min_amount", "max_amount")}
    return queries.Filters(account_id=query["account_id"], category_ids=category_ids, type=query["type"],
                           status=query["status"], since=query["since"], until=query["until"], q=query["q"],
                           **amounts)


@blp.route("")
class Transactions(MethodView):
    """Submit transactions."""

    decorators = [auth_required()]

    @blp.arguments(TRANSACTION_IN)
    @blp.response(202, Accepted)
    def post(self, data: dict) -> tuple[dict, int, dict]:
        """Record a transaction (202: the pools record it; poll its Location)."""
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= 200:
            raise ValidationError({"Idempotency-Key": ["must be 1 to 200 characters"]})
        txn_id, _ = submitter().submit(Submission(current_caller(), data, key))
        location = url_for("transactions.TransactionById", transaction_id=txn_id)
        return {"id": str(txn_id), "status": "pending"}, 202, {"Location": location, "X-Request-ID": g.request_id}

    @blp.arguments(ListQuery, location="query")
    @blp.response(200, TransactionPage)
    def get(self, query: dict) -> dict:
        """List transactions, newest first.

        Filter by account, category (with its children), type, status, dates (from, to), text in payee or
        description (q), amounts; page with `cursor`."""
        page = queries.list_transactions(current_caller(), _filters(query), query["cursor"], query["limit"],
                                         wiring.uow())
        return {"items": [transaction_out(t, c) for t, c in page.items], "next_cursor": page.next_cursor}


@blp.route("/<uuid:transaction_id>")
class TransactionById(MethodView):
    """One transaction."""

    decorators = [auth_required()]

    @blp.response(200, TransactionOut)
    def get(self, transaction_id: uuid.UUID) -> dict:
        """Show a transaction: pending, recorded or rejected."""
        uow = wiring.uow()
        txn = transactions.get_transaction(current_caller(), transaction_id, uow)
        with uow:
            category = uow.session.get(Category, txn.category_id) if txn.category_id else None
        return transaction_out(txn, category.name if category else None)

    @blp.arguments(TransactionPatch)
    @blp.response(202, Accepted)
    def patch(self, data: dict, transaction_id: uuid.UUID) -> dict:
        """Change a transaction (202: applied by the pools; budgets, balances and reports follow)."""
        changes.submit_change(current_caller(), transaction_id, data, False, wiring.uow(),
                              _send("change_transaction_command"))
        return {"id": str(transaction_id), "status": "pending"}

    @blp.response(202, Accepted)
    def delete(self, transaction_id: uuid.UUID) -> dict:
        """Delete a transaction (202: applied by the pools; budgets, balances and reports follow)."""
        changes.submit_change(current_caller(), transaction_id, {}, True, wiring.uow(),
                              _send("change_transaction_command"))
        return {"id": str(transaction_id), "status": "pending"}

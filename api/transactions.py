"""Transactions: accepted as commands (202), recorded by the pools."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import g, request, url_for
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates

from api.schemas import AmountText, Blueprint, Currency, Line, Text, money_out
from api.security import auth_required, current_caller
from config import wiring
from models.ledger import Category, Transaction
from services import transactions

blp = Blueprint("transactions", __name__, url_prefix="/api/v1/transactions", description="Transactions")

#: Dates outside this window are almost certainly typing mistakes.
EARLIEST = dt.date(1900, 1, 1)


class TransactionIn(Schema):
    """A transaction to record."""

    account_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(
        ("expense", "income"), error="must be expense or income (transfers come with two-legged accounts)"))
    amount = AmountText(required=True)
    currency = Currency(load_default=None)
    occurred_on = fields.Date(required=True)
    payee = Line(load_default="", validate=validate.Length(max=200))
    description = Text(load_default="", validate=validate.Length(max=2000))
    notes = Text(load_default="", validate=validate.Length(max=2000))
    category = Line(load_default=None, validate=validate.Length(min=1, max=100))

    @validates("occurred_on")
    def _plausible_date(self, value: dt.date, **_: object) -> None:
        if not EARLIEST <= value <= dt.date.today() + dt.timedelta(days=366):
            raise ValidationError("must be between 1900-01-01 and a year from today")


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
            "category_source": txn.category_source, "converted": converted, "fx_status": txn.fx_status}


@blp.route("")
class Transactions(MethodView):
    """Submit transactions."""

    decorators = [auth_required()]

    @blp.arguments(TransactionIn)
    @blp.response(202, Accepted)
    def post(self, data: dict) -> tuple[dict, int, dict]:
        """Record a transaction (202: the pools record it; poll its Location)."""
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= 200:
            raise ValidationError({"Idempotency-Key": ["must be 1 to 200 characters"]})

        def send(command: dict) -> None:
            wiring.broker().send_command("categorization", "record_transaction_command", command)

        txn_id, _ = transactions.submit_transaction(current_caller(), data, key, wiring.uow(), send)
        location = url_for("transactions.TransactionById", transaction_id=txn_id)
        return {"id": str(txn_id), "status": "pending"}, 202, {"Location": location, "X-Request-ID": g.request_id}


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

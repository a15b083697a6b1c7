"""Accounts of the caller's household."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from marshmallow import Schema, fields, validate, validates_schema

from api.schemas import AmountText, Blueprint, Currency, Line, money_amount, money_out
from api.security import auth_required, current_caller
from config import wiring
from models.ledger import Account
from services import accounts

blp = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts", description="Accounts")


class AccountIn(Schema):
    """A new account."""

    name = Line(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(accounts.ACCOUNT_TYPES))
    currency = Currency(required=True)
    opening_balance = AmountText(load_default="0")

    @validates_schema
    def _amount_fits_currency(self, data: dict, **_: object) -> None:
        data["opening_balance"] = money_amount(data["opening_balance"], data["currency"], "opening_balance",
                                               allow_zero=True, allow_negative=True)


def account_out(account: Account) -> dict:
    """An account as the API shows it."""
    return {"id": str(account.id), "name": account.name, "type": account.type, "currency": account.currency,
            "opening_balance": money_out(account.opening_balance, account.currency),
            "balance": money_out(account.balance, account.currency), "created_at": account.created_at.isoformat()}


class AccountOut(Schema):
    """An account with its current balance."""

    id = fields.String()
    name = fields.String()
    type = fields.String()
    currency = fields.String()
    opening_balance = fields.String()
    balance = fields.String()
    created_at = fields.String()


class AccountList(Schema):
    """A page of accounts."""

    items = fields.List(fields.Nested(AccountOut))
    next_cursor = fields.String(allow_none=True)


@blp.route("")
class Accounts(MethodView):
    """The household's accounts."""

    decorators = [auth_required()]

    @blp.arguments(AccountIn)
    @blp.response(201, AccountOut)
    def post(self, data: dict) -> dict:
        """Open an account."""
        caller = current_caller()
        return account_out(accounts.open_account(caller, data["name"], data["type"], data["currency"],
                                                 data["opening_balance"], wiring.uow()))

    @blp.response(200, AccountList)
    def get(self) -> dict:
        """List accounts."""
        return {"items": [account_out(a) for a in accounts.list_accounts(current_caller(), wiring.uow())],
                "next_cursor": None}


@blp.route("/<uuid:account_id>")
class AccountById(MethodView):
    """One account."""

    decorators = [auth_required()]

    @blp.response(200, AccountOut)
    def get(self, account_id: uuid.UUID) -> dict:
        """Show an account with its balance."""
        return account_out(accounts.get_account(current_caller(), account_id, wiring.uow()))

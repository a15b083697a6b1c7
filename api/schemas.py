"""Marshmallow fields and schemas shared by the resources: money as strings, ISO 4217 codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields

from domain.money import InvalidMoney, format_amount, is_known_currency, parse_amount


class Currency(fields.String):
    """An ISO 4217 code in capitals, like EUR."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        code = super()._deserialize(value, attr, data, **kwargs)
        if not is_known_currency(code):
            raise ValidationError(f"unknown currency {code!r}: use an ISO 4217 code such as EUR")
        return code


class AmountText(fields.String):
    """A decimal amount written as a string ("12.34"); checked against its currency later."""

    default_error_messages = {"invalid": 'amount must be a string such as "12.34", not a number'}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parse_amount(text, "CLF", allow_zero=True, allow_negative=True)  # widest exponent: shape only
        except InvalidMoney as exc:
            raise ValidationError(exc.reason) from None
        return text


def money_amount(text: str, currency: str, field: str = "amount", **rules: bool) -> Decimal:
    """Parse an amount for its currency or raise a field error the API reports as 422."""
    try:
        return parse_amount(text, currency, **rules)
    except InvalidMoney as exc:
        raise ValidationError({field: [exc.reason]}) from None


def money_out(amount: Decimal | None, currency: str) -> str | None:
    """An amount as the API writes it: a string with the currency's exponent."""
    return None if amount is None else format_amount(amount, currency)


class ErrorSchema(Schema):
    """The one error shape."""

    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))

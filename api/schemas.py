"""What the resources share: money as strings, ISO 4217 codes, text fields, and a strict JSON body parser."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import flask
import flask_smorest
from marshmallow import Schema, ValidationError, fields
from webargs.core import missing
from webargs.flaskparser import FlaskParser, abort, is_json_request

from domain.money import InvalidMoney, format_amount, is_known_currency, parse_amount
from domain.periods import is_time_zone

#: Control characters: PostgreSQL refuses NUL in text, and none of them belongs in a one-line name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Text(fields.String):
    """Free text that PostgreSQL can store: anything but NUL."""

    default_error_messages = {"nul": "must not contain NUL characters"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class Line(Text):
    """A one-line name (payee, category, account name): no control characters at all."""

    default_error_messages = {"control": "must be one line without control characters"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _CONTROL.search(text):
            raise self.make_error("control")
        return text


class Currency(fields.String):
    """An ISO 4217 code in capitals, like EUR."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        code = super()._deserialize(value, attr, data, **kwargs)
        if not is_known_currency(code):
            raise ValidationError(f"unknown currency {code!r}: use an ISO 4217 code such as EUR")
        return code


class TimeZone(fields.String):
    """An IANA time zone such as Europe/Berlin."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        name = super()._deserialize(value, attr, data, **kwargs)
        if not is_time_zone(name):
            raise ValidationError(f"unknown time zone {name[:40]!r}: use an IANA name such as Europe/Berlin")
        return name


class AmountText(fields.String):
    """A decimal amount written as a string ("12.34"); checked against its currency later."""

    default_error_messages = {"invalid": 'amount must be a decimal string such as "12.34"'}

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


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class JsonBodyParser(FlaskParser):
    """Reads request bodies as strict JSON: 415 when a body is not declared JSON, 400 when it does not parse."""

    def load_json(self, req: flask.Request, schema: Schema) -> Any:
        """The parsed body; missing when there is none."""
        body = req.get_data(cache=True)
        if not is_json_request(req):
            if body:
                abort(415, message=f"send the body as JSON with Content-Type: application/json, "
                                   f"not {req.mimetype or 'no Content-Type'}")
            return missing
        if not body.strip():
            return missing
        try:
            return json.loads(body, parse_constant=_refuse_constant)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and NaN/Infinity
            abort(400, message=f"the request body is not valid JSON: {exc}")


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint whose JSON bodies go through the strict parser."""

    ARGUMENTS_PARSER = JsonBodyParser()

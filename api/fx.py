"""Exchange rates: what a rate was on a date (and where it came from), and a household's own rates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields

from api.schemas import Blueprint, Currency
from api.security import auth_required, current_caller
from config import wiring
from domain.fx import MAX_RATE_AGE_DAYS, Rate, check_rate_date, parse_rate
from domain.money import is_known_currency
from models.fx import FxRate
from services import fx, fx_rates
from services.errors import NotFound

blp = Blueprint("fx", __name__, url_prefix="/api/v1/fx", description="Exchange rates")


class Code(Currency):
    """An ISO 4217 code; a lowercase one is refused with the spelling that would work."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str) and value != value.upper() and is_known_currency(value.upper()):
            raise ValidationError(f"currency codes are written in capitals: use {value.upper()!r}")
        return super()._deserialize(value, attr, data, **kwargs)


class RateQuery(Schema):
    """Which rate: base (default: your base currency), quote (omit it for every rate known offline), date."""

    base = Code(load_default=None)
    quote = Code(load_default=None)
    date = fields.Date(load_default=None)


class RateOut(Schema):
    """One rate: one `base` buys `rate` `quote`, as published on `date` (stale when before the date asked for)."""

    base = fields.String()
    quote = fields.String()
    rate = fields.String()
    date = fields.String()
    requested_date = fields.String()
    stale = fields.Boolean()
    source = fields.String()


class RatesOut(Schema):
    """One rate when `quote` was given; otherwise every rate from `base` known without the live provider."""

    base = fields.String()
    quote = fields.String()
    rate = fields.String()
    date = fields.String()
    requested_date = fields.String()
    stale = fields.Boolean()
    source = fields.String()
    rates = fields.List(fields.Nested(RateOut))


class ManualRateIn(Schema):
    """A rate of your own: it overrides every other source for your household on that date."""

    base = Code(required=True)
    quote = Code(required=True)
    rate = fields.Raw(required=True, metadata={"type": "string", "example": "0.9123"})
    date = fields.Date(required=True)


class ManualRateOut(Schema):
    """A household's own rate."""

    id = fields.String()
    base = fields.String()
    quote = fields.String()
    rate = fields.String()
    date = fields.String()
    source = fields.String()
    created_by = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class ManualRateList(Schema):
    """The household's own rates, newest date first."""

    items = fields.List(fields.Nested(ManualRateOut))
    next_cursor = fields.String(allow_none=True)


def rate_out(rate: Rate) -> dict[str, Any]:
    """A rate as the API shows it: the value as a string with 10 decimal places."""
    return {"base": rate.base, "quote": rate.quote, "rate": f"{rate.value:f}", "date": rate.on.isoformat(),
            "requested_date": rate.requested_on.isoformat(), "stale": rate.stale, "source": rate.source}


def manual_out(row: FxRate) -> dict[str, Any]:
    """A manual rate as the API shows it."""
    return {"id": str(row.id), "base": row.base, "quote": row.quote, "rate": f"{row.rate:f}",
            "date": row.rate_date.isoformat(), "source": row.source,
            "created_by": str(row.created_by) if row.created_by else None,
            "updated_at": row.updated_at.isoformat() if row.updated_at else None}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _checked_date(on: dt.date) -> dt.date:
    try:
        check_rate_date(on, _today())
    except ValueError as exc:
        raise ValidationError({"date": [str(exc)]}) from None
    return on


def _two_currencies(base: str, quote: str) -> None:
    if base == quote:
        raise ValidationError({"quote": [f"base and quote are both {base}: a currency converts to itself at exactly "
                                         f"1; ask for two different currencies"]})


@blp.route("/rates")
class Rates(MethodView):
    """Exchange rates."""

    decorators = [auth_required()]

    @blp.arguments(RateQuery, location="query")
    @blp.response(200, RatesOut)
    def get(self, query: dict) -> dict:
        """The rate base -> quote on a date (default today).

        The value, the date it was published for and its source (manual, live, ECB); 404 when there is none, never a
        made-up 1. Without `quote`, every rate from `base` known without asking the live provider."""
        caller = current_caller()
        base = query["base"] or caller.base_currency
        on = _checked_date(query["date"] or _today())
        if query["quote"] is None:
            found = wiring.rates().rates_from(base, on, caller.household_id)
            return {"base": base, "requested_date": on.isoformat(), "rates": [rate_out(r) for r in found]}
        _two_currencies(base, query["quote"])
        rate = wiring.rates().rate(base, query["quote"], on, caller.household_id)
        if rate is None:
            raise NotFound(f"no {base}->{query['quote']} rate for {on.isoformat()} or the {MAX_RATE_AGE_DAYS} days "
                           f"before it (never a made-up one)", field="quote")
        return rate_out(rate)


@blp.route("/manual-rates")
class ManualRates(MethodView):
    """Your household's own rates."""

    decorators = [auth_required()]

    @blp.arguments(ManualRateIn)
    @blp.response(201, ManualRateOut)
    def post(self, data: dict) -> tuple[dict, int]:
        """Set (or replace) your rate for a date.

        It overrides every other source for your household, and the transactions it applies to are converted again
        (201 when new, 200 when it replaced one)."""
        _two_currencies(data["base"], data["quote"])
        try:
            value = parse_rate(data["rate"])
        except ValueError as exc:
            raise ValidationError({"rate": [str(exc)]}) from None
        on = _checked_date(data["date"])
        row, created = fx.submit_manual_rate(current_caller(), data["base"], data["quote"], on, value, wiring.uow(),
                                             _send_manual_rate)
        return manual_out(row), 201 if created else 200

    @blp.response(200, ManualRateList)
    def get(self) -> dict:
        """List your household's rates, newest date first."""
        uow = wiring.uow()
        with uow:
            rows = fx_rates.manual_rates(current_caller().household_id, uow.session)
        return {"items": [manual_out(r) for r in rows], "next_cursor": None}


def _send_manual_rate(command: dict) -> None:
    wiring.broker().send_command("fx", "fx_manual_rate_command", command)

"""Insights: recurring payments and subscriptions, unusual transactions, and the three-month forecast (also as a
chart)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api import charts as negotiation
from api.schemas import Blueprint, money_out
from api.security import auth_required, current_caller
from config import wiring
from domain.insights.anomalies import KINDS
from domain.insights.forecast import Band, month_end_balances
from domain.insights.payees import display_name
from domain.insights.recurring import Recurring
from domain.periods import add_months
from models.anomalies import Anomaly
from services import insights
from services.charts import forecast_chart
from services.transaction_queries import MAX_LIMIT

blp = Blueprint("insights", __name__, url_prefix="/api/v1/insights",
                description="Recurring payments, unusual transactions and the forecast")

#: Months of balance history drawn before the forecast in the chart.
CHART_HISTORY_MONTHS = 12


class InsightMoneyOut(Schema):
    """Money: the amount as a string with the currency's exponent."""

    amount = fields.String()
    currency = fields.String()


class RecurringOut(Schema):
    """A recurring payment (or income) found from a normalized payee, its cadence and its price level."""

    payee = fields.String()
    payee_key = fields.String()
    type = fields.String(metadata={"description": "expense or income"})
    cadence = fields.String(metadata={"description": "weekly, monthly or yearly"})
    category = fields.String(allow_none=True)
    amount = fields.Nested(InsightMoneyOut, metadata={"description": "the current price: the next charge's"})
    previous_amount = fields.Nested(InsightMoneyOut, allow_none=True)
    price_increase = fields.Boolean()
    charges = fields.Integer()
    first_date = fields.String()
    last_date = fields.String()
    next_date = fields.String()
    active = fields.Boolean(metadata={"description": "false once the next charge is long overdue (cancelled)"})


class RecurringList(Schema):
    """The household's recurring payments, active ones first, in the base currency."""

    items = fields.List(fields.Nested(RecurringOut))
    currency = fields.String()
    as_of = fields.String()
    unconverted_transactions = fields.Integer(metadata={"description": "left out: no rate into the base currency"})


class AnomalyQuery(Schema):
    """Which flagged transactions to list."""

    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class AnomalyOut(Schema):
    """A transaction that looked unusual, and why."""

    id = fields.String()
    transaction_id = fields.String()
    account_id = fields.String()
    kind = fields.String(metadata={"description": "outlier, new_payee_large or duplicate_charge"})
    reason = fields.String()
    payee = fields.String()
    amount = fields.Nested(InsightMoneyOut)
    occurred_on = fields.String()
    detected_at = fields.String()


class AnomalyList(Schema):
    """Flagged transactions, newest first."""

    items = fields.List(fields.Nested(AnomalyOut))
    next_cursor = fields.String(allow_none=True)


class ForecastBandOut(Schema):
    """An expected amount and its interval."""

    low = fields.String()
    expected = fields.String()
    high = fields.String()


class ForecastMonthOut(Schema):
    """One month ahead."""

    month = fields.String()
    income = fields.Nested(ForecastBandOut)
    spending = fields.Nested(ForecastBandOut)
    balance = fields.Nested(ForecastBandOut, metadata={"description": "at the end of the month"})
    recurring_spending = fields.String()
    recurring_income = fields.String()


class ForecastOut(Schema):
    """Income, spending and balance for the next three months, with intervals, in the base currency."""

    currency = fields.String()
    as_of = fields.String()
    confidence = fields.String(metadata={"description": "of each interval, e.g. 0.90"})
    starting_balance = fields.Nested(InsightMoneyOut)
    months = fields.List(fields.Nested(ForecastMonthOut))
    recurring = fields.List(fields.Nested(RecurringOut))
    history_months = fields.Integer()
    unconverted_transactions = fields.Integer()
    accounts_left_out = fields.List(fields.String(), metadata={"description": "no rate into the base currency"})
    method = fields.String()


def money(amount: Decimal, currency: str) -> dict:
    """Money as the API shows it."""
    return {"amount": money_out(amount, currency), "currency": currency}


def recurring_out(r: Recurring, currency: str, on: dt.date) -> dict:
    """A recurring payment as the API shows it."""
    return {"payee": display_name(r.payee_key), "payee_key": r.payee_key, "type": r.type, "cadence": r.cadence,
            "category": r.category, "amount": money(r.amount, currency),
            "previous_amount": money(r.previous_amount, currency) if r.previous_amount is not None else None,
            "price_increase": r.price_increased, "charges": r.charges, "first_date": r.first_date.isoformat(),
            "last_date": r.last_date.isoformat(), "next_date": r.next_date.isoformat(), "active": r.active_on(on)}


def anomaly_out(row: Anomaly) -> dict:
    """A flagged transaction as the API shows it."""
    return {"id": str(row.id), "transaction_id": str(row.transaction_id), "account_id": str(row.account_id),
            "kind": row.kind, "reason": row.reason, "payee": row.payee, "amount": money(row.amount, row.currency),
            "occurred_on": row.occurred_on.isoformat(), "detected_at": row.created_at.isoformat()}


def band_out(band: Band, currency: str) -> dict:
    """An interval as the API shows it."""
    return {"low": money_out(band.low, currency), "expected": money_out(band.expected, currency),
            "high": money_out(band.high, currency)}


#: How the forecast is computed, as the answer says it (the README has the detail and the backtest).
METHOD = ("active recurring payments at their current price on their expected dates, plus the seasonal average "
          "of all other income and spending (mean of the last 12 months + the calendar month's offset over whole "
          "years, shrunk); intervals from the spread of past residuals (90%, widening with the months ahead)")


def forecast_out(view: insights.ForecastView) -> dict:
    """The forecast as the API shows it."""
    f, c = view.forecast, view.currency
    return {"currency": c, "as_of": f.as_of.isoformat(), "confidence": str(f.confidence),
            "starting_balance": money(view.balance, c),
            "months": [{"month": m.month.strftime("%Y-%m"), "income": band_out(m.income, c),
                        "spending": band_out(m.spending, c), "balance": band_out(m.balance, c),
                        "recurring_spending": money_out(m.recurring_spending, c),
                        "recurring_income": money_out(m.recurring_income, c)} for m in f.months],
            "recurring": [recurring_out(r, c, f.as_of) for r in f.recurring], "history_months": f.history_months,
            "unconverted_transactions": view.unconverted, "accounts_left_out": [str(a) for a in view.accounts_left_out],
            "method": METHOD}


def forecast_picture(view: insights.ForecastView, fmt: str) -> bytes:
    """The forecast drawn: month-end balances of the last year, then the expected balance with its interval."""
    f = view.forecast
    history = month_end_balances(view.flows, view.balance, f.as_of, CHART_HISTORY_MONTHS)
    ahead = [(_month_end(m.month), m.balance.low, m.balance.expected, m.balance.high) for m in f.months]
    return forecast_chart("Balance forecast", view.currency, history, ahead, fmt)


def _month_end(month: dt.date) -> dt.date:
    return add_months(month, 1) - dt.timedelta(days=1)


@blp.route("/recurring")
class RecurringPayments(MethodView):
    """Recurring payments and subscriptions."""

    decorators = [auth_required()]

    @blp.response(200, RecurringList)
    def get(self) -> dict:
        """List recurring payments (cadence, next date and amount, price increases) found in the last two years."""
        caller = current_caller()
        view = insights.recurring_payments(caller, wiring.uow())
        return {"items": [recurring_out(r, view.currency, view.on) for r in view.items], "currency": view.currency,
                "as_of": view.on.isoformat(), "unconverted_transactions": view.unconverted}


@blp.route("/anomalies")
class Anomalies(MethodView):
    """Unusual transactions."""

    decorators = [auth_required()]

    @blp.arguments(AnomalyQuery, location="query")
    @blp.response(200, AnomalyList)
    def get(self, query: dict) -> dict:
        """List transactions flagged as unusual (outlier, new payee with a large amount, duplicate charge)."""
        page = insights.list_anomalies(current_caller(), query["kind"], query["cursor"], query["limit"], wiring.uow())
        return {"items": [anomaly_out(a) for a in page.items], "next_cursor": page.next_cursor}


@blp.route("/forecast")
@negotiation.image_routes(blp, "/forecast")
class Forecast(MethodView):
    """The three-month forecast."""

    decorators = [auth_required()]

    @blp.response(200, ForecastOut, content_type="application/json")
    @blp.alt_response(200, content_type="image/png", description="the forecast as a chart (also image/svg+xml)",
                      success=True)
    def get(self, fmt: str | None = None) -> object:
        """Forecast income, spending and balance for the next three months (JSON, or a PNG/SVG chart)."""
        view = insights.forecast_for(current_caller(), wiring.uow())
        if image := negotiation.requested_format(fmt):
            return negotiation.image_response(forecast_picture(view, image), image, "forecast")
        return forecast_out(view)

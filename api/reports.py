"""Monthly and yearly reports and spending trends, in the base currency; also as PNG/SVG charts."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

from flask import Response, jsonify
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate

from api import charts
from api.schemas import Blueprint, Line
from api.security import auth_required, current_caller
from config import wiring
from domain.money import exponent
from domain.periods import local_today
from services import charts as render
from services import reports, trends
from services.reports import BudgetLine, NetWorthPoint, Report, Totals

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="Reports and trends")

#: Periods before this year are typing mistakes (transactions start in 1900 too).
EARLIEST_YEAR = 1900
#: How many years ahead a report may be asked for.
YEARS_AHEAD = 10
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def _year_ok(year: int, name: str) -> None:
    latest = dt.date.today().year + YEARS_AHEAD
    if not EARLIEST_YEAR <= year <= latest:
        raise ValidationError({name: [f"must be between {EARLIEST_YEAR} and {latest}"]})


def parse_month(text: str | None, name: str = "month") -> dt.date:
    """The first day of a "2026-10" month (default: the caller's current month), or a 422 naming the field."""
    if text is None:
        return local_today(dt.datetime.now(dt.UTC), current_caller().timezone).replace(day=1)
    match = _MONTH.fullmatch(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValidationError({name: [f"{text[:20]!r} is not a month: use YYYY-MM, e.g. 2026-10"]})
    _year_ok(int(match.group(1)), name)
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


class MonthlyQuery(Schema):
    """Which month."""

    month = fields.String(load_default=None, validate=validate.Length(max=20),
                          metadata={"description": "YYYY-MM; default: the current month in your time zone"})


class YearlyQuery(Schema):
    """Which year."""

    year = fields.Integer(strict=False, load_default=None,
                          metadata={"description": "default: the current year in your time zone"})


class TrendsQuery(Schema):
    """Which window and category."""

    months = fields.Integer(load_default=12, validate=validate.Range(min=1, max=trends.MAX_MONTHS))
    to = fields.String(load_default=None, validate=validate.Length(max=20),
                       metadata={"description": "the last month, YYYY-MM; default: the current month"})
    category = Line(load_default=None, validate=validate.Length(min=1, max=100),
                    metadata={"description": "a category's name or id: it and the categories below it"})


class FiguresOut(Schema):
    """Income, expenses, net and the savings rate of a period."""

    income = fields.String()
    expenses = fields.String()
    net = fields.String()
    savings_rate = fields.String(allow_none=True, metadata={"description": "net / income in percent"})
    transactions = fields.Integer()
    unconverted = fields.Integer(metadata={"description": "transactions without a base-currency amount: left out"})


class ChangeOut(Schema):
    """The period against the one before."""

    income = fields.String()
    expenses = fields.String()
    net = fields.String()
    income_percent = fields.String(allow_none=True)
    expenses_percent = fields.String(allow_none=True)


class LineOut(Schema):
    """A category (children rolled up) or an account in the period and the one before."""

    id = fields.String(allow_none=True)
    name = fields.String()
    parent_id = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)
    income = fields.String()
    expenses = fields.String()
    net = fields.String()
    transactions = fields.Integer()
    previous_income = fields.String()
    previous_expenses = fields.String()
    expenses_change = fields.String()
    expenses_change_percent = fields.String(allow_none=True)


class BudgetLineOut(Schema):
    """A budget against the period."""

    budget_id = fields.String()
    category = fields.String()
    period = fields.String()
    limit = fields.String()
    spent = fields.String()
    remaining = fields.String()
    percent = fields.String(allow_none=True)
    currency = fields.String()
    pending_conversion = fields.Integer()


class ReportMonthOut(FiguresOut):
    """One month of a yearly report."""

    month = fields.String()


class NetWorthOut(Schema):
    """Net worth at the end of a month."""

    date = fields.String()
    amount = fields.String()
    unconverted_accounts = fields.List(fields.String())


class ReportOut(FiguresOut):
    """A monthly or yearly report in the base currency."""

    period = fields.String()
    start = fields.String(data_key="from")
    end = fields.String(data_key="to")
    currency = fields.String()
    previous = fields.Nested(FiguresOut)
    previous_period = fields.String()
    change = fields.Nested(ChangeOut)
    categories = fields.List(fields.Nested(LineOut))
    accounts = fields.List(fields.Nested(LineOut))
    budgets = fields.List(fields.Nested(BudgetLineOut))
    months = fields.List(fields.Nested(ReportMonthOut))
    net_worth = fields.List(fields.Nested(NetWorthOut))


class PointOut(Schema):
    """One month of a trend."""

    month = fields.String()
    expenses = fields.String()
    income = fields.String()
    change = fields.String(metadata={"description": "expenses minus the month before's"})
    change_percent = fields.String(allow_none=True)
    transactions = fields.Integer()
    unconverted = fields.Integer()


class SeriesOut(Schema):
    """A category's months (children rolled up)."""

    id = fields.String(allow_none=True)
    name = fields.String()
    parent_id = fields.String(allow_none=True)
    expenses = fields.String()
    income = fields.String()
    average_expenses = fields.String()
    points = fields.List(fields.Nested(PointOut))


class TrendsOut(Schema):
    """Spending per category over months."""

    currency = fields.String()
    months = fields.List(fields.String())
    total = fields.Nested(SeriesOut)
    categories = fields.List(fields.Nested(SeriesOut))


# --- formatting ------------------------------------------------------------------------------------------------
# Reports write thousands of amounts: they are formatted here directly and the JSON is built without a marshmallow
# dump (the schemas above document it). The amounts are sums of stored amounts, so quantizing is exact.


@cache
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def money_out(amount: Decimal, currency: str) -> str:
    """An amount with its currency's exponent, exactly as api.schemas.money_out writes it."""
    value = amount.quantize(_quantum(currency), rounding=ROUND_HALF_EVEN)
    return f"{value.copy_abs() if value.is_zero() else value:f}"



def _pct(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def figures_out(t: Totals, currency: str) -> dict:
    """A period's totals as the API writes them."""
    return {"income": money_out(t.income, currency), "expenses": money_out(t.expenses, currency),
            "net": money_out(t.net, currency), "savings_rate": _pct(t.savings_rate),
            "transactions": t.transactions, "unconverted": t.unconverted}


def _change(now: Totals, before: Totals, currency: str) -> dict:
    return {"income": money_out(now.income - before.income, currency),
            "expenses": money_out(now.expenses - before.expenses, currency),
            "net": money_out(now.net - before.net, currency),
            "income_percent": _pct(reports.percent_of(now.income - before.income, before.income)),
            "expenses_percent": _pct(reports.percent_of(now.expenses - before.expenses, before.expenses))}


def _line(line: reports.Line, currency: str) -> dict:
    now, before = line.current, line.previous
    return {"id": str(line.id) if line.id else None, "name": line.name,
            "parent_id": str(line.parent_id) if line.parent_id else None, "currency": line.currency,
            **{k: money_out(getattr(now, k), currency) for k in ("income", "expenses", "net")},
            "transactions": now.transactions, "previous_income": money_out(before.income, currency),
            "previous_expenses": money_out(before.expenses, currency),
            "expenses_change": money_out(now.expenses - before.expenses, currency),
            "expenses_change_percent": _pct(reports.percent_of(now.expenses - before.expenses, before.expenses))}


def _budget(b: BudgetLine) -> dict:
    return {"budget_id": str(b.budget_id), "category": b.category, "period": b.period,
            "limit": money_out(b.limit, b.currency), "spent": money_out(b.spent, b.currency),
            "remaining": money_out(b.limit - b.spent, b.currency),
            "percent": _pct(reports.percent_of(b.spent, b.limit)), "currency": b.currency,
            "pending_conversion": b.pending_conversion}


def _net_worth(p: NetWorthPoint, currency: str) -> dict:
    return {"date": p.on.isoformat(), "amount": money_out(p.amount, currency),
            "unconverted_accounts": p.unconverted_accounts}


def report_out(r: Report) -> dict:
    """A report as the API writes it."""
    c = r.currency
    return {"period": r.period, "from": r.first.isoformat(), "to": r.last.isoformat(), "currency": c,
            **figures_out(r.current, c), "previous_period": r.previous_period,
            "previous": figures_out(r.previous, c), "change": _change(r.current, r.previous, c),
            "categories": [_line(x, c) for x in r.categories], "accounts": [_line(x, c) for x in r.accounts],
            "budgets": [_budget(b) for b in r.budgets],
            "months": [{"month": m.strftime("%Y-%m"), **figures_out(t, c)} for m, t in r.months],
            "net_worth": [_net_worth(p, c) for p in r.net_worth]}


def _series(s: trends.Series, currency: str) -> dict:
    return {"id": str(s.id) if s.id else None, "name": s.name,
            "parent_id": str(s.parent_id) if s.parent_id else None,
            "expenses": money_out(s.expenses, currency), "income": money_out(s.income, currency),
            "average_expenses": money_out(s.expenses / max(len(s.points), 1), currency),
            "points": [{"month": p.month.strftime("%Y-%m"), "expenses": money_out(p.totals.expenses, currency),
                        "income": money_out(p.totals.income, currency), "change": money_out(p.change, currency),
                        "change_percent": _pct(p.change_percent), "transactions": p.totals.transactions,
                        "unconverted": p.totals.unconverted} for p in s.points]}


def trends_out(t: trends.Trends) -> dict:
    """Trends as the API writes them."""
    return {"currency": t.currency, "months": [m.strftime("%Y-%m") for m in t.months],
            "total": _series(t.total, t.currency), "categories": [_series(s, t.currency) for s in t.categories]}


# --- charts ----------------------------------------------------------------------------------------------------


def monthly_image(r: Report, fmt: str) -> bytes:
    """The monthly report as a chart: income against expenses, expenses per top-level category."""
    top = [(x.name, x.current.expenses) for x in r.categories if x.parent_id is None and x.current.expenses]
    title = f"{r.first:%B %Y}: net {money_out(r.current.net, r.currency)} {r.currency}"
    return render.monthly_chart(title, r.currency, r.current.income, r.current.expenses, top, fmt)


def trends_image(t: trends.Trends, fmt: str) -> bytes:
    """Trends as a chart: one line per top-level category (or per category below the one asked for)."""
    if t.category is None:
        shown = [s for s in t.categories if s.parent_id is None]
    else:
        shown = [s for s in t.categories if s.parent_id == t.category] or [s for s in t.categories
                                                                           if s.id == t.category]
    title = f"Spending per month, {t.months[0]:%b %Y} to {t.months[-1]:%b %Y}"
    return render.trends_chart(title, t.currency, t.months,
                               [(s.name, [p.totals.expenses for p in s.points]) for s in shown], fmt)


# --- routes ----------------------------------------------------------------------------------------------------


@blp.route("/reports/monthly")
@charts.image_routes(blp, "/reports/monthly")
class MonthlyReport(MethodView):
    """A month in the base currency."""

    decorators = [auth_required()]

    @blp.arguments(MonthlyQuery, location="query")
    @blp.response(200, ReportOut)
    def get(self, query: dict, fmt: str | None = None) -> Response:
        """A month's income, expenses, net and savings rate, per category and account.

        Against the month before and budgets; also as a chart (Accept: image/png or image/svg+xml, or the .png/.svg
        route)."""
        report = reports.monthly_report(current_caller(), parse_month(query["month"]), wiring.uow(),
                                         wiring.redis_client())
        if image := charts.requested_format(fmt):
            return charts.image_response(monthly_image(report, image), image, f"report-{report.period}")
        return charts.json_response(report_out(report))


@blp.route("/reports/yearly")
class YearlyReport(MethodView):
    """A year in the base currency."""

    decorators = [auth_required()]

    @blp.arguments(YearlyQuery, location="query")
    @blp.response(200, ReportOut)
    def get(self, query: dict) -> Response:
        """A year's totals, per category and account, month by month.

        Against the year before and budgets; net worth at each month's end."""
        caller = current_caller()
        year = query["year"] or local_today(dt.datetime.now(dt.UTC), caller.timezone).year
        _year_ok(year, "year")
        return jsonify(report_out(reports.yearly_report(caller, year, wiring.uow(), wiring.redis_client())))


@blp.route("/insights/trends")
@charts.image_routes(blp, "/insights/trends")
class Trends(MethodView):
    """Spending trends."""

    decorators = [auth_required()]

    @blp.arguments(TrendsQuery, location="query")
    @blp.response(200, TrendsOut)
    def get(self, query: dict, fmt: str | None = None) -> Response:
        """Spending per category over N months.

        Children rolled up, with the change from month to month; also as a chart."""
        result = trends.trends(current_caller(), parse_month(query["to"], "to"), query["months"],
                               query["category"], wiring.uow())
        if image := charts.requested_format(fmt):
            return charts.image_response(trends_image(result, image), image, "trends")
        return charts.json_response(trends_out(result))

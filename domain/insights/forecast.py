"""The forecast: balance and spending for the next months from recurring payments plus seasonal averages of the
rest, with an interval from the spread of past residuals; and a backtest that scores it on held-back months."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from domain.insights.history import Txn
from domain.insights.recurring import Recurring, find_recurring
from domain.periods import add_months, days_in_month, month_of, months_between

#: The interval's two-sided normal quantile: 1.645 is a 90% interval.
Z_90 = Decimal("1.645")
#: The share of the interval's confidence, as stated to clients.
CONFIDENCE = Decimal("0.90")
#: Months of history the model reads at most.
HISTORY_MONTHS = 24
#: Months in the level (the recent average).
LEVEL_MONTHS = 12
TYPES = ("expense", "income")


@dataclass(frozen=True)
class Band:
    """An expected value and its interval."""

    low: Decimal
    expected: Decimal
    high: Decimal

    def contains(self, value: Decimal) -> bool:
        """Whether `value` lies within the interval."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class MonthForecast:
    """One month ahead: income, spending and the balance at its end."""

    month: dt.date
    income: Band
    spending: Band
    balance: Band
    recurring_spending: Decimal
    recurring_income: Decimal


@dataclass(frozen=True)
class Forecast:
    """The months ahead and what they were computed from."""

    as_of: dt.date
    months: list[MonthForecast]
    recurring: list[Recurring]
    history_months: int
    confidence: Decimal = CONFIDENCE


@dataclass(frozen=True)
class Summary:
    """A history as the forecast reads it: the transactions of every payee that may be recurring (those of a payee
    charged too often to recur, `may_recur`, may be left out), the monthly totals of all, and the first day."""

    txns: list[Txn]
    #: (month, type) -> the sum of every transaction of that type in that month, recurring or not.
    totals: dict[tuple[dt.date, str], Decimal]
    first_day: dt.date | None

    @classmethod
    def of(cls, history: list[Txn]) -> Summary:
        """The summary of a whole history (every transaction kept)."""
        totals: dict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
        for txn in history:
            totals[(month_of(txn.occurred_on), txn.type)] += txn.amount
        return cls(history, dict(totals), min((t.occurred_on for t in history), default=None))


@dataclass(frozen=True)
class Seasonal:
    """A monthly series' model: the recent level, an offset per calendar month, the residuals' deviation."""

    level: Decimal
    offsets: dict[int, Decimal]
    sigma: Decimal
    months: int

    def expected(self, month: dt.date) -> Decimal:
        """The expected value of a calendar month (never below zero)."""
        return max(self.level + self.offsets.get(month.month, Decimal(0)), Decimal(0))


def fit_seasonal(series: list[Decimal], months: list[dt.date]) -> Seasonal:
    """Fit level + seasonal offsets to a monthly series (oldest first). Offsets come from the whole years of
    history, shrunk toward zero by years/(years+1) (one year of data is a weak guide); the level is the mean of
    the last 12 months. Sigma is the larger of the residuals' root mean square over their degrees of freedom and
    the one-month-ahead errors on the history's second half."""
    n = len(series)
    if n == 0:
        return Seasonal(Decimal(0), {}, Decimal(0), 0)
    model = _fit_point(series, months)
    residuals = [v - model.expected(m) for v, m in zip(series, months, strict=True)]
    years = n // 12
    fitted = 1 + (12 * years / Decimal(years + 1) if years else 0)  # each offset counts by its shrink
    sigma = (sum((r * r for r in residuals), Decimal(0)) / max(n - fitted, 1)).sqrt() if n > 1 else model.level / 2
    return Seasonal(model.level, model.offsets, max(sigma, _held_back_sigma(series, months)), n)


def _mean(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values) if values else Decimal(0)


def _held_back_sigma(series: list[Decimal], months: list[dt.date]) -> Decimal:
    """The root mean square of one-month-ahead errors over the second half of the history (each month forecast from
    the months before it only): what the model really missed by, not what it fits."""
    n = len(series)
    errors = [series[t] - _fit_point(series[:t], months[:t]).expected(months[t]) for t in range(max(n // 2, 6), n)]
    return (sum((e * e for e in errors), Decimal(0)) / len(errors)).sqrt() if errors else Decimal(0)


def _fit_point(series: list[Decimal], months: list[dt.date]) -> Seasonal:
    """The level and offsets of `fit_seasonal`, without a spread."""
    level = _mean(series[-LEVEL_MONTHS:])
    years = len(series) // 12
    if not years:
        return Seasonal(level, {}, Decimal(0), len(series))
    window, window_months = series[-12 * years:], months[-12 * years:]
    overall, by_month = _mean(window), defaultdict(list)
    for value, month in zip(window, window_months, strict=True):
        by_month[month.month].append(value)
    shrink = Decimal(years) / (years + 1)
    return Seasonal(level, {m: shrink * (_mean(v) - overall) for m, v in by_month.items()}, Decimal(0), len(series))


def monthly_rest(summary: Summary, recurring_keys: set[tuple[str, str]], months: list[dt.date], kind: str,
                 ) -> list[Decimal]:
    """Per month, the sum of `kind` transactions that belong to no recurring payment: the month's total less the
    recurring ones (all of which the summary holds)."""
    recurring: dict[dt.date, Decimal] = defaultdict(Decimal)
    for txn in summary.txns:
        if txn.type == kind and (txn.payee_key, txn.type) in recurring_keys:
            recurring[month_of(txn.occurred_on)] += txn.amount
    return [summary.totals.get((m, kind), Decimal(0)) - recurring[m] for m in months]


def _recurring_sum(items: list[Recurring], kind: str, start: dt.date, end: dt.date) -> Decimal:
    return sum((r.amount * len(r.dates_between(start, end)) for r in items if r.type == kind), Decimal(0))


def forecast(history: list[Txn], as_of: dt.date, balance: Decimal, horizon: int = 3) -> Forecast:
    """Income, spending and balance for the `horizon` calendar months after `as_of`'s month, from the balance on
    `as_of`: active recurring payments at their current price on their expected dates, plus the seasonal average
    of everything else, each month's interval widened by the spread of past residuals (summed for the balance)."""
    return forecast_from(Summary.of([t for t in history if t.occurred_on <= as_of]), as_of, balance, horizon)


def forecast_from(summary: Summary, as_of: dt.date, balance: Decimal, horizon: int = 3) -> Forecast:
    """`forecast` from a summary of the history up to `as_of` (nothing later)."""
    everything = find_recurring(summary.txns)
    active = [r for r in everything if r.active_on(as_of)]
    keys = {(r.payee_key, r.type) for r in everything}
    current, incomplete = month_of(as_of), month_of(as_of + dt.timedelta(days=1))
    first = max(add_months(incomplete, -HISTORY_MONTHS), _first_full_month(summary.first_day, incomplete))
    past = months_between(first, add_months(incomplete, -1)) if first < incomplete else []
    models = {kind: fit_seasonal(monthly_rest(summary, keys, past, kind), past) for kind in TYPES}
    month_end = current.replace(day=days_in_month(current.year, current.month))
    left = Decimal((month_end - as_of).days) / days_in_month(current.year, current.month)
    opening = balance + _flows(active, models, as_of + dt.timedelta(days=1), month_end, current, left)
    variance, months = (models["expense"].sigma ** 2 + models["income"].sigma ** 2), []
    for k in range(1, horizon + 1):
        start = add_months(current, k)
        end = start.replace(day=days_in_month(start.year, start.month))
        spending = _band(_recurring_sum(active, "expense", start, end), models["expense"], start)
        income = _band(_recurring_sum(active, "income", start, end), models["income"], start)
        opening += income.expected - spending.expected
        spread = Z_90 * (variance * k).sqrt()
        months.append(MonthForecast(start, income, spending, Band(opening - spread, opening, opening + spread),
                                    _recurring_sum(active, "expense", start, end),
                                    _recurring_sum(active, "income", start, end)))
    return Forecast(as_of, months, active, len(past))


def _first_full_month(first_day: dt.date | None, current: dt.date) -> dt.date:
    """The first month the history covers (nearly) whole: a history starting late in a month skips that month."""
    start = first_day or current
    return month_of(start) if start.day <= 7 else add_months(month_of(start), 1)


def _flows(active: list[Recurring], models: dict[str, Seasonal], start: dt.date, end: dt.date, month: dt.date,
           share: Decimal) -> Decimal:
    """Expected net flow from `start` to `end` within `month` (a `share` of the month's non-recurring rest)."""
    income = _recurring_sum(active, "income", start, end) + share * models["income"].expected(month)
    return income - _recurring_sum(active, "expense", start, end) - share * models["expense"].expected(month)


def _band(recurring: Decimal, model: Seasonal, month: dt.date) -> Band:
    expected = model.expected(month)
    spread = Z_90 * model.sigma * (1 + Decimal(1) / max(model.months, 1)).sqrt()
    return Band(recurring + max(expected - spread, Decimal(0)), recurring + expected, recurring + expected + spread)


def monthly_flows(history: list[Txn]) -> dict[dt.date, Decimal]:
    """Month -> income less spending in it."""
    flows: dict[dt.date, Decimal] = defaultdict(Decimal)
    for t in history:
        flows[month_of(t.occurred_on)] += t.amount if t.type == "income" else -t.amount
    return dict(flows)


def month_end_balances(flows: dict[dt.date, Decimal], balance: Decimal, on: dt.date, months: int,
                       ) -> list[tuple[dt.date, Decimal]]:
    """Today's balance and the balance at the end of each of the last `months` months, oldest first: walked back
    from today's by the net flows (`monthly_flows`) of the months after each."""
    points, month = [(on, balance)], month_of(on)
    for _ in range(months):
        balance -= flows.get(month, Decimal(0))  # undo this month: the balance at the end of the one before
        points.append((month - dt.timedelta(days=1), balance))
        month = add_months(month, -1)
    return sorted(points)


@dataclass(frozen=True)
class Backtest:
    """How the forecast fared on held-back months: the share of actual spending inside the interval and the
    errors of the expected value."""

    origins: int
    points: int
    covered: int
    mean_abs_error: Decimal
    mean_abs_pct_error: Decimal | None

    @property
    def coverage(self) -> Decimal:
        """The share of held-back months whose actual spending fell inside the interval."""
        return Decimal(self.covered) / self.points if self.points else Decimal(0)


def backtest(history: list[Txn], holdout: int = 6, horizon: int = 3) -> Backtest:
    """Hold back the last `holdout` complete months: from each of them as an origin, forecast from the history
    before it only and score every forecast month whose actual spending is known."""
    if not history:
        return Backtest(0, 0, 0, Decimal(0), None)
    last_complete = add_months(month_of(max(t.occurred_on for t in history)), -1)
    actual: dict[dt.date, Decimal] = defaultdict(Decimal)
    for txn in history:
        if txn.type == "expense":
            actual[month_of(txn.occurred_on)] += txn.amount
    errors, pct, covered, origins = [], [], 0, 0
    for back in range(holdout, 0, -1):
        origin = add_months(last_complete, 1 - back)
        before = [t for t in history if t.occurred_on < origin]
        if not before:
            continue
        origins += 1
        for month in forecast(before, origin - dt.timedelta(days=1), Decimal(0), horizon).months:
            if month.month > last_complete:
                break
            truth = actual[month.month]
            errors.append(abs(truth - month.spending.expected))
            if truth:
                pct.append(abs(truth - month.spending.expected) / truth)
            covered += month.spending.contains(truth)
    return Backtest(origins, len(errors), covered, _mean(errors), _mean(pct) * 100 if pct else None)

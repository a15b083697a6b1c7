"""Charts of the monthly report, trends and forecast as PNG or SVG, clear enough to paste in an email.

matplotlib is imported lazily (on the first chart) with the Agg backend, so the web process starts fast and
never needs a display. Amounts arrive as Decimal and become floats only here, for drawing: a chart is a picture,
the numbers people act on are the JSON.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

#: The formats a chart can be rendered in.
FORMATS = ("png", "svg")
#: Media types of those formats.
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
#: Size in inches and resolution: 1000 x 560 pixels, readable inline in an email.
_SIZE = (10, 5.6)
_DPI = 100
#: A colour-blind friendly palette (Okabe-Ito).
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_INCOME, _EXPENSE, _NET = "#009E73", "#D55E00", "#0072B2"
#: Categories drawn one by one in a trends chart; the rest are summed as "Other".
_MAX_SERIES = 7
#: pyplot's figure machinery is not thread-safe; the web process serves requests on threads.
_LOCK = threading.Lock()


def _pyplot() -> Any:
    """pyplot with the Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams["svg.hashsalt"] = "finance-charts"  # stable element ids: the same chart, the same bytes
    import matplotlib.pyplot as plt

    return plt


def _figure(title: str) -> tuple[Any, Any]:
    """A new figure with one axis, titled, in the house style."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=_SIZE, dpi=_DPI)
    fig.patch.set_facecolor("white")
    ax.set_title(title, fontsize=15, fontweight="bold", loc="left", pad=14)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _render(fig: Any, fmt: str) -> bytes:
    """The figure as PNG or SVG bytes; the figure is closed."""
    plt = _pyplot()
    try:
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format=fmt, dpi=_DPI, facecolor="white", metadata=_metadata(fmt))
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _metadata(fmt: str) -> dict[str, Any]:
    """Stable metadata, so the same chart renders to the same bytes (no timestamps)."""
    return {"Date": None} if fmt == "svg" else {"Software": None}


def _check_format(fmt: str) -> None:
    """Refuse a format we cannot render."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}: use one of {', '.join(FORMATS)}")


def _money_axis(ax: Any, currency: str) -> None:
    """Label the value axis with the currency and thousands separators."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda value, _pos: f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"))  # float ok: axis
    ax.set_ylabel(currency, fontsize=11)


def _date_axis(ax: Any) -> None:
    """Dates on the x axis, labelled concisely (months, with the year where it changes)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _floats(values: Sequence[Decimal]) -> list[float]:
    """Decimals as floats, for drawing only."""
    return [float(value) for value in values]  # float ok: pixels, never money


def forecast_chart(title: str, currency: str, history: list[tuple[dt.date, Decimal]],
                   forecast: list[tuple[dt.date, Decimal, Decimal, Decimal]], fmt: str = "png") -> bytes:
    """A line of past values and the forecast after it with its interval shaded; tuples are (date, low,
    expected, high)."""
    _check_format(fmt)
    with _LOCK:
        fig, ax = _figure(title)
        if history:
            ax.plot([d for d, _ in history], _floats([v for _, v in history]), color=_NET, linewidth=2.2,
                    label="actual")
        if forecast:
            dates = [row[0] for row in forecast]
            low, expected, high = (_floats([row[i] for row in forecast]) for i in (1, 2, 3))
            if history:  # join the forecast to the last actual point so the line does not jump
                dates = [history[-1][0], *dates]
                last = float(history[-1][1])  # float ok: a point to draw
                low, expected, high = [last, *low], [last, *expected], [last, *high]
            ax.fill_between(dates, low, high, color=_PALETTE[1], alpha=0.25, linewidth=0, label="interval")
            ax.plot(dates, expected, color=_PALETTE[1], linewidth=2.2, linestyle="--", label="forecast")
        _money_axis(ax, currency)
        if history or forecast:
            _date_axis(ax)
            ax.legend(frameon=False, loc="upper left")
        else:
            _empty(ax)
        return _render(fig, fmt)


def monthly_chart(title: str, currency: str, income: Decimal, expenses: Decimal,
                  categories: list[tuple[str, Decimal]], fmt: str = "png") -> bytes:
    """The month at a glance: income against expenses, and expenses per category as horizontal bars."""
    _check_format(fmt)
    with _LOCK:
        plt = _pyplot()
        fig, (left, right) = plt.subplots(1, 2, figsize=_SIZE, dpi=_DPI, gridspec_kw={"width_ratios": [1, 2.2]})
        fig.patch.set_facecolor("white")
        fig.suptitle(title, fontsize=15, fontweight="bold", x=0.02, ha="left")
        _income_bars(left, currency, income, expenses)
        _category_bars(right, currency, categories)
        return _render(fig, fmt)


def _income_bars(ax: Any, currency: str, income: Decimal, expenses: Decimal) -> None:
    """Two bars: income and expenses, with their values written on them."""
    values = _floats([income, expenses])
    bars = ax.bar(["Income", "Expenses"], values, color=[_INCOME, _EXPENSE], width=0.6)
    for bar, amount in zip(bars, (income, expenses), strict=True):
        ax.annotate(f"{amount:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=10, xytext=(0, 3), textcoords="offset points")
    ax.set_ylim(0, max(values) * 1.15 or 1)  # room for the labels; a month without money still has an axis
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    _money_axis(ax, currency)


def _category_bars(ax: Any, currency: str, categories: list[tuple[str, Decimal]]) -> None:
    """Expenses per category, largest on top, each bar labelled with its amount."""
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("Expenses by category", fontsize=12, loc="left")
    rows = sorted(categories, key=lambda row: row[1])[-12:]
    if not rows:
        _empty(ax)
        return
    bars = ax.barh([name for name, _ in rows], _floats([amount for _, amount in rows]), color=_EXPENSE)
    for bar, (_, amount) in zip(bars, rows, strict=True):
        ax.annotate(f" {amount:,}", (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center",
                    fontsize=9)
    ax.set_xlabel(currency, fontsize=11)
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.margins(x=0.18)


def trends_chart(title: str, currency: str, months: list[dt.date],
                 series: list[tuple[str, list[Decimal]]], fmt: str = "png") -> bytes:
    """Spending per category over months, one line each (the largest categories; the rest summed as Other)."""
    _check_format(fmt)
    with _LOCK:
        fig, ax = _figure(title)
        ranked = sorted(series, key=lambda item: sum(item[1], Decimal(0)), reverse=True)
        shown, rest = ranked[:_MAX_SERIES], ranked[_MAX_SERIES:]
        if rest:
            shown.append(("Other", [sum(values, Decimal(0)) for values in zip(*(v for _, v in rest), strict=True)]))
        for index, (name, values) in enumerate(shown):
            ax.plot(months, _floats(values), marker="o", markersize=4, linewidth=2,
                    color=_PALETTE[index % len(_PALETTE)], label=name)
        _money_axis(ax, currency)
        if shown and months:
            _date_axis(ax)
            ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
        else:
            _empty(ax)
        return _render(fig, fmt)


def _empty(ax: Any) -> None:
    """Say plainly that there is nothing to show, instead of a blank frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, "No data for this period", ha="center", va="center", fontsize=13, color="#666666",
            transform=ax.transAxes)

"""Charts render as real pictures: PNGs decode at the stated size and are not blank, SVGs parse, empty data
says so instead of drawing an empty frame, and the same chart renders to the same bytes."""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from PIL import Image

from services import charts

HISTORY = [(dt.date(2026, m, 1), Decimal(1000 + 37 * m)) for m in range(1, 11)]
FORECAST = [(dt.date(2026, 11, 1), Decimal("1300"), Decimal("1400.50"), Decimal("1500")),
            (dt.date(2026, 12, 1), Decimal("1250"), Decimal("1420"), Decimal("1600")),
            (dt.date(2027, 1, 1), Decimal("1200"), Decimal("1450"), Decimal("1700"))]
MONTHS = [dt.date(2025, m, 1) for m in range(1, 13)]
SERIES = [(f"Category {i}", [Decimal(10 * i + m) for m in range(12)]) for i in range(10)]


def decoded(png: bytes) -> Image.Image:
    """The PNG decoded, checked for its format and size."""
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert image.size == (1000, 560)
    return image.convert("RGB")


def colour_count(image: Image.Image) -> int:
    """How many distinct colours the picture has."""
    return len(image.getcolors(maxcolors=1_000_000) or [])


def ink(image: Image.Image) -> float:
    """The share of pixels that are not white."""
    white = dict((c, n) for n, c in image.getcolors(maxcolors=1_000_000)).get((255, 255, 255), 0)
    return 1 - white / (image.size[0] * image.size[1])


def test_forecast_chart_is_a_real_picture() -> None:
    image = decoded(charts.forecast_chart("Balance", "EUR", HISTORY, FORECAST))
    assert colour_count(image) > 100
    assert ink(image) > 0.03
    # The shaded interval is drawn in the palette's orange at 25% on white.
    assert any(r > 240 and 200 < g < 240 and b < 200 for _, (r, g, b) in image.getcolors(maxcolors=1_000_000))


def test_monthly_and_trends_charts_are_real_pictures() -> None:
    monthly = decoded(charts.monthly_chart("October 2026", "EUR", Decimal("3200.00"), Decimal("2150.55"),
                                           [("Groceries", Decimal("420.10")), ("Rent", Decimal("1200.00"))]))
    trends = decoded(charts.trends_chart("Trends", "EUR", MONTHS, SERIES))
    for image in (monthly, trends):
        assert colour_count(image) > 100 and ink(image) > 0.03


def test_svg_parses_and_names_what_it_shows() -> None:
    svg = charts.monthly_chart("October 2026", "EUR", Decimal("10.00"), Decimal("5.00"),
                               [("Groceries", Decimal("5.00"))], fmt="svg")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert b"Groceries" in svg and b"October 2026" in svg


def test_the_same_chart_renders_to_the_same_bytes() -> None:
    assert charts.forecast_chart("B", "EUR", HISTORY, FORECAST) == charts.forecast_chart("B", "EUR", HISTORY, FORECAST)
    assert charts.trends_chart("T", "EUR", MONTHS, SERIES, "svg") == charts.trends_chart("T", "EUR", MONTHS, SERIES,
                                                                                         "svg")


def test_empty_data_says_so() -> None:
    for png in (charts.forecast_chart("F", "EUR", [], []), charts.trends_chart("T", "EUR", MONTHS, []),
                charts.monthly_chart("M", "EUR", Decimal(0), Decimal(0), [])):
        image = decoded(png)
        assert ink(image) > 0.002  # the title and the "No data" line
    assert b"No data for this period" in charts.trends_chart("T", "EUR", [], [], "svg")


def test_more_categories_than_colours_are_summed_as_other() -> None:
    svg = charts.trends_chart("T", "EUR", MONTHS, SERIES, "svg")
    assert b"Other" in svg and b"Category 9" in svg and b"Category 0" not in svg


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown chart format"):
        charts.forecast_chart("F", "EUR", HISTORY, FORECAST, fmt="gif")

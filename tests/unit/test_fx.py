"""Behaviour of FX math and of ECB rates read from the file shipped with currency_converter."""

from __future__ import annotations

import datetime as dt
import threading
import zipfile
from decimal import Decimal

import pytest

from domain.fx import RATE_PLACES, Rate, convert, cross_rate
from services.fx_rates import EcbRates, default_rates, shipped_history_file

# Reference values read from eurofxref-hist.csv inside currency_converter's eurofxref-hist.zip:
#   2020-01-02: USD 1.1193, JPY 121.75   2020-01-03 (Friday): USD 1.1147, JPY 120.54
#   CYP was last quoted 2007-12-31 (0.585274); ISK has no quotes from 2008-12 to 2018-08.
JAN_2 = dt.date(2020, 1, 2)
FRIDAY = dt.date(2020, 1, 3)
SATURDAY = dt.date(2020, 1, 4)
SUNDAY = dt.date(2020, 1, 5)


@pytest.fixture(scope="module")
def ecb() -> EcbRates:
    """One parsed copy of the shipped history for the whole module."""
    return EcbRates()


# --- cross_rate / convert ---------------------------------------------------------------------


def test_cross_rate_divides_the_quote_by_the_base_and_keeps_ten_places():
    # 121.75 / 1.1193 = 108.77334048065|755... -> 108.7733404807 (by long division)
    assert str(cross_rate(Decimal("1.1193"), Decimal("121.75"))) == "108.7733404807"
    assert RATE_PLACES == 10


def test_cross_rate_against_the_euro_itself():
    assert str(cross_rate(Decimal("1"), Decimal("1.1193"))) == "1.1193000000"
    assert str(cross_rate(Decimal("1.1193"), Decimal("1"))) == "0.8934155276"


def test_cross_rate_rounds_half_to_even():
    assert str(cross_rate(Decimal("2"), Decimal("0.2469135781"))) == "0.1234567890"
    assert str(cross_rate(Decimal("2"), Decimal("0.2469135783"))) == "0.1234567892"


def test_cross_rate_is_not_fooled_by_double_rounding():
    # Exactly 0.12345678905 + 1e-38: just above the tie, so it must round up.
    assert str(cross_rate(Decimal("1"), Decimal("0.12345678905000000000000000000000000001"))) == (
        "0.1234567891"
    )


@pytest.mark.parametrize("bad", [Decimal("0"), Decimal("-1"), Decimal("NaN"), Decimal("Infinity"), 1.5])
def test_cross_rate_refuses_non_positive_or_non_decimal_quotes(bad):
    with pytest.raises(ValueError):
        cross_rate(bad, Decimal("1"))
    with pytest.raises(ValueError):
        cross_rate(Decimal("1"), bad)


def test_cross_rate_refuses_a_rate_that_rounds_to_zero():
    with pytest.raises(ValueError, match="rounds to zero"):
        cross_rate(Decimal("1000000"), Decimal("0.00001"))


def test_convert_multiplies_exactly_then_rounds_to_the_target_currency():
    assert convert(Decimal("100.00"), Decimal("108.7733404807"), "JPY") == Decimal("10877")
    assert str(convert(Decimal("10.00"), Decimal("0.8934155276"), "EUR")) == "8.93"
    assert str(convert(Decimal("1.000"), Decimal("0.3769"), "BHD")) == "0.377"


def test_convert_rounds_half_to_even():
    assert str(convert(Decimal("0.25"), Decimal("0.5"), "EUR")) == "0.12"
    assert str(convert(Decimal("0.35"), Decimal("0.5"), "EUR")) == "0.18"
    assert str(convert(Decimal("5"), Decimal("0.5"), "JPY")) == "2"
    assert str(convert(Decimal("7"), Decimal("0.5"), "JPY")) == "4"


def test_convert_keeps_every_digit_of_large_amounts():
    amount = Decimal("999999999999.99")
    assert str(convert(amount, Decimal("1.0000000001"), "EUR")) == "1000000000099.99"


def test_convert_handles_negative_amounts():
    assert str(convert(Decimal("-10.00"), Decimal("1.1193"), "USD")) == "-11.19"


def test_convert_refuses_binary_fractions_and_bad_rates():
    with pytest.raises(ValueError):
        convert(10.0, Decimal("1"), "EUR")
    with pytest.raises(ValueError):
        convert(Decimal("10"), Decimal("0"), "EUR")


# --- Rate -------------------------------------------------------------------------------------


def test_rate_is_stale_when_published_before_the_requested_date():
    fresh = Rate("USD", "JPY", Decimal("108.7733404807"), JAN_2, "ECB", JAN_2)
    old = Rate("USD", "JPY", Decimal("108.7733404807"), FRIDAY, "ECB", SUNDAY)
    assert not fresh.stale
    assert old.stale


def test_rate_serializes_value_and_dates_as_strings():
    rate = Rate("EUR", "USD", Decimal("1E-10"), FRIDAY, "ECB", SATURDAY)
    assert rate.to_json() == {
        "base": "EUR",
        "quote": "USD",
        "value": "0.0000000001",
        "on": "2020-01-03",
        "source": "ECB",
        "requested_on": "2020-01-04",
        "stale": True,
    }


def test_rate_refuses_a_non_positive_value():
    with pytest.raises(ValueError):
        Rate("EUR", "USD", Decimal("0"), FRIDAY, "ECB", FRIDAY)


# --- EcbRates on the shipped file -------------------------------------------------------------


def test_the_shipped_history_file_is_the_ecb_zip():
    source = shipped_history_file()
    assert source.name == "eurofxref-hist.zip"
    with source.open("rb") as raw, zipfile.ZipFile(raw) as archive:
        assert archive.namelist() == ["eurofxref-hist.csv"]


def test_ecb_history_starts_with_the_euro(ecb):
    assert ecb.first_date() == dt.date(1999, 1, 4)
    assert ecb.last_date() >= dt.date(2024, 1, 1)


def test_ecb_currencies_include_the_euro_and_historic_codes(ecb):
    codes = ecb.currencies()
    assert {"EUR", "USD", "JPY", "GBP", "CHF", "CYP"} <= codes
    assert "N/A" not in codes
    assert "" not in codes


def test_ecb_euro_rates_are_the_published_decimals(ecb):
    usd = ecb.rate("EUR", "USD", JAN_2)
    jpy = ecb.rate("EUR", "JPY", JAN_2)
    assert usd.value == Decimal("1.1193")
    assert str(usd.value) == "1.1193000000"
    assert str(jpy.value) == "121.7500000000"
    assert (usd.source, usd.on, usd.requested_on, usd.stale) == ("ECB", JAN_2, JAN_2, False)


def test_ecb_cross_rate_matches_the_hand_computed_value(ecb):
    rate = ecb.rate("USD", "JPY", JAN_2)
    assert rate == Rate("USD", "JPY", Decimal("108.7733404807"), JAN_2, "ECB", JAN_2)
    assert str(ecb.rate("USD", "EUR", JAN_2).value) == "0.8934155276"


def test_ecb_weekend_falls_back_to_the_previous_friday(ecb):
    rate = ecb.rate("EUR", "USD", SATURDAY)
    assert rate.value == Decimal("1.1147")
    assert rate.on == FRIDAY
    assert rate.requested_on == SATURDAY
    assert rate.stale
    assert ecb.rate("USD", "JPY", SUNDAY).value == cross_rate(Decimal("1.1147"), Decimal("120.54"))


def test_ecb_fallback_is_limited_by_max_age(ecb):
    assert ecb.rate("EUR", "USD", SUNDAY, max_age_days=1) is None
    assert ecb.rate("EUR", "USD", SUNDAY, max_age_days=2).on == FRIDAY
    after_the_file = ecb.last_date() + dt.timedelta(days=30)
    assert ecb.rate("EUR", "USD", after_the_file) is None


def test_ecb_refuses_a_negative_max_age(ecb):
    with pytest.raises(ValueError):
        ecb.rate("EUR", "USD", JAN_2, max_age_days=-1)


def test_ecb_has_nothing_before_1999_01_04(ecb):
    assert ecb.rate("EUR", "USD", dt.date(1999, 1, 1)) is None
    assert ecb.rate("EUR", "USD", dt.date(1998, 12, 31), max_age_days=30) is None


@pytest.mark.parametrize(("base", "quote"), [("ZZZ", "EUR"), ("EUR", "ZZZ"), ("usd", "JPY"), ("XAU", "USD")])
def test_ecb_unknown_codes_give_none(ecb, base, quote):
    assert ecb.rate(base, quote, JAN_2) is None


def test_ecb_currency_no_longer_quoted_gives_none(ecb):
    assert ecb.rate("EUR", "CYP", dt.date(2007, 12, 31)).value == Decimal("0.585274")
    assert ecb.rate("EUR", "CYP", dt.date(2010, 1, 4)) is None
    assert ecb.rate("EUR", "ISK", dt.date(2012, 6, 1)) is None


def test_ecb_same_currency_is_the_identity(ecb):
    rate = ecb.rate("JPY", "JPY", dt.date(1990, 1, 1))
    assert rate == Rate("JPY", "JPY", Decimal("1"), dt.date(1990, 1, 1), "identity", dt.date(1990, 1, 1))
    assert not rate.stale


def test_ecb_same_unknown_code_is_not_made_up(ecb):
    assert ecb.rate("ZZZ", "ZZZ", JAN_2) is None


def test_ecb_loads_once_under_concurrent_first_use():
    rates = EcbRates()
    results: list[frozenset[str]] = []
    threads = [threading.Thread(target=lambda: results.append(rates.currencies())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_default_rates_is_a_shared_singleton():
    assert default_rates() is default_rates()


# --- EcbRates on a small file -----------------------------------------------------------------

SMALL_CSV = "Date,USD,GBP,\n2024-03-05,1.0850,N/A,\n2024-03-04,1.0860,,\n2024-03-01,1.0800,0.8550,\n"


def test_missing_cells_are_skipped_and_the_latest_complete_day_is_used(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text(SMALL_CSV, encoding="utf-8")
    rates = EcbRates(path)
    rate = rates.rate("USD", "GBP", dt.date(2024, 3, 5))
    expected = Rate("USD", "GBP", Decimal("0.7916666667"), dt.date(2024, 3, 1), "ECB", dt.date(2024, 3, 5))
    assert rate == expected
    assert rates.rate("EUR", "USD", dt.date(2024, 3, 5)).on == dt.date(2024, 3, 5)
    assert rates.currencies() == frozenset({"EUR", "USD", "GBP"})
    assert (rates.first_date(), rates.last_date()) == (dt.date(2024, 3, 1), dt.date(2024, 3, 5))


def test_a_zipped_csv_is_read_too(tmp_path):
    path = tmp_path / "rates.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rates.csv", SMALL_CSV)
    assert EcbRates(path).rate("EUR", "GBP", dt.date(2024, 3, 1)).value == Decimal("0.855")

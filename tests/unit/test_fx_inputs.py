"""Behaviour of the live provider's protocol, rate input, rate dates, the breaker's shared state, and conversions on
historical ECB rates (JPY and BHD rounding)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from domain.fx import (
    EARLIEST_RATE_DATE,
    RATE_PLACES,
    check_rate_date,
    compose,
    convert,
    inverse,
    parse_rate,
    quantize_rate,
)
from services.fx_breaker import BreakerState
from services.fx_provider import BACKOFF_CAP_SECONDS, ProviderError, backoff, parse_answer
from services.fx_rates import EcbRates

JAN_2 = dt.date(2020, 1, 2)
TODAY = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def ecb() -> EcbRates:
    """The shipped ECB history, parsed once."""
    return EcbRates()


# --- the Frankfurter answer ----------------------------------------------------------------------------------------


def test_a_frankfurter_answer_is_read_into_exact_decimals():
    body = b'{"amount":1.0,"base":"USD","date":"2026-01-15","rates":{"EUR":0.91234567891}}'
    quote = parse_answer(body, "USD", "EUR", dt.date(2026, 1, 15))
    assert (quote.base, quote.quote, quote.on) == ("USD", "EUR", dt.date(2026, 1, 15))
    assert str(quote.rate) == "0.9123456789"  # 11 places rounded half-even to 10, never through a float


def test_a_rate_for_an_amount_other_than_one_is_divided_exactly():
    body = b'{"amount":100,"base":"JPY","date":"2026-01-15","rates":{"EUR":0.61}}'
    assert str(parse_answer(body, "JPY", "EUR", dt.date(2026, 1, 15)).rate) == "0.0061000000"


def test_an_earlier_publication_date_is_kept_as_the_providers():
    body = b'{"amount":1.0,"base":"USD","date":"2026-01-16","rates":{"EUR":0.9}}'
    assert parse_answer(body, "USD", "EUR", dt.date(2026, 1, 18)).on == dt.date(2026, 1, 16)


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"amount":1.0,"base":"GBP","date":"2026-01-15","rates":{"EUR":0.9}}',
    b'{"amount":1.0,"base":"USD","date":"2026-01-16","rates":{"EUR":0.9}}',
    b'{"amount":1.0,"base":"USD","date":"yesterday","rates":{"EUR":0.9}}',
    b'{"amount":1.0,"base":"USD","date":"2026-01-15","rates":{"GBP":0.9}}',
    b'{"amount":1.0,"base":"USD","date":"2026-01-15","rates":{"EUR":"0.9"}}',
    b'{"amount":1.0,"base":"USD","date":"2026-01-15","rates":{"EUR":0}}',
    b'{"amount":1.0,"base":"USD","date":"2026-01-15","rates":{"EUR":-1.2}}',
    b'{"amount":1.0,"base":"USD","date":"2026-01-15","rates":{"EUR":NaN}}',
    b'{"amount":0,"base":"USD","date":"2026-01-15","rates":{"EUR":0.9}}',
    b'{"amount":1.0,"base":"USD","date":"2026-01-15","rates":{"EUR":0.000000000001}}',
    b'[]',
], ids=["not json", "other base", "later date", "bad date", "other quote", "rate as text", "zero", "negative",
        "NaN", "zero amount", "rounds to zero", "a list"])
def test_an_answer_we_cannot_trust_is_a_provider_failure(body):
    with pytest.raises(ProviderError):
        parse_answer(body, "USD", "EUR", dt.date(2026, 1, 15))


def test_retry_backoff_doubles_and_is_capped():
    assert [backoff(n) for n in (1, 2, 3, 10)] == [0.1, 0.2, 0.4, BACKOFF_CAP_SECONDS]


# --- rates typed by people, and the dates rates exist for ---------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("0.9123", "0.9123000000"), ("150", "150.0000000000"),
                                                ("0.0000000001", "0.0000000001"), (" 1.5 ", "1.5000000000")])
def test_a_manual_rate_is_an_exact_decimal_with_ten_places(text, expected):
    assert f"{parse_rate(text):f}" == expected


@pytest.mark.parametrize(("value", "reason"), [
    (0.9, "decimal string"), (1, "decimal string"), (None, "decimal string"), ("", "plain decimal"),
    ("abc", "plain decimal"), ("-1.2", "plain decimal"), ("+1.2", "plain decimal"), ("1e3", "plain decimal"),
    ("NaN", "plain decimal"), ("1,5", "plain decimal"), ("0", "greater than zero"), ("0.0000", "greater than zero"),
    ("0.00000000001", "at most 10 decimal places"), ("100000000000000", "below"), ("9" * 50, "plain decimal"),
])
def test_a_bad_manual_rate_is_refused_with_the_reason(value, reason):
    with pytest.raises(ValueError, match=reason):
        parse_rate(value)


def test_rates_exist_from_the_euros_first_day_up_to_today():
    check_rate_date(EARLIEST_RATE_DATE, TODAY)
    check_rate_date(TODAY, TODAY)
    with pytest.raises(ValueError, match="from 1999-01-04"):
        check_rate_date(dt.date(1998, 12, 31), TODAY)
    with pytest.raises(ValueError, match="in the future"):
        check_rate_date(TODAY + dt.timedelta(days=1), TODAY)


def test_an_inverse_and_a_composition_stay_exact():
    assert str(inverse(Decimal("1.1193"))) == "0.8934155276"
    assert compose(Decimal("1.1193000000"), Decimal("108.7733404807")) == Decimal("121.75000000004751")
    assert str(quantize_rate(Decimal("0.12345678905"))) == "0.1234567890"
    assert RATE_PLACES == 10


# --- the breaker's shared state --------------------------------------------------------------------------------------


def test_an_open_breaker_allows_a_trial_once_its_reset_time_has_passed():
    opened = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    state = BreakerState("open", 5, opened, 30)
    assert state.retry_at == opened + dt.timedelta(seconds=30)
    assert not state.trial_due(opened + dt.timedelta(seconds=29))
    assert state.trial_due(opened + dt.timedelta(seconds=30))
    assert BreakerState("half-open", 0, opened, 30).trial_due(opened)
    assert not BreakerState("closed", 2, None, 30).trial_due(opened)
    assert state.to_json() == {"state": "open", "failures": 5, "opened_at": "2026-01-01T12:00:00+00:00"}


# --- conversions on historical ECB rates ----------------------------------------------------------------------------


def test_usd_to_jpy_on_a_historical_date_rounds_to_whole_yen(ecb):
    # 2020-01-02: 1 EUR = 1.1193 USD = 121.75 JPY, so 1 USD = 108.7733404807 JPY.
    rate = ecb.rate("USD", "JPY", JAN_2)
    assert str(rate.value) == "108.7733404807"
    assert str(convert(Decimal("12.34"), rate.value, "JPY")) == "1342"  # 1342.2630215318...
    assert str(convert(Decimal("0.46"), rate.value, "JPY")) == "50"  # 50.0357... (half-even never needed)


def test_jpy_to_eur_on_a_historical_date_keeps_cents(ecb):
    rate = ecb.rate("JPY", "EUR", JAN_2)
    assert str(rate.value) == "0.0082135524"  # 1 / 121.75
    assert str(convert(Decimal("1200"), rate.value, "EUR")) == "9.86"  # 9.85626288


def test_bhd_conversions_round_half_even_to_three_places():
    # The ECB does not quote BHD: a household's own rate (or the live provider's) converts it.
    rate = parse_rate("0.4123")
    assert str(convert(Decimal("12.34"), rate, "BHD")) == "5.088"  # 5.087782
    assert str(convert(Decimal("0.25"), parse_rate("0.005"), "BHD")) == "0.001"  # 0.00125 -> 0.001
    assert str(convert(Decimal("0.35"), parse_rate("0.005"), "BHD")) == "0.002"  # 0.00175 -> 0.002
    assert str(convert(Decimal("1.234"), inverse(rate), "EUR")) == "2.99"  # BHD -> EUR: 2.99296...


def test_the_ecb_has_no_rate_for_currencies_it_never_quoted(ecb):
    assert ecb.rate("ARS", "EUR", JAN_2) is None
    assert ecb.rate("EUR", "BHD", JAN_2) is None

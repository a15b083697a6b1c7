"""Behaviour of money parsing, rounding, formatting and the Money value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.currencies import EXPONENTS
from domain.money import (
    MAX_AMOUNT,
    InvalidMoney,
    Money,
    exponent,
    format_amount,
    from_minor_units,
    is_known_currency,
    parse_amount,
    quantize,
    to_minor_units,
)

# --- currencies -------------------------------------------------------------------------------


def test_exponents_cover_the_active_iso_codes_with_their_minor_units():
    assert 155 <= len(EXPONENTS) <= 180
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in EXPONENTS)
    expected = {"EUR": 2, "USD": 2, "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "BHD": 3, "KWD": 3}
    expected |= {"JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3, "CLF": 4, "UYW": 4}
    assert {code: EXPONENTS[code] for code in expected} == expected


@pytest.mark.parametrize(
    "code", ["XAU", "XAG", "XPT", "XPD", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA"]
)
def test_metals_funds_and_test_codes_are_not_holdable_currencies(code):
    assert code not in EXPONENTS
    assert not is_known_currency(code)


@pytest.mark.parametrize("code", ["usd", "Eur", "US$", "EURO", "", " EUR", "ZZZ", None, 978])
def test_only_exact_uppercase_iso_codes_are_known(code):
    assert not is_known_currency(code)


def test_exponent_of_unknown_currency_is_invalid_money():
    with pytest.raises(InvalidMoney, match="unknown currency"):
        exponent("EURO")


# --- parse_amount: good inputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("12.30", "EUR", "12.30"),
        ("12.3", "EUR", "12.30"),
        ("12", "EUR", "12.00"),
        ("+7.5", "USD", "7.50"),
        ("  42.10 ", "GBP", "42.10"),
        ("12.300", "EUR", "12.30"),
        ("1200", "JPY", "1200"),
        ("1.234", "BHD", "1.234"),
        ("0.0001", "CLF", "0.0001"),
        ("999999999999.99", "EUR", "999999999999.99"),
        (15, "EUR", "15.00"),
        (Decimal("9.99"), "USD", "9.99"),
    ],
)
def test_valid_amounts_parse_to_the_currency_exponent(raw, currency, expected):
    parsed = parse_amount(raw, currency)
    assert parsed == Decimal(expected)
    assert str(parsed) == expected


def test_parsed_amounts_round_trip_through_format_amount():
    for raw, currency in [("12.30", "EUR"), ("1200", "JPY"), ("1.234", "BHD"), ("0.0001", "CLF")]:
        assert format_amount(parse_amount(raw, currency), currency) == raw


def test_negative_amount_is_accepted_when_allowed():
    assert parse_amount("-5", "EUR", allow_negative=True) == Decimal("-5.00")


def test_zero_is_accepted_when_allowed_and_is_never_negative_zero():
    assert str(parse_amount("0", "EUR", allow_zero=True)) == "0.00"
    assert str(parse_amount("-0.00", "EUR", allow_zero=True)) == "0.00"


# --- parse_amount: rejections -----------------------------------------------------------------


def _reason(raw, currency="EUR", **flags) -> str:
    """The rejection reason parse_amount gives for `raw`."""
    with pytest.raises(InvalidMoney) as caught:
        parse_amount(raw, currency, **flags)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def test_binary_fractions_are_refused_with_a_reason():
    assert _reason(12.5) == "amount must be a string, not a number with binary rounding"


def test_booleans_are_refused_even_though_they_are_ints():
    assert "boolean" in _reason(True)


@pytest.mark.parametrize("raw", [None, [1], {"amount": "1"}, b"12"])
def test_other_types_are_refused(raw):
    assert "must be a string" in _reason(raw)


@pytest.mark.parametrize(
    "raw", ["abc", "12,50", "1 000", "1_000", "$12", "12.", ".5", "--1", "1.2.3", "0x10", "١٢"]
)
def test_non_numeric_strings_are_refused(raw):
    assert "plain decimal digits" in _reason(raw)


@pytest.mark.parametrize("raw", ["1e3", "1E3", "1e-2", "12.5E+1"])
def test_exponent_notation_is_refused(raw):
    assert "plain decimal digits" in _reason(raw)


@pytest.mark.parametrize("raw", ["NaN", "nan", "Infinity", "-inf", "sNaN"])
def test_nan_and_infinity_strings_are_refused(raw):
    assert "plain decimal digits" in _reason(raw)


@pytest.mark.parametrize("raw", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_nan_and_infinity_decimals_are_refused(raw):
    assert "finite" in _reason(raw)


def test_empty_and_overlong_strings_are_refused():
    assert "empty" in _reason("   ")
    assert "too long" in _reason("1" * 65)


def test_more_decimals_than_the_currency_allows_are_refused():
    assert _reason("12.345", "EUR") == "EUR amounts have at most 2 decimal places"
    assert "at most 2 decimal places" in _reason(Decimal("0.001"), "USD")


def test_jpy_rounds_to_whole_yen_so_fractions_are_refused():
    assert "at most 0 decimal places" in _reason("1200.5", "JPY")


def test_bhd_allows_three_decimals_but_not_four():
    assert parse_amount("1.234", "BHD") == Decimal("1.234")
    assert "at most 3 decimal places" in _reason("1.2345", "BHD")


def test_negative_amount_is_refused_unless_allowed():
    assert _reason("-5") == "amount must not be negative"


def test_zero_is_refused_unless_allowed():
    assert _reason("0") == "amount must not be zero"
    assert _reason("0.00", allow_negative=True) == "amount must not be zero"


def test_absurd_magnitudes_are_refused_at_and_above_the_limit():
    assert "too large" in _reason("1000000000000")
    assert "too large" in _reason("-1000000000000", allow_negative=True)
    assert "too large" in _reason(10**15)
    assert MAX_AMOUNT == Decimal(10**12)


def test_unknown_currency_is_refused_before_the_amount_is_read():
    assert "unknown currency" in _reason("12.30", "usd")


# --- quantize / format_amount -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.125", "EUR", "0.12"),
        ("0.135", "EUR", "0.14"),
        ("0.145", "EUR", "0.14"),
        ("-0.125", "EUR", "-0.12"),
        ("2.5", "JPY", "2"),
        ("3.5", "JPY", "4"),
        ("1.2345", "BHD", "1.234"),
        ("1.2355", "BHD", "1.236"),
        ("0.12345", "CLF", "0.1234"),
    ],
)
def test_quantize_rounds_half_to_even(amount, currency, expected):
    assert str(quantize(Decimal(amount), currency)) == expected


def test_quantize_never_returns_negative_zero():
    assert str(quantize(Decimal("-0.001"), "EUR")) == "0.00"


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1200", "JPY", "1200"),
        ("12.3", "EUR", "12.30"),
        ("1.234", "BHD", "1.234"),
        ("1E+3", "EUR", "1000.00"),
        ("1E+3", "JPY", "1000"),
        ("1.2E-7", "EUR", "0.00"),
        ("-7", "USD", "-7.00"),
    ],
)
def test_format_amount_gives_exactly_the_exponent_decimals_without_scientific_notation(
    amount, currency, expected
):
    assert format_amount(Decimal(amount), currency) == expected


def test_quantize_refuses_binary_fractions():
    with pytest.raises(InvalidMoney):
        quantize(0.1, "EUR")


# --- minor units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [("12.30", "EUR", 1230), ("1200", "JPY", 1200), ("1.234", "BHD", 1234), ("-0.05", "USD", -5)],
)
def test_minor_units_round_trip(amount, currency, units):
    assert to_minor_units(Decimal(amount), currency) == units
    back = from_minor_units(units, currency)
    assert back == Decimal(amount)
    assert format_amount(back, currency) == amount


def test_from_minor_units_keeps_the_currency_exponent():
    assert str(from_minor_units(1230, "EUR")) == "12.30"
    assert str(from_minor_units(5, "CLF")) == "0.0005"


def test_to_minor_units_refuses_amounts_that_would_need_rounding():
    with pytest.raises(InvalidMoney, match="not a whole number of minor units"):
        to_minor_units(Decimal("12.345"), "EUR")
    with pytest.raises(InvalidMoney):
        to_minor_units(Decimal("0.5"), "JPY")


def test_from_minor_units_needs_an_integer():
    with pytest.raises(InvalidMoney):
        from_minor_units(True, "EUR")
    with pytest.raises(InvalidMoney):
        from_minor_units("12", "EUR")


# --- Money ------------------------------------------------------------------------------------


def test_money_prints_and_serializes_with_the_currency_exponent():
    money = Money(Decimal("12.3"), "EUR")
    assert str(money) == "12.30 EUR"
    assert money.to_json() == {"amount": "12.30", "currency": "EUR"}
    assert str(money.amount) == "12.30"


def test_money_accepts_database_style_trailing_zeros():
    assert Money(Decimal("1200.0000"), "JPY").to_json() == {"amount": "1200", "currency": "JPY"}


def test_money_refuses_unknown_currency():
    with pytest.raises(InvalidMoney, match="unknown currency"):
        Money(Decimal("1"), "usd")


@pytest.mark.parametrize("amount", [12.5, 12, "12.50", True])
def test_money_refuses_anything_but_a_decimal_amount(amount):
    with pytest.raises(InvalidMoney, match="must be a Decimal"):
        Money(amount, "EUR")


def test_money_refuses_amounts_that_would_need_rounding():
    with pytest.raises(InvalidMoney, match="at most 0 decimal places"):
        Money(Decimal("1200.5"), "JPY")


def test_money_is_immutable():
    money = Money(Decimal("1.00"), "EUR")
    with pytest.raises(AttributeError):
        money.amount = Decimal("2")  # type: ignore[misc]


def test_money_adds_and_negates_in_the_same_currency():
    total = Money(Decimal("0.10"), "EUR") + Money(Decimal("0.20"), "EUR")
    assert total == Money(Decimal("0.30"), "EUR")
    assert -total == Money(Decimal("-0.30"), "EUR")
    assert total - Money(Decimal("0.30"), "EUR") == Money(Decimal("0"), "EUR")
    assert str(-Money(Decimal("0"), "EUR")) == "0.00 EUR"


def test_money_refuses_to_add_different_currencies():
    with pytest.raises(ValueError, match="cannot combine EUR with USD"):
        Money(Decimal("1"), "EUR") + Money(Decimal("1"), "USD")


def test_money_does_not_add_plain_numbers():
    with pytest.raises(TypeError):
        Money(Decimal("1"), "EUR") + Decimal("1")
